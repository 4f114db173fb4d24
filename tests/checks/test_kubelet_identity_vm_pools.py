"""kubelet-identity-detached on node pools that are not scale sets (type VirtualMachines).

Such pools put the kubelet identity on each node VM (as node auto-provisioning does), so the check
reads VMs too and reconcile-cluster is verified on them. The pool's wire shape is checked against
the AgentPoolsCreate_TypeVirtualMachines examples copied into tests/contract/examples/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.providers.compute import VM
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.checks.kubelet_identity_detached import KubeletIdentityDetached
from shared.config import Settings
from shared.remediations.reconcile_cluster import ReconcileCluster
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips
from tests.support.estate import fresh_estate

EXAMPLES = Path(__file__).parents[1] / "contract" / "examples" / "containerservice"


@pytest.fixture
def estate(emulator: Emulator, app_env: dict[str, str]) -> dict[str, Any]:
    return scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {
                            "name": "rg-aks",
                            "clusters": [
                                {
                                    "name": "aks1",
                                    "nodePools": [
                                        {"name": "system", "mode": "System", "count": 1},
                                        {
                                            "name": "vms",
                                            "type": "VirtualMachines",
                                            "vmSize": "Standard_D2_v3",
                                            "count": 2,
                                        },
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )


def run(emulator: Emulator) -> Finding:
    reader = fresh_estate()
    cluster = reader.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    return KubeletIdentityDetached().run(Target(cluster), reader)


def node_vms(emulator: Emulator) -> list[dict[str, Any]]:
    cluster = scenario.find_cluster(emulator.state, "aks1")
    return scenario.node_pool_vmss(emulator.state, cluster, "vms", kinds=(VM,))


def test_node_vms_are_read_and_pass(emulator: Emulator, estate: dict[str, Any]) -> None:
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert len(finding.evidence["scaleSets"]) == 1
    assert sorted(finding.evidence["virtualMachines"]) == sorted(
        v["id"] for v in node_vms(emulator)
    )
    assert "2 node VMs" in finding.summary


def test_identity_detached_from_node_vms_fails_and_reconcile_fixes_it(
    emulator: Emulator, estate: dict[str, Any]
) -> None:
    # Old main saw only scale sets: PASS while the pool's nodes had no identity to pull with.
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks1", "pool": "vms"}
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL, finding.summary
    assert sorted(finding.evidence["missingOn"]) == sorted(v["id"] for v in node_vms(emulator))
    assert finding.action_id == "reconcile-cluster"

    reader = fresh_estate()
    target = Target(reader.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"]))
    record = ReconcileCluster().apply(finding, target, reader, timeout=30)

    assert record.status == "applied", record.detail
    verified = run(emulator)
    assert verified.status is Status.PASS, verified.summary
    assert verified.evidence["missingOn"] == []


def test_virtual_machines_pool_has_the_example_shape(
    emulator: Emulator, estate: dict[str, Any]
) -> None:
    from azure.mgmt.compute.models import VirtualMachine
    from azure.mgmt.containerservice.models import AgentPool

    factory = ClientFactory(Settings.from_env(os.environ))
    pool = factory.container_service(PROD_SUB).agent_pools.get("rg-aks", "aks1", "vms")
    wire = pool.as_dict()
    assert_round_trips(AgentPool, wire)
    for name in (
        "2026-01-01/AgentPoolsCreate_TypeVirtualMachines.json",
        "2026-06-01/AgentPoolsCreate_TypeVirtualMachines_Autoscale.json",
    ):
        example = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
        props = example["responses"]["200"]["body"]["properties"]
        assert props["type"] == "VirtualMachines"
        assert "count" not in props and "vmSize" not in props
        assert "virtualMachineNodesStatus" in props and "virtualMachinesProfile" in props
        # The product's model parses the example itself.
        parsed = AgentPool(example["responses"]["200"]["body"]).properties
        assert parsed.type_properties_type == "VirtualMachines"
    props = pool.properties
    assert props.type_properties_type == "VirtualMachines"
    assert props.count is None and props.vm_size is None
    assert [(s.size, s.count) for s in props.virtual_machines_profile.scale.manual] == [
        ("Standard_D2_v3", 2)
    ]
    assert [(s.size, s.count) for s in props.virtual_machine_nodes_status] == [
        ("Standard_D2_v3", 2)
    ]
    # The node VMs, as Microsoft.Compute serves them, carry the kubelet identity.
    cluster = scenario.find_cluster(emulator.state, "aks1")
    node_rg = cluster["properties"]["nodeResourceGroup"]
    listed = list(factory.compute(PROD_SUB).virtual_machines.list(node_rg))
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"]
    assert len(listed) == 2
    for vm in listed:
        assert list(vm.identity.user_assigned_identities) == [kubelet]
        assert vm.tags["aks-managed-poolName"] == "vms"
    for vm in node_vms(emulator):
        assert_round_trips(VirtualMachine, vm)
