"""Admin credentials by slot and a user-assigned control plane identity, against the examples.

RegistryListCredentials and RegistryRegenerateCredential (containerregistry 2025-11-01) and
ManagedClustersCreate_Update (containerservice 2026-07-01, the only stable AKS example with a
user-assigned control plane identity) are copied from ../shared/reference/rest-examples/ into
tests/contract/examples/.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.containerregistry.models import RegenerateCredentialParameters

from emulator import scenario
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.contract.test_rbac_routes import raw

EXAMPLES = Path(__file__).parent / "examples"


def example(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / path).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def factory(emulator: Emulator, app_env: dict[str, str]) -> Iterator[ClientFactory]:
    spec = {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {"name": "rg-acr", "registries": [{"name": "acr1", "adminUserEnabled": True}]},
                    {
                        "name": "rg-aks",
                        "clusters": [{"name": "aks1", "controlPlaneIdentity": "UserAssigned"}],
                    },
                ],
            }
        ]
    }
    scenario.load(emulator.state, spec)
    made = ClientFactory(Settings.from_env(os.environ))
    yield made
    made.close()


def test_list_credentials_names_both_slots_as_the_example(factory: ClientFactory) -> None:
    wanted = example("containerregistry/2025-11-01/RegistryListCredentials.json")
    body = factory.container_registry(PROD_SUB).registries.list_credentials(
        "rg-acr", "acr1", cls=raw
    )
    shape = wanted["responses"]["200"]["body"]
    assert set(body) == set(shape)
    assert body["username"] == "acr1"  # the registry's name, as myRegistry in the example
    assert [p["name"] for p in body["passwords"]] == [p["name"] for p in shape["passwords"]]
    assert all(set(p) == {"name", "value"} for p in body["passwords"])


def test_regenerate_changes_one_slot_and_returns_both(factory: ClientFactory) -> None:
    wanted = example("containerregistry/2025-11-01/RegistryRegenerateCredential.json")
    assert wanted["parameters"]["regenerateCredentialParameters"] == {"name": "password"}
    client = factory.container_registry(PROD_SUB).registries
    before = {p.name: p.value for p in client.list_credentials("rg-acr", "acr1").passwords}
    body = client.regenerate_credential(
        "rg-acr", "acr1", RegenerateCredentialParameters(name="password2"), cls=raw
    )
    assert [p["name"] for p in body["passwords"]] == ["password", "password2"]
    after = {p["name"]: p["value"] for p in body["passwords"]}
    assert after["password"] == before["password"]
    assert after["password2"] != before["password2"]


def test_user_assigned_control_plane_identity_has_the_example_shape(
    factory: ClientFactory,
) -> None:
    spec = example("containerservice/2026-07-01/ManagedClustersCreate_Update.json")
    sent = spec["parameters"]["parameters"]["identity"]
    answered = spec["responses"]["200"]["body"]["identity"]
    body = factory.container_service(PROD_SUB).managed_clusters.get("rg-aks", "aks1", cls=raw)
    identity = body["identity"]
    assert set(identity) == set(answered) == {"type", "userAssignedIdentities"}
    assert identity["type"] == answered["type"] == "UserAssigned"
    [values] = identity["userAssignedIdentities"].values()
    [example_values] = answered["userAssignedIdentities"].values()
    assert set(values) == set(example_values) == {"clientId", "principalId"}
    # The example PUTs the map's values as {} and is answered with the ids filled in: so are we.
    [identity_id] = identity["userAssignedIdentities"]
    assert list(sent["userAssignedIdentities"].values()) == [{}]
    client = factory.container_service(PROD_SUB).managed_clusters
    cluster = client.get("rg-aks", "aks1")
    cluster.identity.user_assigned_identities = {identity_id: {}}
    again = client.begin_create_or_update("rg-aks", "aks1", cluster).result()
    assert (
        again.identity.user_assigned_identities[identity_id].principal_id == (values["principalId"])
    )
