"""The emulated ACR data plane speaks Docker Registry v2 and ACR's token service on the wire.

Raw HTTP (requests) for the wire details, the ARM SDK for the admin credentials, and the
product's own data-plane reader for the flows it uses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
import requests

from emulator import scenario
from emulator.builders.registry_data import push_image
from emulator.providers import graph
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.config import Settings
from shared.errors import ConfigurationError, Forbidden, ReadError
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

LOGIN = "acr1.azurecr.io"
REGISTRY_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acr1"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
AUTH_MESSAGE = (
    "authentication required, visit https://aka.ms/acr/authorization for more information."
)
DIGEST = {"type": "string", "pattern": "^sha256:[a-f0-9]{64}$"}
DESCRIPTOR = {
    "type": "object",
    "required": ["mediaType", "size", "digest"],
    "properties": {
        "mediaType": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "digest": DIGEST,
    },
}
# The required shape of image-spec's image-index.md / manifest.md (and Docker's v2.2 equivalents).
INDEX_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "mediaType", "manifests"],
    "properties": {
        "schemaVersion": {"const": 2},
        "manifests": {
            "type": "array",
            "items": {
                **DESCRIPTOR,
                "required": ["mediaType", "size", "digest", "platform"],
                "properties": {
                    **DESCRIPTOR["properties"],
                    "platform": {
                        "type": "object",
                        "required": ["architecture", "os"],
                        "properties": {
                            "architecture": {"type": "string"},
                            "os": {"type": "string"},
                            "os.version": {"type": "string"},
                            "variant": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
            },
        },
    },
}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "mediaType", "config", "layers"],
    "properties": {
        "schemaVersion": {"const": 2},
        "config": DESCRIPTOR,
        "layers": {"type": "array", "minItems": 1, "items": DESCRIPTOR},
    },
}


def estate(registry: dict[str, Any] | None = None) -> dict[str, Any]:
    repositories = {
        "app": {"v1": ["linux/amd64", "linux/arm64/v8"], "v2": ["linux/amd64"]},
        "legacy": {"1.0": {"platforms": ["linux/amd64", "linux/arm64"], "format": "docker"}},
        "win/api": {"ltsc2022": ["windows/amd64"]},
    }
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-acr",
                        "registries": [
                            {
                                "name": "acr1",
                                "adminUserEnabled": True,
                                "repositories": repositories,
                                **(registry or {}),
                            }
                        ],
                    }
                ],
            }
        ]
    }


@pytest.fixture
def acr(emulator: Emulator) -> Emulator:
    scenario.load(emulator.state, estate())
    return emulator


def url(emu: Emulator, path: str) -> str:
    return f"{emu.base_url}/acr/{LOGIN}{path}"


def get(emu: Emulator, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(
        url(emu, path), verify=emu.ca_path, allow_redirects=False, timeout=10, **kwargs
    )


def admin_password(emu: Emulator) -> str:
    """The admin password as the ARM SDK lists it (listCredentials creates them on first use)."""
    creds = fresh_estate().list_registry_credentials(REGISTRY_ID)
    assert creds is not None
    return creds.passwords[0].value


def basic(username: str, password: str) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    }


def pull_token(emu: Emulator, repository: str = "app") -> str:
    response = get(
        emu,
        "/oauth2/token",
        params={"service": LOGIN, "scope": f"repository:{repository}:pull"},
        headers=basic("acr1", admin_password(emu)),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored(emu: Emulator, repository: str) -> dict[str, Any]:
    return emu.state.registry_repositories[REGISTRY_ID.lower()][repository]


# -- addressing ----------------------------------------------------------------------------


def test_emulator_environment_sets_the_data_endpoint_template(emulator: Emulator) -> None:
    settings = Settings.from_env({**emulator.environment(), "SCOPE_SUBSCRIPTION_IDS": PROD_SUB})
    assert settings.acr_data_endpoint_template.format(login_server=LOGIN) == url(emulator, "")
    azure = Settings.from_env({"SCOPE_SUBSCRIPTION_IDS": PROD_SUB})
    assert azure.acr_data_endpoint_template == "https://{login_server}"
    for bad in ("http://{login_server}", "https://example.test", "https://{login_server}/{x}"):
        with pytest.raises(ConfigurationError, match="ACR_DATA_ENDPOINT_TEMPLATE"):
            Settings.from_env({"ACR_DATA_ENDPOINT_TEMPLATE": bad})


# -- /v2/ ----------------------------------------------------------------------------------


def test_base_challenges_without_token_and_answers_with_one(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    response = get(acr, "/v2/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{acr.base_url}/acr/{LOGIN}/oauth2/token",service="{LOGIN}"'
    )
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert response.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": AUTH_MESSAGE, "detail": None}]
    }
    ok = get(acr, "/v2/", headers=bearer(pull_token(acr)))
    assert (ok.status_code, ok.json()) == (200, {})
    assert get(acr, "/v2/", headers=bearer("made-up")).status_code == 401


def test_oci_index_lists_platforms_and_digest_is_sha256_of_body(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    response = get(
        acr,
        "/v2/app/manifests/v1",
        headers=bearer(pull_token(acr), Accept=f"{OCI_INDEX}, {OCI_MANIFEST}"),
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.headers["Docker-Content-Digest"] == sha256(response.content)
    assert response.headers["Docker-Content-Digest"] == stored(acr, "app")["tags"]["v1"]
    index = response.json()
    jsonschema.validate(index, INDEX_SCHEMA)
    assert index["mediaType"] == OCI_INDEX
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    # Each child is served by digest, and its size and digest are those of the bytes served.
    for entry in index["manifests"]:
        child = get(
            acr,
            f"/v2/app/manifests/{entry['digest']}",
            headers=bearer(pull_token(acr), Accept=OCI_MANIFEST),
        )
        assert child.status_code == 200
        assert (sha256(child.content), len(child.content)) == (entry["digest"], entry["size"])
        jsonschema.validate(child.json(), MANIFEST_SCHEMA)


def test_head_manifest_has_the_headers_and_no_body(acr: Emulator, app_env: dict[str, str]) -> None:
    token = pull_token(acr)
    full = get(acr, "/v2/app/manifests/v2", headers=bearer(token))
    head = requests.head(
        url(acr, "/v2/app/manifests/v2"), headers=bearer(token), verify=acr.ca_path, timeout=10
    )
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Docker-Content-Digest"] == full.headers["Docker-Content-Digest"]
    assert int(head.headers["Content-Length"]) == len(full.content)
    missing = requests.head(
        url(acr, "/v2/app/manifests/v9"), headers=bearer(token), verify=acr.ca_path, timeout=10
    )
    assert (missing.status_code, missing.content) == (404, b"")


def test_single_manifest_config_blob_names_the_platform(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    token = pull_token(acr, "win/api")
    manifest = get(
        acr,
        "/v2/win/api/manifests/ltsc2022",
        headers=bearer(token, Accept=f"{OCI_MANIFEST}, {OCI_INDEX}"),
    )
    assert manifest.headers["Content-Type"] == OCI_MANIFEST
    body = manifest.json()
    jsonschema.validate(body, MANIFEST_SCHEMA)
    config = body["config"]
    assert config["mediaType"] == "application/vnd.oci.image.config.v1+json"
    redirect = get(acr, f"/v2/win/api/blobs/{config['digest']}", headers=bearer(token))
    assert redirect.status_code == 307
    blob = requests.get(redirect.headers["Location"], verify=acr.ca_path, timeout=10)
    assert blob.status_code == 200
    assert (sha256(blob.content), len(blob.content)) == (config["digest"], config["size"])
    image = blob.json()
    assert (image["os"], image["architecture"], image["os.version"]) == (
        "windows",
        "amd64",
        "10.0.20348.2762",
    )
    assert len(image["rootfs"]["diff_ids"]) == len(body["layers"])
    tampered = redirect.headers["Location"].replace("sig=", "sig=0")
    assert requests.get(tampered, verify=acr.ca_path, timeout=10).status_code == 403


def test_docker_manifest_list_and_fallback_for_clients_without_list_support(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    token = pull_token(acr, "legacy")
    listed = get(
        acr,
        "/v2/legacy/manifests/1.0",
        headers=bearer(token, Accept=f"{DOCKER_LIST}, {DOCKER_MANIFEST}"),
    )
    assert listed.headers["Content-Type"] == DOCKER_LIST
    jsonschema.validate(listed.json(), INDEX_SCHEMA)
    assert {m["mediaType"] for m in listed.json()["manifests"]} == {DOCKER_MANIFEST}
    amd64 = next(m for m in listed.json()["manifests"] if m["platform"]["architecture"] == "amd64")
    # A client that knows only single manifests gets the linux/amd64 one, as distribution serves it.
    single = get(acr, "/v2/legacy/manifests/1.0", headers=bearer(token, Accept=DOCKER_MANIFEST))
    assert single.headers["Content-Type"] == DOCKER_MANIFEST
    assert single.headers["Docker-Content-Digest"] == amd64["digest"]
    oci_only = get(
        acr, "/v2/app/manifests/v1", headers=bearer(pull_token(acr), Accept=DOCKER_MANIFEST)
    )
    assert oci_only.status_code == 404
    assert oci_only.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_unknown_manifest_repository_and_blob_use_registry_errors(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    token = pull_token(acr)
    tag = get(acr, "/v2/app/manifests/v9", headers=bearer(token))
    assert tag.status_code == 404
    assert tag.json() == {
        "errors": [
            {
                "code": "MANIFEST_UNKNOWN",
                "message": 'manifest tagged by "v9" is not found',
                "detail": {"Tag": "v9"},
            }
        ]
    }
    digest = "sha256:" + "0" * 64
    by_digest = get(acr, f"/v2/app/manifests/{digest}", headers=bearer(token))
    assert by_digest.json()["errors"][0] == {
        "code": "MANIFEST_UNKNOWN",
        "message": f"manifest {digest} is not found",
        "detail": {"Name": "app", "Revision": digest},
    }
    name = get(acr, "/v2/nope/manifests/v1", headers=bearer(pull_token(acr, "nope")))
    assert (name.status_code, name.json()["errors"][0]["code"]) == (404, "NAME_UNKNOWN")
    blob = get(acr, f"/v2/app/blobs/{digest}", headers=bearer(token))
    assert (blob.status_code, blob.json()["errors"][0]["code"]) == (404, "BLOB_UNKNOWN")


def test_token_for_one_repository_does_not_read_another(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    response = get(acr, "/v2/legacy/manifests/1.0", headers=bearer(pull_token(acr, "app")))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].endswith(
        f'service="{LOGIN}",scope="repository:legacy:pull",error="insufficient_scope"'
    )
    assert response.json()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": "legacy", "Action": "pull"}
    ]


def test_tags_list_pages_with_link_header(acr: Emulator, app_env: dict[str, str]) -> None:
    for tag in ("v3", "v10", "latest"):
        push_image(acr.state, REGISTRY_ID, "app", tag, ["linux/amd64"])
    token = pull_token(acr)
    first = get(acr, "/v2/app/tags/list", params={"n": 2}, headers=bearer(token))
    assert first.json() == {"name": "app", "tags": ["latest", "v1"]}
    assert first.headers["Link"] == '</v2/app/tags/list?last=v1&n=2>; rel="next"'
    seen, link = list(first.json()["tags"]), first.headers.get("Link")
    while link:
        page = get(acr, link[1 : link.index(">")], headers=bearer(token))
        seen += page.json()["tags"]
        link = page.headers.get("Link")
    assert seen == ["latest", "v1", "v10", "v2", "v3"]
    everything = get(acr, "/v2/app/tags/list", headers=bearer(token))
    assert everything.json()["tags"] == seen
    assert "Link" not in everything.headers
    bad = get(acr, "/v2/app/tags/list", params={"n": "x"}, headers=bearer(token))
    assert (bad.status_code, bad.json()["errors"][0]["code"]) == (400, "PAGINATION_NUMBER_INVALID")


# -- token service -------------------------------------------------------------------------


def test_admin_basic_login_follows_password_regeneration(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    old = admin_password(acr)
    params = {"service": LOGIN, "scope": "repository:app:pull"}
    assert get(acr, "/oauth2/token", params=params, headers=basic("acr1", old)).status_code == 200
    wrong = get(acr, "/oauth2/token", params=params, headers=basic("acr1", old + "x"))
    assert wrong.status_code == 401
    assert wrong.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": AUTH_MESSAGE, "detail": None}]
    }
    client = ClientFactory(Settings.from_env(os.environ)).container_registry(PROD_SUB)
    client.registries.regenerate_credential("rg-acr", "acr1", {"name": "password"})
    assert get(acr, "/oauth2/token", params=params, headers=basic("acr1", old)).status_code == 401
    bad_service = get(
        acr,
        "/oauth2/token",
        params={**params, "service": "other.azurecr.io"},
        headers=basic("acr1", old),
    )
    assert bad_service.status_code == 400


def test_anonymous_pull_only_when_enabled(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate({"anonymousPullEnabled": True}))
    params = {"service": LOGIN, "scope": "repository:app:pull,push"}
    token = get(emulator, "/oauth2/token", params=params)
    assert token.status_code == 200
    claims = json.loads(base64.urlsafe_b64decode(token.json()["access_token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "app", "actions": ["pull"]}]
    assert (
        get(
            emulator, "/v2/app/manifests/v1", headers=bearer(token.json()["access_token"])
        ).status_code
        == 200
    )


def test_anonymous_token_refused_when_disabled(acr: Emulator, app_env: dict[str, str]) -> None:
    response = get(acr, "/oauth2/token", params={"service": LOGIN, "scope": "repository:app:pull"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_aad_exchange_then_refresh_token_then_pull(acr: Emulator, app_env: dict[str, str]) -> None:
    aad = requests.get(
        f"{acr.base_url}/msi/token",
        params={"api-version": "2019-08-01", "resource": acr.base_url},
        headers={"X-IDENTITY-HEADER": acr.state.identity_header},
        verify=acr.ca_path,
        timeout=10,
    ).json()["access_token"]

    def post(path: str, data: dict[str, str]) -> requests.Response:
        return requests.post(url(acr, path), data=data, verify=acr.ca_path, timeout=10)

    exchange = post(
        "/oauth2/exchange", {"grant_type": "access_token", "service": LOGIN, "access_token": aad}
    )
    assert exchange.status_code == 200
    assert set(exchange.json()) == {"refresh_token"}
    refresh = exchange.json()["refresh_token"]
    form = {"grant_type": "refresh_token", "service": LOGIN, "scope": "repository:app:pull"}
    token = post("/oauth2/token", {**form, "refresh_token": refresh})
    assert token.status_code == 200
    assert set(token.json()) == {"access_token"}
    pulled = get(acr, "/v2/app/manifests/v1", headers=bearer(token.json()["access_token"]))
    assert pulled.status_code == 200
    # docker login with the null GUID and the refresh token (az acr login --expose-token).
    params = {"service": LOGIN, "scope": "repository:app:pull"}
    null_guid = basic("00000000-0000-0000-0000-000000000000", refresh)
    assert get(acr, "/oauth2/token", params=params, headers=null_guid).status_code == 200
    # A refresh token is not an access token, and a made-up AAD token is not exchanged.
    assert get(acr, "/v2/app/manifests/v1", headers=bearer(refresh)).status_code == 401
    assert post("/oauth2/token", {**form, "refresh_token": "x"}).status_code == 401
    bogus = post(
        "/oauth2/exchange", {"grant_type": "access_token", "service": LOGIN, "access_token": "x"}
    )
    assert bogus.status_code == 401
    bad_grant = post("/oauth2/exchange", {"grant_type": "password", "service": LOGIN})
    assert bad_grant.status_code == 400


def test_exchange_rejects_a_token_for_another_audience(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    graph_token = acr.state.issue_token("https://graph.microsoft.com")
    response = requests.post(
        url(acr, "/oauth2/exchange"),
        data={"grant_type": "access_token", "service": LOGIN, "access_token": graph_token},
        verify=acr.ca_path,
        timeout=10,
    )
    assert response.status_code == 401


def test_service_principal_secret_is_checked_by_entra_id(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    app_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    graph.add_application(acr.state, app_id)
    _, secret = graph.add_password(acr.state, app_id)
    params = {"service": LOGIN, "scope": "repository:app:pull"}
    assert (
        get(acr, "/oauth2/token", params=params, headers=basic(app_id, secret)).status_code == 200
    )
    assert (
        get(acr, "/oauth2/token", params=params, headers=basic(app_id, secret[:-1])).status_code
        == 401
    )
    graph.set_password_expiry(acr.state, app_id, datetime.now(UTC) - timedelta(days=1))
    assert (
        get(acr, "/oauth2/token", params=params, headers=basic(app_id, secret)).status_code == 401
    )


def test_firewall_denies_every_route_with_acr_message(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    rules = {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}
    scenario.load(emulator.state, estate({"networkRuleSet": rules}))
    for path in ("/v2/", "/v2/app/manifests/v1", "/v2/app/tags/list", "/oauth2/token"):
        response = get(emulator, path, headers={"X-Emulator-Client-IP": "198.51.100.7"})
        assert response.status_code == 403
        assert response.json()["errors"][0] == {
            "code": "DENIED",
            "message": "client with IP '198.51.100.7' is not allowed access. "
            "Refer https://aka.ms/acr/firewall to grant access.",
            "detail": None,
        }
    assert (
        get(emulator, "/v2/")
        .json()["errors"][0]["message"]
        .startswith("client with IP '127.0.0.1'")
    )
    # An address inside an allowed range gets through to authentication.
    assert get(emulator, "/v2/", headers={"X-Emulator-Client-IP": "203.0.113.9"}).status_code == 401


def test_public_network_access_disabled_denies(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate({"publicNetworkAccess": "Disabled"}))
    response = get(
        emulator,
        "/oauth2/token",
        params={"service": LOGIN},
        headers={"X-Emulator-Client-IP": "203.0.113.9"},
    )
    assert (response.status_code, response.json()["errors"][0]["code"]) == (403, "DENIED")


# -- the product's reader over these routes ------------------------------------------------


def reader() -> ArmEstate:
    return fresh_estate()


def test_reader_uses_exchange_then_scoped_token(acr: Emulator, app_env: dict[str, str]) -> None:
    info = reader().get_manifest_platforms(LOGIN, "app", "v1")
    assert info.digest == stored(acr, "app")["tags"]["v1"]
    assert [str(p) for p in info.platforms] == ["linux/amd64", "linux/arm64/v8"]
    calls = [(e.method, e.path.removeprefix(f"/acr/{LOGIN}"), e.status) for e in acr.journal("acr")]
    assert calls == [
        ("POST", "/oauth2/exchange", 200),
        ("POST", "/oauth2/token", 200),
        ("GET", "/v2/app/manifests/v1", 200),
    ]
    exchange, token = (e.body for e in acr.journal("acr")[:2])
    assert "scope=repository%3Aapp%3Apull" in token and "grant_type=refresh_token" in token
    assert "grant_type=access_token" in exchange


def test_reader_checks_pull_credentials(acr: Emulator, app_env: dict[str, str]) -> None:
    password = admin_password(acr)
    assert reader().registry_token_ok(LOGIN, "acr1", password, "app") is True
    assert reader().registry_token_ok(LOGIN, "acr1", "nope", "app") is False


def test_reader_reports_firewall_as_forbidden(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state, estate({"networkRuleSet": {"defaultAction": "Deny", "ipRules": []}})
    )
    with pytest.raises(Forbidden, match=r"client with IP '127\.0\.0\.1' is not allowed access"):
        reader().registry_token_ok(LOGIN, "acr1", "whatever", "app")


def test_reader_never_sends_credentials_outside_the_acr_suffix(
    acr: Emulator, app_env: dict[str, str]
) -> None:
    for host in ("evil.example.com", "acr1.azurecr.io.evil.example.com", "acr1.azurecr.io:444"):
        with pytest.raises(ReadError, match="not an Azure Container Registry login server"):
            reader().get_manifest_platforms(host, "app", "v1")
    assert acr.journal("acr") == []


# -- the registry by its own host name (registry proxy), catalogue and ACR's listing API ---------


@pytest.fixture
def by_name(acr: Emulator) -> requests.Session:
    """A client that reaches https://acr1.azurecr.io through the emulator's registry proxy."""
    session = requests.Session()
    session.trust_env = False
    session.verify = acr.ca_path
    session.proxies = {"https": acr.registry_proxy()}
    return session


