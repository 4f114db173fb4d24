"""kubelet-identity-detached through the real compute, msi and container service clients."""

from __future__ import annotations

from typing import Any

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.kubelet_identity_detached import KubeletIdentityDetached
from tests.support.estate import fresh_estate


def run(emulator: Emulator, cluster_name: str) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, cluster_name)["id"])
    return KubeletIdentityDetached().run(Target(cluster), estate)


def test_attached_everywhere_passes(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator, "aks-prod-weu")
    assert finding.status is Status.PASS
    assert len(finding.evidence["scaleSets"]) == 3
    assert finding.evidence["missingOn"] == []


def test_detached_from_one_pool_fails_with_that_scale_set(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    scenario.apply_break(
        emulator.state,
        {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu", "pool": "win"},
    )
    finding = run(emulator, "aks-prod-weu")
    assert finding.status is Status.FAIL
    assert [m.rsplit("/", 1)[-1].split("-")[1] for m in finding.evidence["missingOn"]] == ["win"]
    assert finding.evidence["identityDeleted"] is False
    assert finding.action_id == "reconcile-cluster"
    assert "az aks update -g rg-aks-prod -n aks-prod-weu" in finding.commands


def test_deleted_identity_fails_without_a_fix(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-deleted", "cluster": "aks-prod-weu"}
    )
    finding = run(emulator, "aks-prod-weu")
    assert finding.status is Status.FAIL
    assert finding.evidence["identityDeleted"] is True
    assert finding.action_id is None
    assert "cannot bring a deleted identity back" in finding.summary


def test_service_principal_cluster_passes_as_not_applicable(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", ",".join(emulator.state.subscriptions))
    finding = run(emulator, "aks-dev-neu")
    assert finding.status is Status.PASS
    assert finding.evidence == {"servicePrincipal": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}


def test_unreadable_node_resource_group_is_unknown(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    node_rg = f"/subscriptions/{cluster['id'].split('/')[2]}/resourceGroups/{cluster['properties']['nodeResourceGroup']}"
    emulator.deny(node_rg)
    finding = run(emulator, "aks-prod-weu")
    assert finding.status is Status.UNKNOWN
    assert "may not list scale sets in" in finding.summary
    assert finding.action_id is None


def test_deleted_identity_ticket_gives_the_way_out(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    from shared.tickets.render import build_ticket, markdown

    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-deleted", "cluster": "aks-prod-weu"}
    )
    finding = run(emulator, "aks-prod-weu")
    text = markdown(build_ticket(finding, "kubelet-identity-detached is ticket-only"))
    # Old main told the reader to reconcile (a bare `az aks update`), which cannot work here.
    assert "az aks update -g rg-aks-prod -n aks-prod-weu\n" not in text + "\n"
    assert all(not c.endswith("-n aks-prod-weu") for c in finding.commands)
    assert "KUBELET_ID=$(az identity create -g rg-aks-prod -n aks-prod-weu-kubelet" in text
    assert '--role "Managed Identity Operator" --scope $KUBELET_ID' in text
    assert "--assign-kubelet-identity $KUBELET_ID" in text
    assert '--role "AcrPull"' in text
    # A system-assigned control plane cannot take --assign-kubelet-identity alone.
    assert finding.evidence["controlPlaneIdentity"] == "SystemAssigned"
    assert "--assign-identity $CONTROL_PLANE_ID --assign-kubelet-identity $KUBELET_ID" in text
