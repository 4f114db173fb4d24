"""Microsoft Graph v1.0 routes, called through the product's own Graph pipeline (azure-core).

Responses are checked against the documented v1.0 resource shapes (application,
servicePrincipal, passwordCredential) and the Graph error envelope.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core import PipelineClient
from azure.core.rest import HttpRequest, HttpResponse

from emulator import scenario
from emulator.providers.graph import graph_secret_valid, service_principal_id
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
# Documented properties (https://learn.microsoft.com/graph/api/resources/...?view=graph-rest-1.0).
APPLICATION_PROPERTIES = {
    "addIns", "api", "appId", "applicationTemplateId", "appRoles", "certification", "createdDateTime",
    "defaultRedirectUri", "deletedDateTime", "description", "disabledByMicrosoftStatus", "displayName",
    "groupMembershipClaims", "id", "identifierUris", "info", "isDeviceOnlyAuthSupported",
    "isFallbackPublicClient", "keyCredentials", "logo", "notes", "optionalClaims", "parentalControlSettings",
    "passwordCredentials", "publicClient", "publisherDomain", "requiredResourceAccess", "samlMetadataUrl",
    "serviceManagementReference", "signInAudience", "spa", "tags", "tokenEncryptionKeyId", "uniqueName",
    "verifiedPublisher", "web",
}  # fmt: skip
SERVICE_PRINCIPAL_PROPERTIES = {
    "accountEnabled", "addIns", "alternativeNames", "appDescription", "appDisplayName", "appId",
    "applicationTemplateId", "appOwnerOrganizationId", "appRoleAssignmentRequired", "appRoles",
    "deletedDateTime", "description", "disabledByMicrosoftStatus", "displayName", "homepage", "id", "info",
    "keyCredentials", "loginUrl", "logoutUrl", "notes", "notificationEmailAddresses",
    "passwordCredentials", "preferredSingleSignOnMode", "preferredTokenSigningKeyThumbprint", "replyUrls",
    "samlSingleSignOnSettings", "servicePrincipalNames", "servicePrincipalType", "signInAudience", "tags",
    "tokenEncryptionKeyId", "verifiedPublisher",
}  # fmt: skip
PASSWORD_CREDENTIAL_PROPERTIES = {
    "customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime",
}  # fmt: skip


@pytest.fixture
def graph(
    emulator: Emulator, app_env: dict[str, str]
) -> Iterator[PipelineClient[HttpRequest, HttpResponse]]:
    scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {
                            "name": "rg-aks",
                            "clusters": [
                                {"name": "aks-sp", "servicePrincipal": APP},
                                {"name": "aks-mi"},
                            ],
                            "servicePrincipals": [
                                {
                                    "appId": APP,
                                    "displayName": "aks-sp",
                                    "secrets": [{"displayName": "rbac"}],
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )
    factory = ClientFactory(Settings.from_env(os.environ))
    yield factory.graph()
    factory.close()


def call(
    client: PipelineClient[HttpRequest, HttpResponse], method: str, path: str, body: Any = None
) -> HttpResponse:
    return client.send_request(HttpRequest(method, client.format_url(path), json=body))


def assert_entity(body: dict[str, Any], documented: set[str]) -> None:
    keys = {k for k in body if not k.startswith("@odata.")}
    assert keys <= documented, f"undocumented: {keys - documented}"
    for credential in body.get("passwordCredentials", []):
        assert set(credential) == PASSWORD_CREDENTIAL_PROPERTIES
        assert credential["secretText"] is None
    assert "_secrets" not in json.dumps(body)


def test_application_by_app_id(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    response = call(graph, "GET", f"/v1.0/applications(appId='{APP}')")
    assert response.status_code == 200
    body = response.json()
    assert_entity(body, APPLICATION_PROPERTIES)
    assert body["@odata.context"].endswith("/v1.0/$metadata#applications/$entity")
    assert body["appId"] == APP and body["displayName"] == "aks-sp"
    [credential] = body["passwordCredentials"]
    secret = emulator.state.graph_applications[APP]["_secrets"][credential["keyId"]]
    assert credential["hint"] == secret[:3]
    assert secret not in response.text()
    assert response.headers["request-id"]


def test_application_list_filtered_by_app_id(
    graph: PipelineClient[HttpRequest, HttpResponse],
) -> None:
    response = call(graph, "GET", f"/v1.0/applications?$filter=appId eq '{APP}'")
    body = response.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#applications")
    [application] = body["value"]
    assert_entity(application, APPLICATION_PROPERTIES)
    assert (
        call(
            graph,
            "GET",
            "/v1.0/applications?$filter=appId eq '00000000-0000-0000-0000-000000000000'",
        ).json()["value"]
        == []
    )


def test_service_principals_filtered_by_any_of_their_names(
    graph: PipelineClient[HttpRequest, HttpResponse],
) -> None:
    """``az ad sp show --id <appId>`` asks with servicePrincipalNames/any(...)."""
    query = f"servicePrincipalNames/any(c:c eq '{APP}')"
    [sp] = call(graph, "GET", f"/v1.0/servicePrincipals?$filter={query}").json()["value"]
    assert_entity(sp, SERVICE_PRINCIPAL_PROPERTIES)
    assert sp["appId"] == APP and APP in sp["servicePrincipalNames"]
    other = "servicePrincipalNames/any(x:x eq 'https://nosuch')"
    assert call(graph, "GET", f"/v1.0/servicePrincipals?$filter={other}").json()["value"] == []
    # Applications have no servicePrincipalNames: Graph refuses the filter there.
    refused = graph.send_request(
        HttpRequest("GET", graph.format_url(f"/v1.0/applications?$filter={query}"))
    )
    assert refused.status_code == 400


def test_select_limits_properties(graph: PipelineClient[HttpRequest, HttpResponse]) -> None:
    body = call(
        graph, "GET", f"/v1.0/applications(appId='{APP}')?$select=appId,passwordCredentials"
    ).json()
    assert {k for k in body if not k.startswith("@")} == {"appId", "passwordCredentials"}


def test_service_principal_by_app_id(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    body = call(graph, "GET", f"/v1.0/servicePrincipals(appId='{APP}')").json()
    assert_entity(body, SERVICE_PRINCIPAL_PROPERTIES)
    assert body["id"] == service_principal_id(emulator.state, APP)
    assert body["servicePrincipalType"] == "Application"
    assert body["id"] != emulator.state.graph_applications[APP]["id"]


def test_managed_identity_service_principal_by_object_id(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    kubelet = scenario.find_cluster(emulator.state, "aks-mi")["properties"]["identityProfile"][
        "kubeletidentity"
    ]
    body = call(graph, "GET", f"/v1.0/servicePrincipals/{kubelet['objectId']}").json()
    assert_entity(body, SERVICE_PRINCIPAL_PROPERTIES)
    assert (body["servicePrincipalType"], body["appId"]) == ("ManagedIdentity", kubelet["clientId"])
    assert kubelet["resourceId"] in body["alternativeNames"]


def test_add_and_remove_password(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    end = datetime.now(UTC) + timedelta(days=90)
    response = call(
        graph,
        "POST",
        f"/v1.0/applications(appId='{APP}')/addPassword",
        {"passwordCredential": {"displayName": "rotated", "endDateTime": end.isoformat()}},
    )
    assert response.status_code == 200
    created = response.json()
    assert set(created) - {"@odata.context"} == PASSWORD_CREDENTIAL_PROPERTIES
    assert created["@odata.context"].endswith("#microsoft.graph.passwordCredential")
    secret = created["secretText"]
    assert secret and created["hint"] == secret[:3]
    assert emulator.state.graph_applications[APP]["_secrets"][created["keyId"]] == secret
    now = datetime.now(UTC)
    assert graph_secret_valid(emulator.state, APP, secret, now)
    assert not graph_secret_valid(emulator.state, APP, secret, end + timedelta(seconds=1))
    assert not graph_secret_valid(emulator.state, APP, "wrong" + secret, now)
    listed = call(graph, "GET", f"/v1.0/applications(appId='{APP}')").json()["passwordCredentials"]
    assert [c["displayName"] for c in listed] == ["rbac", "rotated"]
    assert all(c["secretText"] is None for c in listed)

    removed = call(
        graph,
        "POST",
        f"/v1.0/applications(appId='{APP}')/removePassword",
        {"keyId": created["keyId"]},
    )
    assert removed.status_code == 204
    assert not graph_secret_valid(emulator.state, APP, secret, now)
    assert created["keyId"] not in emulator.state.graph_applications[APP]["_secrets"]


def test_expired_secret_is_not_valid(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    [secret] = emulator.state.graph_applications[APP]["_secrets"].values()
    assert graph_secret_valid(emulator.state, APP, secret, datetime.now(UTC))
    scenario.apply_break(emulator.state, {"cause": "sp-secret-expired", "cluster": "aks-sp"})
    assert not graph_secret_valid(emulator.state, APP, secret, datetime.now(UTC))


def test_adapter_reads_credentials_without_secrets(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    application = fresh_estate().get_application(APP)
    [credential] = application.password_credentials
    stored = emulator.state.graph_applications[APP]["passwordCredentials"][0]
    assert credential.key_id == stored["keyId"]
    assert credential.end is not None and credential.end.isoformat().startswith(
        stored["endDateTime"][:19]
    )
    secret = next(iter(emulator.state.graph_applications[APP]["_secrets"].values()))
    assert secret not in repr(application)


# -- rejections ----------------------------------------------------------------------------


def assert_graph_error(response: requests.Response | HttpResponse, status: int, code: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_missing_token_is_401(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    url = f"{emulator.base_url}/graph/v1.0/applications(appId='{APP}')"
    assert_graph_error(
        requests.get(url, verify=emulator.ca_path, timeout=10), 401, "InvalidAuthenticationToken"
    )
    forged = {"Authorization": "Bearer not-a-token"}
    assert_graph_error(
        requests.get(url, headers=forged, verify=emulator.ca_path, timeout=10),
        401,
        "InvalidAuthenticationToken",
    )


def test_arm_token_is_the_wrong_audience(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    arm_token = emulator.state.issue_token(emulator.base_url)
    response = requests.get(
        f"{emulator.base_url}/graph/v1.0/applications(appId='{APP}')",
        headers={"Authorization": f"Bearer {arm_token}"},
        verify=emulator.ca_path,
        timeout=10,
    )
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert "audience" in response.json()["error"]["message"]


def test_unknown_application_is_404(graph: PipelineClient[HttpRequest, HttpResponse]) -> None:
    missing = "11111111-2222-3333-4444-555555555555"
    response = call(graph, "GET", f"/v1.0/applications(appId='{missing}')")
    assert_graph_error(response, 404, "Request_ResourceNotFound")
    assert missing in response.json()["error"]["message"]
    assert_graph_error(
        call(graph, "POST", f"/v1.0/applications(appId='{missing}')/addPassword", {}),
        404,
        "Request_ResourceNotFound",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"passwordCredential": {"endDateTime": "next tuesday"}},
        {"passwordCredential": {"endDateTime": "2001-01-01T00:00:00Z"}},
        {"passwordCredential": "rotate"},
    ],
)
def test_bad_add_password_bodies_are_rejected(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator, body: dict[str, Any]
) -> None:
    assert_graph_error(
        call(graph, "POST", f"/v1.0/applications(appId='{APP}')/addPassword", body),
        400,
        "Request_BadRequest",
    )
    assert len(emulator.state.graph_applications[APP]["passwordCredentials"]) == 1


def test_remove_unknown_key_is_rejected(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    response = call(
        graph,
        "POST",
        f"/v1.0/applications(appId='{APP}')/removePassword",
        {"keyId": "00000000-0000-0000-0000-000000000000"},
    )
    assert_graph_error(response, 400, "Request_BadRequest")
    assert len(emulator.state.graph_applications[APP]["passwordCredentials"]) == 1


def test_malformed_json_is_rejected(
    graph: PipelineClient[HttpRequest, HttpResponse], emulator: Emulator
) -> None:
    request = HttpRequest(
        "POST",
        graph.format_url(f"/v1.0/applications(appId='{APP}')/addPassword"),
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_graph_error(graph.send_request(request), 400, "BadRequest")
