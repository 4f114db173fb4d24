"""Role assignments above the subscription, tenant-form role ids and deny assignments.

Checked against the specification examples copied into tests/contract/examples/authorization/
(from ../shared/reference/rest-examples/ and Azure/azure-rest-api-specs 2022-04-01): the emulator
answers with their fields, casing and id forms, and the product's adapter parses the examples.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import (
    DenyAssignment,
    RoleAssignment,
    RoleAssignmentCreateParameters,
)

from emulator import scenario
from emulator.providers.authorization import ACR_PULL
from emulator.server import Emulator
from shared.azure import rbac as adapter
from shared.azure.factory import ClientFactory
from shared.config import Settings
from shared.ports.rbac import role_definition_guid
from tests.conftest import PROD_SUB
from tests.contract.test_rbac_routes import assert_wire_shape, http, raw

EXAMPLES = Path(__file__).parent / "examples" / "authorization" / "2022-04-01"
SUB_ID = f"/subscriptions/{PROD_SUB}"
RG_ID = f"{SUB_ID}/resourceGroups/rg-acr"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acr1"
MG_ID = "/providers/Microsoft.Management/managementGroups/mg-platform"
PARENT_ID = "/providers/Microsoft.Management/managementGroups/mg-corp"
PRINCIPAL = "6a1c5b9e-0f7d-4e2b-8c3a-9d8e7f6a5b4c"
SUB_FORM = f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"
TENANT_FORM = f"/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"
TENANT_FORM_PATTERN = re.compile(r"^/providers/Microsoft\.Authorization/roleDefinitions/[^/]+$")


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def client(emulator: Emulator, app_env: dict[str, str]) -> Iterator[AuthorizationManagementClient]:
    scenario.load(
        emulator.state,
        {
            "managementGroups": [
                {"name": "mg-platform", "parent": "mg-corp", "subscriptions": [PROD_SUB]},
                {"name": "mg-corp"},
            ],
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {"name": "rg-aks", "clusters": [{"name": "aks1"}]},
                        {"name": "rg-acr", "registries": [{"name": "acr1"}]},
                    ],
                }
            ],
        },
    )
    # A principal the directory holds (ARM answers PrincipalNotFound for any other object id).
    emulator.state.directory_objects[PRINCIPAL] = "ServicePrincipal"
    factory = ClientFactory(Settings.from_env(os.environ))
    yield factory.authorization(PROD_SUB)
    factory.close()


def create(client: AuthorizationManagementClient, scope: str, role_id: str = SUB_FORM) -> Any:
    parameters = RoleAssignmentCreateParameters(
        role_definition_id=role_id, principal_id=PRINCIPAL, principal_type="ServicePrincipal"
    )
    return client.role_assignments.create(scope, str(uuid.uuid4()), parameters, cls=raw)


@pytest.mark.parametrize(
    ("name", "scope"),
    [
        ("RoleAssignments_CreateForResource.json", REGISTRY_ID),
        ("RoleAssignments_CreateForResourceGroup.json", RG_ID),
    ],
)
def test_put_answers_as_the_create_examples(
    client: AuthorizationManagementClient, name: str, scope: str
) -> None:
    spec = example(name)
    sent = spec["parameters"]["parameters"]["properties"]["roleDefinitionId"]
    answered = spec["responses"]["201"]["body"]
    # The example sends the subscription form and is answered in the tenant form: so are we.
    assert sent.startswith("/subscriptions/")
    assert TENANT_FORM_PATTERN.match(answered["properties"]["roleDefinitionId"])
    body = create(client, scope)
    assert_wire_shape(RoleAssignment, body)
    assert set(answered) <= set(body)
    assert set(answered["properties"]) <= set(body["properties"])
    assert body["properties"]["roleDefinitionId"] == TENANT_FORM
    assert body["properties"]["scope"] == scope  # with its leading slash, as in the example
    assert body["id"] == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{body['name']}"


@pytest.mark.parametrize(
    "name",
    [
        "RoleAssignments_Get.json",
        "RoleAssignments_GetById.json",
        "RoleAssignments_ListForScope.json",
        "RoleAssignments_ListForSubscription.json",
    ],
)
def test_the_adapter_parses_the_examples(name: str) -> None:
    body = example(name)["responses"]["200"]["body"]
    for item in body.get("value", [body]):
        parsed = adapter._assignment(RoleAssignment.deserialize(item))
        assert parsed.role_definition_id.startswith("/providers/Microsoft.Authorization/")
        assert role_definition_guid(parsed.role_definition_id) == parsed.role_definition_name
        assert parsed.scope == item["properties"]["scope"]


def test_deny_assignments_have_the_example_shape(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    from emulator.builders import rbac as builders

    builders._apply_deny(
        emulator.state,
        PROD_SUB,
        "rg-acr",
        {"scope": "acr1", "name": "No pulls", "principals": [PRINCIPAL], "actions": ["*/read"]},
    )
    [item] = example("GetDenyAssignmentByScope.json")["responses"]["200"]["body"]["value"]
    [model] = client.deny_assignments.list_for_scope(REGISTRY_ID, filter="atScope()")
    assert model.principals[0].id == PRINCIPAL
    path = f"{REGISTRY_ID}/providers/Microsoft.Authorization/denyAssignments"
    [body] = http(emulator, "GET", path).json()["value"]
    assert set(item) <= set(body)
    assert set(item["properties"]) <= set(body["properties"])
    assert_wire_shape(DenyAssignment, body)
    # The adapter reads the example and our answer alike.
    for wire in (item, body):
        parsed = adapter._deny(DenyAssignment.deserialize(wire))
        assert parsed.principal_ids and parsed.permissions[0].actions
    # A deny assignment at the registry is not inherited by its resource group.
    assert list(client.deny_assignments.list_for_scope(RG_ID, filter="atScope()")) == []


def test_management_group_and_root_assignments_are_inherited(
    client: AuthorizationManagementClient,
) -> None:
    at_mg = create(client, MG_ID)
    at_parent = create(client, PARENT_ID)
    at_root = create(client, "/")
    assert (
        at_mg["id"] == f"{MG_ID}/providers/Microsoft.Authorization/roleAssignments/{at_mg['name']}"
    )
    assert at_root["properties"]["scope"] == "/"
    assert at_root["id"].startswith("/providers/Microsoft.Authorization/roleAssignments/")
    for body in (at_mg, at_parent, at_root):
        assert body["properties"]["roleDefinitionId"] == TENANT_FORM
    expected = sorted(b["name"] for b in (at_mg, at_parent, at_root))
    listed = client.role_assignments.list_for_scope(REGISTRY_ID, filter="atScope()")
    assert sorted(a.name for a in listed) == expected
    mine = client.role_assignments.list_for_subscription(filter=f"principalId eq '{PRINCIPAL}'")
    assert sorted(a.name for a in mine) == expected
    # A management group's own list: what is made at it and above it.
    at_group = client.role_assignments.list_for_scope(MG_ID, filter="atScope()")
    assert sorted(a.name for a in at_group) == expected
    at_corp = client.role_assignments.list_for_scope(PARENT_ID, filter="atScope()")
    assert sorted(a.name for a in at_corp) == sorted([at_parent["name"], at_root["name"]])


def test_unknown_management_group_is_404(client: AuthorizationManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        create(client, "/providers/Microsoft.Management/managementGroups/nope")


def test_role_definitions_are_served_in_every_form(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    tenant = client.role_definitions.get_by_id(TENANT_FORM, cls=raw)
    assert tenant["id"] == TENANT_FORM
    assert tenant["properties"]["type"] == "BuiltInRole"
    by_group = client.role_definitions.get_by_id(
        f"{MG_ID}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"
    )
    assert by_group.role_name == "AcrPull"
    assert client.role_definitions.get_by_id(SUB_FORM).role_name == "AcrPull"


def test_custom_role_assigned_at_a_management_group_keeps_its_group_form(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    from emulator.builders import rbac as builders

    builders.build_custom_roles(
        emulator.state,
        PROD_SUB,
        "rg-acr",
        "westeurope",
        [
            {
                "name": "Image Puller",
                "actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
                "assignableScopes": [MG_ID],
            }
        ],
    )
    [role] = client.role_definitions.list(SUB_ID, filter="type eq 'CustomRole'")
    body = create(client, MG_ID, role.id)
    assert body["properties"]["roleDefinitionId"] == (
        f"{MG_ID}/providers/Microsoft.Authorization/roleDefinitions/{role.name}"
    )
    assert client.role_definitions.get_by_id(body["properties"]["roleDefinitionId"]).role_name == (
        "Image Puller"
    )


def test_lists_through_a_subscription_name_its_role_ids_as_role_definitions_do(
    client: AuthorizationManagementClient, emulator: Emulator
) -> None:
    # `az role assignment list` joins assignments to `roleDefinitions.list(scope)` by exact id;
    # with the tenant form in the list every roleDefinitionName came out null. ARM lists built-in
    # roles in the subscription form of the request (a captured list in Azure/azure-cli#27509
    # shows it on a management-group assignment too); a PUT still answers the tenant form.
    at_mg = create(client, MG_ID)
    at_registry = create(client, REGISTRY_ID)
    assert at_registry["properties"]["roleDefinitionId"] == TENANT_FORM
    definitions = {d.id: d.role_name for d in client.role_definitions.list(REGISTRY_ID)}
    listed = list(client.role_assignments.list_for_scope(REGISTRY_ID))
    assert {a.name for a in listed} >= {at_mg["name"], at_registry["name"]}
    for assignment in listed:
        assert assignment.role_definition_id == SUB_FORM
        assert definitions[assignment.role_definition_id] == "AcrPull"
    # A list made at the management group itself names no subscription: the tenant form.
    [mine] = client.role_assignments.list_for_scope(MG_ID, filter="atScope()")
    assert mine.role_definition_id == TENANT_FORM
    # Scenarios can serve the examples' tenant form in lists too (the product reads both).
    emulator.state.role_ids_listed_in_tenant_form = True
    listed = list(client.role_assignments.list_for_scope(REGISTRY_ID))
    assert {a.role_definition_id for a in listed} == {TENANT_FORM}
