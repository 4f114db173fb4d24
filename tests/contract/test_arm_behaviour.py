"""What ARM does for every route: auth, ids, errors, api-version, faults (raw HTTP, no SDK)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulator import scenario
from emulator.server import Emulator
from tests.conftest import PROD_SUB

CLUSTER_PATH = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-aks-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
API = {"api-version": "2025-10-01"}


@pytest.fixture
def http(emulator: Emulator, sample: dict[str, Any]) -> requests.Session:
    session = requests.Session()
    session.verify = emulator.ca_path
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    session.headers["Authorization"] = f"Bearer {msi_token(emulator, emulator.base_url)}"
    return session


def msi_token(emulator: Emulator, resource: str) -> str:
    body = requests.get(
        f"{emulator.base_url}/msi/token",
        params={"api-version": "2019-08-01", "resource": resource},
        headers={"X-IDENTITY-HEADER": emulator.state.identity_header},
        verify=emulator.ca_path,
        timeout=5,
    ).json()
    return str(body["access_token"])


def get(http: requests.Session, emulator: Emulator, path: str, **params: str) -> requests.Response:
    return http.get(emulator.base_url + path, params={**API, **params}, timeout=5)


def test_managed_identity_tokens_are_jwts_for_the_requested_audience(emulator: Emulator) -> None:
    from emulator import jwt

    token = msi_token(emulator, "https://vault.azure.net")
    claims = jwt.claims(token)
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["tid"] == emulator.state.tenant_id
    assert claims["oid"] == emulator.state.app_principal_id
    assert claims["iss"] == f"https://sts.windows.net/{emulator.state.tenant_id}/"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert msi_token(emulator, "https://vault.azure.net") != token


@pytest.mark.parametrize(
    "audience",
    [
        "https://graph.microsoft.com",
        "https://vault.azure.net",
        "https://management.azure.com",  # the public cloud's ARM: not this custom cloud's
        "https://127.0.0.1:1",
    ],
)
def test_arm_refuses_a_token_for_another_audience(
    emulator: Emulator, sample: dict[str, Any], audience: str
) -> None:
    response = requests.get(
        emulator.base_url + CLUSTER_PATH,
        params=API,
        headers={"Authorization": f"Bearer {msi_token(emulator, audience)}"},
        verify=emulator.ca_path,
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    assert "aks-prod-weu" not in response.text


def test_arm_accepts_its_own_audience_with_or_without_a_slash(
    emulator: Emulator, sample: dict[str, Any]
) -> None:
    for audience in (emulator.base_url, emulator.base_url + "/"):
        response = requests.get(
            emulator.base_url + CLUSTER_PATH,
            params=API,
            headers={"Authorization": f"Bearer {msi_token(emulator, audience)}"},
            verify=emulator.ca_path,
            timeout=5,
        )
        assert response.status_code == 200, response.text


def test_identity_endpoint_rejects_a_wrong_header(emulator: Emulator) -> None:
    response = requests.get(
        f"{emulator.base_url}/msi/token",
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": "wrong"},
        verify=emulator.ca_path,
        timeout=5,
    )
    assert response.status_code == 400
    assert "access_token" not in response.text


def test_identity_endpoint_issues_tokens_for_any_resource(emulator: Emulator) -> None:
    body = requests.get(
        f"{emulator.base_url}/msi/token",
        params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"},
        headers={"X-IDENTITY-HEADER": emulator.state.identity_header},
        verify=emulator.ca_path,
        timeout=5,
    ).json()
    assert body["resource"] == "https://graph.microsoft.com"
    assert body["token_type"] == "Bearer"
    assert int(body["expires_on"]) > 0


def test_arm_requires_a_token(emulator: Emulator, sample: dict[str, Any]) -> None:
    response = requests.get(
        emulator.base_url + CLUSTER_PATH, params=API, verify=emulator.ca_path, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"


def test_ids_are_case_insensitive(http: requests.Session, emulator: Emulator) -> None:
    response = get(
        http, emulator, CLUSTER_PATH.lower().replace("/resourcegroups/", "/RESOURCEGROUPS/")
    )
    assert response.status_code == 200
    assert response.json()["name"] == "aks-prod-weu"  # the stored casing comes back


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (CLUSTER_PATH.replace("aks-prod-weu", "nope"), 404, "ResourceNotFound"),
        (CLUSTER_PATH.replace("rg-aks-prod", "rg-missing"), 404, "ResourceGroupNotFound"),
        (
            CLUSTER_PATH.replace(PROD_SUB, "00000000-0000-0000-0000-000000000000"),
            404,
            "SubscriptionNotFound",
        ),
        (CLUSTER_PATH.replace("managedClusters", "managedThings"), 400, "InvalidResourceType"),
    ],
)
def test_error_envelope(
    http: requests.Session, emulator: Emulator, path: str, status: int, code: str
) -> None:
    response = get(http, emulator, path)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_api_version_is_required(http: requests.Session, emulator: Emulator) -> None:
    response = http.get(emulator.base_url + CLUSTER_PATH, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_malformed_body_is_rejected(http: requests.Session, emulator: Emulator) -> None:
    response = http.put(emulator.base_url + CLUSTER_PATH, params=API, data="{not json", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    assert cluster["properties"]["provisioningState"] == "Succeeded"


def test_location_cannot_change(http: requests.Session, emulator: Emulator) -> None:
    body = scenario.find_cluster(emulator.state, "aks-prod-weu")
    body["location"] = "eastus"
    response = http.put(emulator.base_url + CLUSTER_PATH, params=API, json=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "LocationNotAllowed"


def test_scale_sets_cannot_be_written_through_arm_here(
    http: requests.Session, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    vmss = scenario.node_pool_vmss(emulator.state, cluster)[0]
    response = http.put(emulator.base_url + vmss["id"], params=API, json=vmss, timeout=5)
    assert response.status_code == 405


def test_denied_scope_answers_authorization_failed(
    http: requests.Session, emulator: Emulator
) -> None:
    emulator.deny(f"/subscriptions/{PROD_SUB}/resourceGroups/rg-aks-prod")
    response = get(http, emulator, CLUSTER_PATH)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "AuthorizationFailed"
    assert "Microsoft.ContainerService/managedClusters/read" in error["message"]


def test_fault_injection_throttles_then_recovers(
    http: requests.Session, emulator: Emulator
) -> None:
    emulator.inject(
        r"/managedClusters/aks-prod-weu$", method="GET", status=429, retry_after=7, times=1
    )
    first, second = get(http, emulator, CLUSTER_PATH), get(http, emulator, CLUSTER_PATH)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert first.json()["error"]["code"] == "TooManyRequests"
    assert second.status_code == 200


def test_fault_injection_server_error(http: requests.Session, emulator: Emulator) -> None:
    emulator.inject(r"/managedClusters/aks-prod-weu$", method="GET", status=500, times=1)
    assert get(http, emulator, CLUSTER_PATH).status_code == 500


def test_journal_records_method_path_api_version_and_body(
    http: requests.Session, emulator: Emulator
) -> None:
    http.put(
        emulator.base_url + CLUSTER_PATH, params=API, json={"location": "westeurope"}, timeout=5
    )
    entry = emulator.journal("arm")[-1]
    assert (entry.method, entry.path, entry.api_version) == ("PUT", CLUSTER_PATH, "2025-10-01")
    assert entry.body == {"location": "westeurope"}
    assert entry.status == 400  # properties is required


def test_denied_action_names_the_action_as_arm_does(
    http: requests.Session, emulator: Emulator
) -> None:
    emulator.deny(CLUSTER_PATH)
    response = http.post(
        emulator.base_url + CLUSTER_PATH + "/listClusterUserCredential", params=API, timeout=5
    )
    assert response.status_code == 403
    assert (
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
        in (response.json()["error"]["message"])
    )


# -- ARM's request limits (emulator/throttling.py) ---------------------------------------------


def test_arm_limits_count_down_in_headers_then_answer_429_with_retry_after(
    http: requests.Session, emulator: Emulator
) -> None:
    from emulator.throttling import ArmLimits, Buckets, Limit

    emulator.state.arm_buckets = Buckets(ArmLimits(reads=Limit(3, 0.5), writes=Limit(2, 0.5)))
    seen = [get(http, emulator, CLUSTER_PATH) for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    remaining = [r.headers.get("x-ms-ratelimit-remaining-subscription-reads") for r in seen]
    assert remaining == ["2", "1", "0", "0"]
    throttled = seen[-1]
    assert throttled.headers["Retry-After"] == "2"  # a token back at 0.5/s, whole seconds
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    # Writes (POST actions too) draw on their own bucket and name it.
    post = http.post(
        f"{emulator.base_url}{CLUSTER_PATH}/listClusterUserCredential", params=API, timeout=5
    )
    assert post.status_code == 200
    assert post.headers["x-ms-ratelimit-remaining-subscription-writes"] == "1"
    # Tenant-level requests are not metered per subscription.
    assert (
        "x-ms-ratelimit-remaining-subscription-reads"
        not in get(http, emulator, "/subscriptions").headers
    )
