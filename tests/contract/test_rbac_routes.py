"""Microsoft.Authorization routes: fetched with azure-mgmt-authorization, round-tripped via its models."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import (
    Permission,
    RoleAssignment,
    RoleAssignmentCreateParameters,
    RoleDefinition,
)

from emulator import scenario
from emulator.providers.authorization import ACR_PULL, REPOSITORY_READER
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips

SUB_ID = f"/subscriptions/{PROD_SUB}"
RG_ID = f"{SUB_ID}/resourceGroups/rg-acr"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acr1"
ACR_PULL_ID = f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"
PRINCIPAL = "6a1c5b9e-0f7d-4e2b-8c3a-9d8e7f6a5b4c"
OTHER = "0c4d6a1e-2b3f-4a5c-9d8e-7f6a5b4c3d2e"


def assert_wire_shape(model_cls: Any, body: dict[str, Any]) -> None:
    """ARM sends null properties; msrest drops them on serialize, so check those keys by name."""
    known = {spec["key"] for spec in model_cls._attribute_map.values()}
    nulls = {k for k, v in body.items() if v is None}
    nulls |= {f"properties.{k}" for k, v in body.get("properties", {}).items() if v is None}
    assert nulls <= known, f"{model_cls.__name__} does not know {nulls - known}"
    present = {k: v for k, v in body.items() if v is not None}
    present["properties"] = {k: v for k, v in body.get("properties", {}).items() if v is not None}
    assert_round_trips(model_cls, present)


def raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    """``cls`` for SDK calls: hand back the wire JSON the SDK received."""
    return json.loads(pipeline_response.http_response.text())


@pytest.fixture
def client(emulator: Emulator, app_env: dict[str, str]) -> Iterator[AuthorizationManagementClient]:
    scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {"name": "rg-aks", "clusters": [{"name": "aks1"}]},
                        {"name": "rg-acr", "registries": [{"name": "acr1"}]},
                    ],
                }
            ]
        },
    )
    # Principals the directory holds (ARM answers PrincipalNotFound for any other object id).
    for principal in (PRINCIPAL, OTHER):
        emulator.state.directory_objects[principal] = "ServicePrincipal"
    factory = ClientFactory(Settings.from_env(os.environ))
    yield factory.authorization(PROD_SUB)
    factory.close()


def create(
    client: AuthorizationManagementClient, scope: str, principal: str = PRINCIPAL, **kwargs: Any
) -> Any:
    parameters = RoleAssignmentCreateParameters(
        role_definition_id=kwargs.pop("role_definition_id", ACR_PULL_ID),
        principal_id=principal,
        principal_type=kwargs.pop("principal_type", "ServicePrincipal"),
        **kwargs,
    )
    return client.role_assignments.create(
        scope, kwargs.pop("name", None) or str(uuid.uuid4()), parameters
    )


def http(emulator: Emulator, method: str, path: str, body: Any = None) -> requests.Response:
    token = emulator.state.issue_token(emulator.base_url)
    return requests.request(
        method,
        f"{emulator.base_url}{path}",
        params={"api-version": "2022-04-01"},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=emulator.ca_path,
        timeout=10,
    )


# -- role assignments ----------------------------------------------------------------------


def test_put_role_assignment_round_trips(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    name = str(uuid.uuid4())
    parameters = RoleAssignmentCreateParameters(
        role_definition_id=ACR_PULL_ID, principal_id=PRINCIPAL, principal_type="ServicePrincipal"
    )
    body = client.role_assignments.create(REGISTRY_ID, name, parameters, cls=raw)
    assert_wire_shape(RoleAssignment, body)
    assert body["id"] == f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert body["type"] == "Microsoft.Authorization/roleAssignments"
    assert body["properties"]["scope"] == REGISTRY_ID
    # Asked for in the subscription form, answered in the tenant form (as the examples show).
    assert body["properties"]["roleDefinitionId"] == (
        f"/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"
    )
    put = next(e for e in emulator.journal("arm") if e.method == "PUT")
    assert put.status == 201
    assert put.api_version == "2022-04-01"
    assert emulator.state.get(body["id"]) is not None


def test_get_role_assignment_round_trips(client: AuthorizationManagementClient) -> None:
    created = create(client, REGISTRY_ID)
    body = client.role_assignments.get(REGISTRY_ID, created.name, cls=raw)
    assert_wire_shape(RoleAssignment, body)
    model = client.role_assignments.get_by_id(created.id)
    assert (model.principal_id, model.principal_type, model.scope) == (
        PRINCIPAL,
        "ServicePrincipal",
        REGISTRY_ID,
    )
    assert model.created_on is not None


def test_list_for_scope_includes_inherited_and_below(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    at_sub = create(client, SUB_ID)
    at_rg = create(client, RG_ID)
    at_registry = create(client, REGISTRY_ID)
    create(client, f"{SUB_ID}/resourceGroups/rg-aks")  # a sibling scope: never listed for rg-acr
    names = lambda items: sorted(a.name for a in items)  # noqa: E731
    assert names(client.role_assignments.list_for_scope(REGISTRY_ID)) == names(
        [at_sub, at_rg, at_registry]
    )
    assert names(client.role_assignments.list_for_scope(RG_ID)) == names(
        [at_sub, at_rg, at_registry]
    )
    assert names(client.role_assignments.list_for_scope(RG_ID, filter="atScope()")) == names(
        [at_sub, at_rg]
    )
    page = http(
        emulator, "GET", f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments"
    ).json()
    for item in page["value"]:
        assert_wire_shape(RoleAssignment, item)


def test_list_filters_by_principal(client: AuthorizationManagementClient) -> None:
    mine = create(client, REGISTRY_ID)
    create(client, REGISTRY_ID, OTHER)
    for query in (f"principalId eq '{PRINCIPAL}'", f"assignedTo('{PRINCIPAL}')"):
        assert [a.name for a in client.role_assignments.list_for_subscription(filter=query)] == [
            mine.name
        ]
    # atScope(): at the scope or above it, never below.
    at_scope = f"atScope() and assignedTo('{PRINCIPAL}')"
    assert [
        a.name for a in client.role_assignments.list_for_scope(REGISTRY_ID, filter=at_scope)
    ] == [mine.name]
    assert list(client.role_assignments.list_for_subscription(filter=at_scope)) == []


def test_list_pages_with_next_link(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    emulator.state.page_size = 2
    principals = [str(uuid.uuid4()) for _ in range(5)]
    emulator.state.directory_objects.update(dict.fromkeys(principals, "ServicePrincipal"))
    created = {create(client, REGISTRY_ID, principal).name for principal in principals}
    assert {a.name for a in client.role_assignments.list_for_scope(REGISTRY_ID)} == created
    lists = [
        e
        for e in emulator.journal("arm")
        if e.method == "GET" and e.path.endswith("/roleAssignments")
    ]
    assert len(lists) == 3


def test_delete_role_assignment(client: AuthorizationManagementClient, emulator: Emulator) -> None:
    created = create(client, REGISTRY_ID)
    client.role_assignments.delete(REGISTRY_ID, created.name)
    assert emulator.state.get(created.id) is None
    with pytest.raises(ResourceNotFoundError) as caught:
        client.role_assignments.get(REGISTRY_ID, created.name)
    assert caught.value.error is not None and caught.value.error.code == "RoleAssignmentNotFound"
    assert client.role_assignments.delete(REGISTRY_ID, created.name) is None
    assert [e.status for e in emulator.journal("arm") if e.method == "DELETE"] == [200, 204]


# -- role definitions ----------------------------------------------------------------------


@pytest.mark.parametrize("scope", [SUB_ID, RG_ID, REGISTRY_ID])
def test_builtin_role_definition_round_trips_at_any_scope(
    client: AuthorizationManagementClient, scope: str
) -> None:
    body = client.role_definitions.get(scope, ACR_PULL, cls=raw)
    assert_wire_shape(RoleDefinition, body)
    assert body["id"] == ACR_PULL_ID
    model = client.role_definitions.get_by_id(ACR_PULL_ID)
    assert (model.role_name, model.role_type) == ("AcrPull", "BuiltInRole")
    assert model.permissions[0].actions == ["Microsoft.ContainerRegistry/registries/pull/read"]


def test_repository_reader_grants_repository_data_actions(
    client: AuthorizationManagementClient,
) -> None:
    model = client.role_definitions.get(SUB_ID, REPOSITORY_READER)
    assert model.role_name == "Container Registry Repository Reader"
    assert model.permissions[0].actions == []
    assert (
        "Microsoft.ContainerRegistry/registries/repositories/content/read"
        in model.permissions[0].data_actions
    )


def test_list_role_definitions_by_name(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    [acr_pull] = client.role_definitions.list(REGISTRY_ID, filter="roleName eq 'AcrPull'")
    assert acr_pull.id == ACR_PULL_ID
    page = http(
        emulator, "GET", f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions"
    ).json()
    assert {"Owner", "Contributor", "Reader", "AcrPush"} <= {
        d["properties"]["roleName"] for d in page["value"]
    }
    for item in page["value"]:
        assert_wire_shape(RoleDefinition, item)


def test_custom_role_definition_round_trips_and_can_be_assigned(
    client: AuthorizationManagementClient,
) -> None:
    guid = str(uuid.uuid4())
    definition = RoleDefinition(
        role_name="Image Puller",
        description="pull only",
        role_type="CustomRole",
        permissions=[Permission(actions=["Microsoft.ContainerRegistry/registries/pull/read"])],
        assignable_scopes=[SUB_ID],
    )
    body = client.role_definitions.create_or_update(SUB_ID, guid, definition, cls=raw)
    assert_wire_shape(RoleDefinition, body)
    assert body["properties"]["type"] == "CustomRole"
    [listed] = client.role_definitions.list(SUB_ID, filter="type eq 'CustomRole'")
    assert listed.name == guid
    assigned = create(client, REGISTRY_ID, role_definition_id=body["id"])
    assert assigned.role_definition_id == body["id"]


# -- rejections ----------------------------------------------------------------------------


def error_code(exc: HttpResponseError) -> str:
    return exc.error.code if exc.error is not None else ""


def test_name_must_be_a_guid(client: AuthorizationManagementClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, name="acrpull-for-aks1")
    assert (caught.value.status_code, error_code(caught.value)) == (400, "InvalidRoleAssignmentId")


def test_unknown_role_definition_is_rejected(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    unknown = f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{uuid.uuid4()}"
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, role_definition_id=unknown)
    assert (caught.value.status_code, error_code(caught.value)) == (
        400,
        "RoleDefinitionDoesNotExist",
    )
    assert not [
        r
        for r in emulator.state.iter_resources()
        if r["type"] == "Microsoft.Authorization/roleAssignments"
    ]


def test_same_assignment_under_another_name_conflicts(
    client: AuthorizationManagementClient,
) -> None:
    first = create(client, REGISTRY_ID)
    with pytest.raises(ResourceExistsError) as caught:
        create(client, REGISTRY_ID)
    assert (caught.value.status_code, error_code(caught.value)) == (409, "RoleAssignmentExists")
    assert caught.value.message and "The role assignment already exists." in caught.value.message
    # The same name again is an idempotent success.
    again = create(client, REGISTRY_ID, name=first.name)
    assert again.id == first.id


def test_principal_cannot_change_under_the_same_name(client: AuthorizationManagementClient) -> None:
    first = create(client, REGISTRY_ID)
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, OTHER, name=first.name)
    assert error_code(caught.value) == "RoleAssignmentUpdateNotPermitted"


def test_principal_type_must_match_the_directory(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    kubelet = scenario.find_cluster(emulator.state, "aks1")["properties"]["identityProfile"][
        "kubeletidentity"
    ]
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, kubelet["objectId"], principal_type="User")
    assert error_code(caught.value) == "UnmatchedPrincipalType"
    assert create(client, REGISTRY_ID, kubelet["objectId"]).principal_type == "ServicePrincipal"


def test_scope_must_exist(client: AuthorizationManagementClient) -> None:
    missing = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/nosuchacr"
    with pytest.raises(ResourceNotFoundError):
        create(client, missing)


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"roleDefinitionId": ACR_PULL_ID}, "InvalidRequestContent"),
        ({"principalId": PRINCIPAL}, "InvalidRequestContent"),
        ({"roleDefinitionId": ACR_PULL_ID, "principalId": "not-a-guid"}, "InvalidPrincipalId"),
        (
            {"roleDefinitionId": ACR_PULL_ID, "principalId": PRINCIPAL, "principalType": "Robot"},
            "InvalidRequestContent",
        ),
        ({"roleDefinitionId": "AcrPull", "principalId": PRINCIPAL}, "InvalidRoleDefinitionId"),
    ],
)
def test_bad_bodies_are_rejected(
    client: AuthorizationManagementClient, emulator: Emulator, properties: dict[str, str], code: str
) -> None:
    path = f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    response = http(emulator, "PUT", path, {"properties": properties})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert emulator.state.get(path) is None


def test_unsupported_filter_is_rejected(client: AuthorizationManagementClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        list(client.role_assignments.list_for_scope(REGISTRY_ID, filter="roleDefinitionId eq 'x'"))
    assert (caught.value.status_code, error_code(caught.value)) == (400, "UnsupportedQuery")


def test_unknown_role_definition_get_is_404(client: AuthorizationManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        client.role_definitions.get(SUB_ID, str(uuid.uuid4()))
    assert error_code(caught.value) == "RoleDefinitionDoesNotExist"


# -- PrincipalNotFound: the directory, deleted identities, replication ----------------------


def test_assignment_for_a_principal_the_directory_lacks_is_400_principal_not_found(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    stranger = "3d6f0a2b-9c1e-4b7d-8a5f-2e4c6b8d0f1a"
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, stranger)
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "PrincipalNotFound"
    assert stranger.replace("-", "") in str(caught.value)
    assert not [a for a in client.role_assignments.list_for_scope(REGISTRY_ID)]


def test_a_client_id_where_the_object_id_belongs_is_principal_not_found(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks1")
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, kubelet["clientId"])
    assert error_code(caught.value) == "PrincipalNotFound"
    assert create(client, REGISTRY_ID, kubelet["objectId"]).principal_id == kubelet["objectId"]


def test_a_deleted_identity_is_principal_not_found_although_its_assignments_remain(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks1")
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]
    create(client, REGISTRY_ID, kubelet["objectId"])
    emulator.state.delete(kubelet["resourceId"])
    with pytest.raises(HttpResponseError) as caught:
        create(client, RG_ID, kubelet["objectId"])
    assert error_code(caught.value) == "PrincipalNotFound"


def test_a_new_identity_is_principal_not_found_until_it_replicates(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    emulator.state.replication_delay = 3600.0
    identity = scenario.add_identity(
        emulator.state, PROD_SUB, "rg-acr", "westeurope", "just-created"
    )
    principal = identity["properties"]["principalId"]
    with pytest.raises(HttpResponseError) as caught:
        create(client, REGISTRY_ID, principal)
    assert error_code(caught.value) == "PrincipalNotFound"
    assert "replication delay" in str(caught.value)
    emulator.state.replication_delay = 0.0  # replicated
    assert create(client, REGISTRY_ID, principal).principal_id == principal