def aad_token(emu: Emulator) -> str:
    return emu.state.issue_token(emu.base_url + "/")


def token_by_name(http: requests.Session, emu: Emulator, scope: str) -> str:
    """The Azure CLI's flow: challenge, exchange at the realm's host, then a scoped token."""
    challenge = http.get(f"https://{LOGIN}/v2/", timeout=10)
    assert challenge.status_code == 401
    realm = challenge.headers["WWW-Authenticate"].split('realm="', 1)[1].split('"', 1)[0]
    host = realm.split("/")[2]
    exchange = http.post(
        f"https://{host}/oauth2/exchange",
        data={"grant_type": "access_token", "service": LOGIN, "access_token": aad_token(emu)},
        timeout=10,
    )
    assert exchange.status_code == 200, exchange.text
    token = http.post(
        f"https://{host}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": LOGIN,
            "scope": scope,
            "refresh_token": exchange.json()["refresh_token"],
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def test_a_registry_reached_by_its_name_has_its_root_as_realm(
    acr: Emulator, by_name: requests.Session
) -> None:
    challenge = by_name.get(f"https://{LOGIN}/v2/", timeout=10)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{LOGIN}/oauth2/token",service="{LOGIN}"'
    )
    token = token_by_name(by_name, acr, "repository:app:pull")
    pulled = by_name.get(f"https://{LOGIN}/v2/app/manifests/v1", headers=bearer(token), timeout=10)
    assert pulled.status_code == 200
    assert pulled.headers["Docker-Content-Digest"] == sha256(pulled.content)


