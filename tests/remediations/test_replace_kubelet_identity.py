"""replace-kubelet-identity: a deleted kubelet identity replaced as AKS allows it, end to end.

Through the indexed Event Grid function (a VMSS write event), azure-mgmt-msi,
azure-mgmt-authorization and azure-mgmt-containerservice against the emulator, which refuses a
new kubelet identity as AKS does (no user-assigned control plane; no Managed Identity Operator).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice.models import UserAssignedIdentity
from azure.mgmt.msi.models import Identity

from emulator import scenario
from emulator.providers import authorization as authz
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.integration.test_kubelet_identity_loop import VMSS_WRITE, deliver
from tests.support.events import arm_event

CLUSTER, REGISTRY = "aks-uami", "acruami"
NODE_RG = f"MC_rg-aks_{CLUSTER}_westeurope"
NEW_ID = (
    f"/subscriptions/{PROD_SUB}/resourceGroups/{NODE_RG}/providers/"
    f"Microsoft.ManagedIdentity/userAssignedIdentities/{CLUSTER}-kubelet"
)


def estate_spec(control_plane: str = "UserAssigned") -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-acr",
                        "registries": [
                            {"name": REGISTRY, "repositories": {"app": {"v1": ["linux/amd64"]}}}
                        ],
                    },
                    {
                        "name": "rg-aks",
                        "clusters": [
                            {
                                "name": CLUSTER,
                                "controlPlaneIdentity": control_plane,
                                "attachedRegistries": [REGISTRY],
                                "namespaces": ["shop"],
                                "workloads": [
                                    {
                                        "namespace": "shop",
                                        "name": "cart",
                                        "image": f"{REGISTRY}.azurecr.io/app:v1",
                                    }
                                ],
                            }
                        ],
                    },
                ],
            }
        ],
        "breaks": [{"cause": "kubelet-identity-deleted", "cluster": CLUSTER}],
    }


@pytest.fixture
def factory(app_env: dict[str, str]) -> Iterator[ClientFactory]:
    made = ClientFactory(Settings.from_env(os.environ))
    yield made
    made.close()


def vmss_event(emulator: Emulator) -> dict[str, Any]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    [vmss] = scenario.node_pool_vmss(emulator.state, cluster)
    return arm_event(vmss["id"], VMSS_WRITE)


def assignments_of(emulator: Emulator, principal: str) -> list[dict[str, Any]]:
    return [
        a["properties"]
        for a in authz.assignments(emulator.state)
        if a["properties"]["principalId"].lower() == principal.lower()
    ]


def test_the_emulator_creates_identities_as_azure_does(
    emulator: Emulator, factory: ClientFactory
) -> None:
    scenario.load(emulator.state, estate_spec())
    client = factory.msi(PROD_SUB)
    created = client.user_assigned_identities.create_or_update(
        "rg-aks", "id-new", Identity(location="westeurope")
    )
    assert created.principal_id and created.client_id and created.tenant_id
    again = client.user_assigned_identities.create_or_update(
        "rg-aks", "id-new", Identity(location="westeurope", tags={"a": "b"})
    )
    assert (again.principal_id, again.client_id) == (created.principal_id, created.client_id)
    assert again.tags == {"a": "b"}


def test_aks_refuses_a_kubelet_identity_its_control_plane_may_not_assign(
    emulator: Emulator, factory: ClientFactory
) -> None:
    scenario.load(emulator.state, estate_spec())
    factory.msi(PROD_SUB).user_assigned_identities.create_or_update(
        NODE_RG, f"{CLUSTER}-kubelet", Identity(location="westeurope")
    )
    client = factory.container_service(PROD_SUB)
    cluster = client.managed_clusters.get("rg-aks", CLUSTER)
    cluster.identity_profile["kubeletidentity"] = UserAssignedIdentity(resource_id=NEW_ID)
    with pytest.raises(HttpResponseError) as raised:
        client.managed_clusters.begin_create_or_update("rg-aks", CLUSTER, cluster).result()
    assert raised.value.error.code == "CustomKubeletIdentityMissingPermissionError"
    assert "Managed Identity Operator" in raised.value.error.message


def test_aks_refuses_it_on_a_system_assigned_control_plane(
    emulator: Emulator, factory: ClientFactory
) -> None:
    scenario.load(emulator.state, estate_spec("SystemAssigned"))
    factory.msi(PROD_SUB).user_assigned_identities.create_or_update(
        NODE_RG, f"{CLUSTER}-kubelet", Identity(location="westeurope")
    )
    client = factory.container_service(PROD_SUB)
    cluster = client.managed_clusters.get("rg-aks", CLUSTER)
    cluster.identity_profile["kubeletidentity"] = UserAssignedIdentity(resource_id=NEW_ID)
    with pytest.raises(HttpResponseError) as raised:
        client.managed_clusters.begin_create_or_update("rg-aks", CLUSTER, cluster).result()
    assert raised.value.error.code == "CustomKubeletIdentityOnlySupportedOnUserAssignedMSICluster"


def test_a_deleted_kubelet_identity_is_replaced_and_verified(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.load(emulator.state, estate_spec())
    outcome = deliver(functions, vmss_event(emulator), caplog)

    assert outcome["verdict"] == "remediated", outcome["reason"]
    [action] = outcome["actions"]
    assert action["action"] == "replace-kubelet-identity" and action["status"] == "applied"
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]
    assert kubelet["resourceId"] == NEW_ID
    identity = emulator.state.get(NEW_ID)
    assert identity is not None and kubelet["objectId"] == identity["properties"]["principalId"]
    # The control plane may assign it; the new identity may pull; the node pools carry it.
    [control_plane] = cluster["identity"]["userAssignedIdentities"].values()
    operator = assignments_of(emulator, control_plane["principalId"])
    assert [(a["scope"], a["roleDefinitionId"].rsplit("/", 1)[-1]) for a in operator] == [
        (NEW_ID, authz.MANAGED_IDENTITY_OPERATOR)
    ]
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"]
    pull = assignments_of(emulator, identity["properties"]["principalId"])
    assert [(a["scope"], a["roleDefinitionId"].rsplit("/", 1)[-1]) for a in pull] == [
        (registry, authz.ACR_PULL)
    ]
    [vmss] = scenario.node_pool_vmss(emulator.state, cluster)
    assert NEW_ID in vmss["identity"]["userAssignedIdentities"]
    assert [v["status"] for v in outcome["verification"]] == ["PASS"]

    # Idempotent: a redelivery finds nothing to do.
    again = deliver(functions, {**vmss_event(emulator), "id": "evt-again"}, caplog)
    assert again["verdict"] != "remediated"
    assert len(assignments_of(emulator, control_plane["principalId"])) == 1


def test_off_by_default_it_tickets_the_way_out(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    policy = Path(app_env["POLICY_PATH"]).read_text(encoding="utf-8")
    path = tmp_path / "policy.yaml"
    path.write_text(policy.replace("  replace-kubelet-identity: auto\n", ""), encoding="utf-8")
    monkeypatch.setenv("POLICY_PATH", str(path))
    scenario.load(emulator.state, estate_spec())
    outcome = deliver(functions, vmss_event(emulator), caplog)
    assert outcome["verdict"] == "needs-attention", outcome["reason"]
    assert "replace-kubelet-identity is `off`" in outcome["reason"]
    assert emulator.state.get(NEW_ID) is None
    commands = outcome["findings"][0]["commands"]
    assert any("--assign-kubelet-identity" in c for c in commands)


def test_a_system_assigned_control_plane_gets_a_ticket_only(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.load(emulator.state, estate_spec("SystemAssigned"))
    outcome = deliver(functions, vmss_event(emulator), caplog)
    assert outcome["findings"][0]["action"] is None
    assert emulator.state.get(NEW_ID) is None
