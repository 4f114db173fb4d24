"""The first closed loop: a VMSS write event -> check -> reconcile -> verification.

Every test goes through the indexed Event Grid function, the real SDK clients and the emulator,
and asserts on the emulator's state and journal rather than on our own return values alone.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from emulator import scenario
from emulator.events import with_string_data
from emulator.server import Emulator
from tests.conftest import SANDBOX_SUB
from tests.support.events import arm_event, as_cloud_event, trigger_object

VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
CLUSTER = "aks-prod-weu"


def deliver(
    functions: dict[str, Any], payload: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> dict[str, Any]:
    """Invoke the indexed function with the worker's trigger object; return the logged outcome."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared.runtime"):
        functions["arm_events"].get_user_function()(trigger_object(payload))
    outcomes = [
        r.getMessage()[len("outcome ") :]
        for r in caplog.records
        if r.getMessage().startswith("outcome ")
    ]
    if not outcomes:
        return {"verdict": "ignored", "reason": " ".join(r.getMessage() for r in caplog.records)}
    return json.loads(outcomes[-1])


def pool_vmss(emulator: Emulator, pool: str = "system") -> dict[str, Any]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    return scenario.node_pool_vmss(emulator.state, cluster, pool)[0]


def kubelet_id(emulator: Emulator) -> str:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    return cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"]


def attached(emulator: Emulator) -> dict[str, bool]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    wanted = kubelet_id(emulator).lower()
    return {
        vmss["name"]: wanted
        in {k.lower() for k in vmss.get("identity", {}).get("userAssignedIdentities", {})}
        for vmss in scenario.node_pool_vmss(emulator.state, cluster)
    }


def puts(emulator: Emulator) -> list[str]:
    return [e.path for e in emulator.journal("arm") if e.method == "PUT"]