def test_the_registry_proxy_serves_registry_hosts_only(acr: Emulator) -> None:
    import socket

    port = int(acr.registry_proxy().rsplit(":", 1)[1])
    for target in (
        "management.azure.com:443",
        "127.0.0.1:443",
        f"{LOGIN}:80",
        "x.azurecr.io.evil:443",
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            assert conn.recv(100).startswith(b"HTTP/1.1 403"), target
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 405")


def test_catalog_lists_repositories_with_a_catalog_token(
    acr: Emulator, by_name: requests.Session
) -> None:
    anonymous = by_name.get(f"https://{LOGIN}/v2/_catalog", timeout=10)
    assert anonymous.status_code == 401
    assert 'scope="registry:catalog:*"' in anonymous.headers["WWW-Authenticate"]
    pull_only = token_by_name(by_name, acr, "repository:app:pull")
    refused = by_name.get(f"https://{LOGIN}/v2/_catalog", headers=bearer(pull_only), timeout=10)
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    token = token_by_name(by_name, acr, "registry:catalog:*")
    expected = ["app", "legacy", "win/api"]
    for path in ("/v2/_catalog", "/acr/v1/_catalog"):
        listed = by_name.get(f"https://{LOGIN}{path}", headers=bearer(token), timeout=10)
        assert listed.json() == {"repositories": expected}
        first = by_name.get(
            f"https://{LOGIN}{path}", params={"n": 2}, headers=bearer(token), timeout=10
        )
        assert first.json() == {"repositories": expected[:2]}
        assert first.headers["Link"] == f'<{path}?last=legacy&n=2>; rel="next"'
    # Path addressing serves the same catalogue.
    assert get(acr, "/v2/_catalog", headers=bearer(token)).json() == {"repositories": expected}


def test_acr_tag_listing_names_each_tag_with_its_digest(
    acr: Emulator, by_name: requests.Session
) -> None:
    token = token_by_name(by_name, acr, "repository:app:metadata_read")
    listed = by_name.get(f"https://{LOGIN}/acr/v1/app/_tags", headers=bearer(token), timeout=10)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["registry"], body["imageName"]) == (LOGIN, "app")
    tags = {t["name"]: t for t in body["tags"]}
    assert set(tags) == {"v1", "v2"}
    assert tags["v1"]["digest"] == stored(acr, "app")["tags"]["v1"]
    assert tags["v1"]["changeableAttributes"]["readEnabled"] is True
    other = by_name.get(f"https://{LOGIN}/acr/v1/legacy/_tags", headers=bearer(token), timeout=10)
    assert other.status_code == 401
    missing = token_by_name(by_name, acr, "repository:nosuch:metadata_read")
    unknown = by_name.get(
        f"https://{LOGIN}/acr/v1/nosuch/_tags", headers=bearer(missing), timeout=10
    )
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (404, "NAME_UNKNOWN")
