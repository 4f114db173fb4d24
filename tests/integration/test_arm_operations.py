"""Every ARM operation the subscription system topic delivers (shared.engine.OPERATION_CAUSES),
as real wire JSON in both schemas, through the indexed ``arm_events`` function, against a broken
emulator estate: each ends in the finding of its cause and a ticket (GitHub issue) for it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from emulator import scenario
from emulator.events import as_cloud_event
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared import engine
from tests.checks import test_pull_secret_token_invalid as tokens
from tests.support.events import arm_event
from tests.support.triggers import deliver_event, ticket_policy

__all__ = ["ticket_policy"]  # the fixture, used by name

WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"
ACTION = "Microsoft.Resources.ResourceActionSuccess"


def private_estate() -> dict[str, Any]:
    """The hub-and-spoke estate with its spoke cluster attached to the private registry."""
    import yaml

    estate: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8")
    )
    estate = copy.deepcopy(estate)
    for group in estate["subscriptions"][0]["resourceGroups"]:
        for cluster in group.get("clusters", []):
            if cluster["name"] == "aks-spoke-weu":
                cluster["attachedRegistries"] = ["acrhubweu"]
    return estate


def resource(emulator: Emulator, type_: str, name: str) -> str:
    found = [
        r["id"]
        for r in emulator.state.iter_resources()
        if r.get("type", "").lower() == type_.lower() and r["name"] == name
    ]
    assert found, f"no {type_} {name}"
    return str(found[0])


def pool_vmss(emulator: Emulator) -> str:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    return str(scenario.node_pool_vmss(emulator.state, cluster)[0]["id"])


def role_assignment_at(emulator: Emulator, scope: str) -> str:
    # The event names the assignment that is gone; any assignment id at that scope will do.
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/0b7e3f5a-6c1d-4e2f-9a8b-7c6d5e4f3a2b"


@dataclass(frozen=True)
class Case:
    operation: str
    event_type: str
    estate: Callable[[], Any]
    breaks: dict[str, Any]
    resource: Callable[[Emulator], str]
    cause: str
    cluster: str


CASES = [
    Case(
        engine.VMSS_WRITE,
        WRITE,
        lambda: "sample",
        {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"},
        pool_vmss,
        "kubelet-identity-detached",
        "aks-prod-weu",
    ),
    Case(
        engine.REGISTRY_CREDENTIALS,
        ACTION,
        lambda: "sample",
        {"cause": "pull-secret-admin-stale", "cluster": "aks-prod-weu"},
        lambda emu: scenario.find_registry(emu.state, "acrprodweu")["id"],
        "pull-secret-admin-stale",
        "aks-prod-weu",
    ),
    Case(
        engine.ROLE_ASSIGNMENT_DELETE,
        DELETE,
        lambda: "sample",
        {"cause": "acrpull-missing", "cluster": "aks-prod-weu", "registry": "acrprodweu"},
        lambda emu: role_assignment_at(emu, scenario.find_registry(emu.state, "acrprodweu")["id"]),
        "acrpull-missing",
        "aks-prod-weu",
    ),
    Case(
        engine.REGISTRY_WRITE,
        WRITE,
        lambda: "sample",
        {"cause": "firewall-ip-not-allowed", "registry": "acrprodweu", "cluster": "aks-prod-weu"},
        lambda emu: scenario.find_registry(emu.state, "acrprodweu")["id"],
        "firewall-ip-not-allowed",
        "aks-prod-weu",
    ),
    Case(
        engine.CLUSTER_WRITE,
        WRITE,
        lambda: "sample",
        {"cause": "acrpull-missing", "cluster": "aks-prod-weu", "registry": "acrprodweu"},
        lambda emu: scenario.find_cluster(emu.state, "aks-prod-weu")["id"],
        "acrpull-missing",
        "aks-prod-weu",
    ),
    # A node pool added or changed: the image the cluster runs is checked against it (the tag was
    # pushed again from an amd64-only build, so the arm pool and the Windows pool cannot run it).
    Case(
        engine.POOL_WRITE,
        WRITE,
        lambda: "sample",
        {
            "cause": "arch-mismatch",
            "registry": "acrprodweu",
            "repository": "app",
            "tag": "v1",
            "cluster": "aks-prod-weu",
        },
        lambda emu: scenario.find_cluster(emu.state, "aks-prod-weu")["id"] + "/agentPools/arm",
        "arch-mismatch",
        "aks-prod-weu",
    ),
    Case(
        engine.DNS_LINK_DELETE,
        DELETE,
        private_estate,
        {"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"},
        lambda emu: (
            resource(emu, "Microsoft.Network/privateDnsZones", "privatelink.azurecr.io")
            + "/virtualNetworkLinks/vnet-spoke"
        ),
        "private-dns-link-missing",
        "aks-spoke-weu",
    ),
    Case(
        engine.PEERING_DELETE,
        DELETE,
        private_estate,
        {
            "cause": "vnet-peering-missing",
            "cluster": "aks-spoke-weu",
            "registry": "acrhubweu",
            "mode": "deleted",
        },
        lambda emu: (
            resource(emu, "Microsoft.Network/virtualNetworks", "vnet-hub")
            + "/virtualNetworkPeerings/hub-to-spoke"
        ),
        "vnet-peering-missing",
        "aks-spoke-weu",
    ),
    # Token pull secrets: a password generated again, a token disabled, a scope map narrowed.
    Case(
        engine.TOKEN_CREDENTIALS,
        ACTION,
        tokens.estate_spec,
        {"cause": "pull-secret-token-invalid", "cluster": tokens.CLUSTER},
        lambda emu: scenario.find_registry(emu.state, tokens.REGISTRY)["id"],
        "pull-secret-token-invalid",
        tokens.CLUSTER,
    ),
    Case(
        engine.TOKEN_WRITE,
        WRITE,
        tokens.estate_spec,
        {"cause": "pull-secret-token-invalid", "cluster": tokens.CLUSTER, "mode": "disabled"},
        lambda emu: (
            scenario.find_registry(emu.state, tokens.REGISTRY)["id"] + f"/tokens/{tokens.TOKEN}"
        ),
        "pull-secret-token-invalid",
        tokens.CLUSTER,
    ),
    Case(
        engine.SCOPE_MAP_WRITE,
        WRITE,
        tokens.estate_spec,
        {"cause": "pull-secret-token-invalid", "cluster": tokens.CLUSTER, "mode": "scope"},
        lambda emu: (
            scenario.find_registry(emu.state, tokens.REGISTRY)["id"] + "/scopeMaps/shop-pull"
        ),
        "pull-secret-token-invalid",
        tokens.CLUSTER,
    ),
]


def test_every_handled_operation_has_a_case() -> None:
    assert sorted(c.operation for c in CASES) == sorted(engine.HANDLED_OPERATIONS)


@pytest.mark.parametrize("wire", ["event-grid", "cloud-events"])
@pytest.mark.parametrize("case", CASES, ids=[c.operation.split("/", 1)[1] for c in CASES])
def test_operation_ends_in_its_finding_and_a_ticket(
    emulator: Emulator,
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    case: Case,
    wire: str,
) -> None:
    scenario.load(emulator.state, case.estate())
    scenario.apply_break(emulator.state, case.breaks)
    event = arm_event(case.resource(emulator), case.operation, event_type=case.event_type)
    payload = as_cloud_event(event) if wire == "cloud-events" else event

    outcomes = deliver_event(functions, "arm_events", payload, caplog)

    mine = [o for o in outcomes if o["cluster"] and o["cluster"].endswith(f"/{case.cluster}")]
    assert mine, outcomes
    failed = {f["cause"]: f for o in mine for f in o["findings"] if f["status"] == "FAIL"}
    assert case.cause in failed, [o["reason"] for o in mine]
    assert set(failed) <= set(engine.OPERATION_CAUSES[case.operation])
    titles = {i["title"] for i in github_issues(emulator.state)}
    assert f"[acr-pull] {case.cause} on {case.cluster}" in titles