@pytest.fixture
def broken(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-detached", "cluster": CLUSTER})
    assert not any(attached(emulator).values())
    return pool_vmss(emulator)


@pytest.mark.parametrize("schema", ["event-grid", "cloud-events", "string-data"])
def test_detached_identity_is_reattached_by_reconcile(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    schema: str,
) -> None:
    event = arm_event(broken["id"], VMSS_WRITE)
    wire = {"event-grid": event, "cloud-events": as_cloud_event(event)}.get(schema)
    outcome = deliver(functions, wire or with_string_data(event), caplog)

    assert outcome["verdict"] == "remediated", outcome["reason"]
    assert outcome["findings"][0]["cause"] == "kubelet-identity-detached"
    assert outcome["findings"][0]["status"] == "FAIL"
    assert len(outcome["findings"][0]["evidence"]["missingOn"]) == 3
    assert outcome["actions"] == [
        {
            "action": "reconcile-cluster",
            "status": "applied",
            "detail": "the reconcile operation succeeded",
        }
    ]
    assert outcome["verification"][0]["status"] == "PASS"
    # The emulator's own state shows the fix, on every node pool scale set.
    assert all(attached(emulator).values())
    cluster_path = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    assert puts(emulator) == [cluster_path]
    put = next(e for e in emulator.journal("arm") if e.method == "PUT")
    assert put.body["properties"]["identityProfile"]["kubeletidentity"]["resourceId"] == kubelet_id(
        emulator
    )
    assert put.api_version


def test_the_reconcile_keeps_what_azure_sets_on_the_cluster(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The product's own reconcile (GET, then PUT of what it read) leaves the cluster as Azure
    would hold it: the identity's principalId/tenantId and each pool's provisioningState,
    currentOrchestratorVersion and nodeImageVersion are the server's, read back through the SDK."""
    from azure.mgmt.containerservice import ContainerServiceClient

    from shared.azure.factory import ClientFactory
    from shared.config import Settings

    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    before = json.loads(json.dumps(emulator.state.get(cluster_id)))
    outcome = deliver(functions, arm_event(broken["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "remediated", outcome["reason"]
    assert [e.path for e in emulator.journal("arm") if e.method == "PUT"] == [cluster_id]

    group = cluster_id.split("/")[4]
    client: ContainerServiceClient = ClientFactory(Settings.from_env(app_env)).container_service(
        cluster_id.split("/")[2]
    )
    after = client.managed_clusters.get(group, CLUSTER)
    assert after.identity is not None and after.provisioning_state == "Succeeded"
    assert after.identity.principal_id == before["identity"]["principalId"]
    assert after.identity.tenant_id == before["identity"]["tenantId"]
    assert after.identity.principal_id and after.identity.tenant_id
    server_side = ("provisioningState", "currentOrchestratorVersion", "nodeImageVersion")
    assert [
        {
            "provisioningState": p.provisioning_state,
            "currentOrchestratorVersion": p.current_orchestrator_version,
            "nodeImageVersion": p.node_image_version,
        }
        for p in after.agent_pool_profiles or []
    ] == [{k: p[k] for k in server_side} for p in before["properties"]["agentPoolProfiles"]]
    assert after.fqdn == before["properties"]["fqdn"]
    kubelet = (after.identity_profile or {})["kubeletidentity"]
    assert (kubelet.client_id, kubelet.object_id) == (
        before["properties"]["identityProfile"]["kubeletidentity"]["clientId"],
        before["properties"]["identityProfile"]["kubeletidentity"]["objectId"],
    )


def test_scale_set_outside_aks_does_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    web = next(r for r in emulator.state.iter_resources() if r["name"] == "web-vmss")
    outcome = deliver(functions, arm_event(web["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "ignored"
    assert "not in the node resource group of an AKS cluster" in outcome["reason"]
    assert puts(emulator) == []


def test_scale_set_with_identity_present_does_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = deliver(functions, arm_event(pool_vmss(emulator)["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "healthy"
    assert outcome["findings"][0]["status"] == "PASS"
    assert puts(emulator) == []


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("Microsoft.Resources.ResourceWriteFailure", "Failed"),
        ("Microsoft.Resources.ResourceWriteCancel", "Canceled"),
        ("Microsoft.Resources.ResourceWriteSuccess", "Failed"),
    ],
)
def test_failed_or_canceled_operation_does_nothing(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    event_type: str,
    status: str,
) -> None:
    outcome = deliver(
        functions, arm_event(broken["id"], VMSS_WRITE, event_type=event_type, status=status), caplog
    )
    assert outcome["verdict"] == "ignored"
    assert "did not succeed" in outcome["reason"]
    assert emulator.journal("arm") == []
    assert not any(attached(emulator).values())


def test_subscription_outside_scope_does_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dev = scenario.find_cluster(emulator.state, "aks-dev-neu")
    vmss = scenario.node_pool_vmss(emulator.state, dev)[0]
    outcome = deliver(
        functions, arm_event(vmss["id"], VMSS_WRITE, subscription_id=SANDBOX_SUB), caplog
    )
    assert outcome["verdict"] == "ignored"
    assert "outside the configured scope" in outcome["reason"]
    assert emulator.journal("arm") == []


def test_other_tenant_does_nothing(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
    event = arm_event(broken["id"], VMSS_WRITE, tenant_id="11111111-2222-3333-4444-555555555555")
    outcome = deliver(functions, event, caplog)
    assert outcome["verdict"] == "ignored"
    assert "not the configured tenant" in outcome["reason"]
    assert emulator.journal("arm") == []


def test_failed_reconcile_operation_is_reported(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.inject(r"/managedClusters/aks-prod-weu$", lro_fails=True)
    outcome = deliver(functions, arm_event(broken["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "remediation-failed"
    assert outcome["actions"][0]["status"] == "failed"
    assert "Failed" in outcome["actions"][0]["detail"]
    assert not any(attached(emulator).values())
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    assert cluster["properties"]["provisioningState"] == "Failed"


def test_identity_still_missing_after_reconcile_is_reported(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # AKS skips a scale set it cannot update (for example one under a ReadOnly lock).
    emulator.state.reconcile_skips.add(broken["id"].lower())
    outcome = deliver(functions, arm_event(broken["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "remediation-failed"
    assert outcome["actions"][0]["status"] == "applied"
    assert outcome["verification"][0]["status"] == "FAIL"
    assert outcome["verification"][0]["evidence"]["missingOn"] == [broken["id"]]
    assert attached(emulator)[broken["name"]] is False


def test_deleted_identity_is_not_reconciled(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-deleted", "cluster": CLUSTER})
    outcome = deliver(functions, arm_event(pool_vmss(emulator)["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "needs-attention"
    assert outcome["findings"][0]["evidence"]["identityDeleted"] is True
    assert outcome["findings"][0]["action"] is None
    assert puts(emulator) == []


def test_dry_run_plans_and_changes_nothing(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")
    outcome = deliver(functions, arm_event(broken["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "planned"
    assert outcome["plans"][0]["commands"] == ["az aks update -g rg-aks-prod -n aks-prod-weu"]
    assert puts(emulator) == []
    assert not any(attached(emulator).values())


def test_throttled_reads_are_retried(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.inject(r"/virtualMachineScaleSets$", method="GET", status=429, retry_after=0, times=1)
    outcome = deliver(functions, arm_event(broken["id"], VMSS_WRITE), caplog)
    assert outcome["verdict"] == "remediated"
    statuses = [
        e.status for e in emulator.journal("arm") if e.path.endswith("/virtualMachineScaleSets")
    ]
    assert statuses[:2] == [429, 200]


def test_persistent_server_errors_raise_so_event_grid_retries(
    emulator: Emulator,
    broken: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.errors import TransientError

    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    emulator.inject(r"/managedClusters$", method="GET", status=500)
    with pytest.raises(TransientError):
        deliver(functions, arm_event(broken["id"], VMSS_WRITE), caplog)
    assert puts(emulator) == []


def test_malformed_event_is_logged_and_ignored(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = {
        "id": "x",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "data": {"status": 3},
    }
    outcome = deliver(functions, payload, caplog)
    assert outcome["verdict"] == "ignored"
    assert "malformed" in outcome["reason"]
    assert emulator.journal("arm") == []
