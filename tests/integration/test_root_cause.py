"""Root cause first, end to end: a cluster write event runs every check for a hub-and-spoke pair
(emulator/scenarios/network-private.yaml) through the indexed ``arm_events`` function, the real
SDK clients and the emulator's GitHub issues. A finding explained by an earlier one on the pull's
path joins that one's ticket and is not acted on; the outcome's headline names the root cause.
Each pair of causes that fail together in this estate is a case (shared/root_cause.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from emulator.tickets import github_issues
from tests.support.events import arm_event
from tests.support.triggers import deliver_event, ticket_policy, writes

__all__ = ["ticket_policy"]  # the fixture, used by name

CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"
ACR = "acrhubweu"
FIREWALL = "firewall-ip-not-allowed"


def peering(mode: str) -> dict[str, str]:
    return {
        "cause": "vnet-peering-missing",
        "cluster": "aks-spoke-weu",
        "registry": ACR,
        "mode": mode,
    }


DNS = {"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}
ROUTE = {"cause": "firewall-egress-blocked", "cluster": "aks-spoke-weu", "registry": ACR}

# case: (cluster, breaks, {root cause: its ticket}, the roots explaining the firewall finding)
CASES: dict[str, tuple[str, list[dict[str, str]], list[str], list[str]]] = {
    # The issue's report: linked to the zone, peering Disconnected; pulls time out (cause 4).
    "peering-disconnected": (
        "aks-spoke-weu",
        [peering("disconnected")],
        ["vnet-peering-missing"],
        ["vnet-peering-missing"],
    ),
    "peering-deleted": (
        "aks-spoke-weu",
        [peering("deleted")],
        ["vnet-peering-missing"],
        ["vnet-peering-missing"],
    ),
    # Two roots with two fixes: two tickets; the firewall finding is explained by both.
    "dns-link-and-peering": (
        "aks-spoke-weu",
        [DNS, peering("deleted")],
        ["private-dns-link-missing", "vnet-peering-missing"],
        ["private-dns-link-missing", "vnet-peering-missing"],
    ),
    # The private endpoint is reached through an appliance: the route, not the public firewall.
    "route-via-appliance": (
        "aks-spoke-weu",
        [ROUTE, peering("disconnected")],
        ["firewall-egress-blocked"],
        ["firewall-egress-blocked"],
    ),
    # A spoke that reaches the hub only through the hub firewall and is not linked to the zone.
    "dns-link-and-route": (
        "aks-apps-weu",
        [],
        ["private-dns-link-missing", "firewall-egress-blocked"],
        ["private-dns-link-missing", "firewall-egress-blocked"],
    ),
}


def estate(emulator: Emulator, cluster: str, breaks: list[dict[str, str]]) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8")
    )
    for group in spec["subscriptions"][0]["resourceGroups"]:
        for found in group.get("clusters", []):
            if found["name"] == cluster:
                found["attachedRegistries"] = [ACR]  # AcrPull holds: only the network is broken
    spec["breaks"] = breaks
    return scenario.load(emulator.state, spec)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_firewall_finding_joins_its_root_causes_ticket(
    emulator: Emulator,
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    cluster, breaks, roots, explaining = CASES[case]
    estate(emulator, cluster, breaks)
    cluster_id = scenario.find_cluster(emulator.state, cluster)["id"]
    (outcome,) = deliver_event(
        functions, "arm_events", arm_event(cluster_id, CLUSTER_WRITE), caplog
    )

    failed = [f for f in outcome["findings"] if f["status"] == "FAIL"]
    assert [f["cause"] for f in failed] == [*roots, FIREWALL], outcome["findings"]
    firewall = failed[-1]
    assert firewall["evidence"]["consequenceOf"] == explaining
    for root in failed[:-1]:
        assert [c["cause"] for c in root["evidence"]["consequences"]] == [FIREWALL]
    # One ticket per root cause, none for the consequence, which is named in the root's ticket.
    issues = github_issues(emulator.state)
    assert sorted(i["title"] for i in issues) == sorted(
        f"[acr-pull] {r} on {cluster}" for r in roots
    )
    assert all(FIREWALL in i["body"] for i in issues)
    decision = next(d for d in outcome["decisions"] if d["cause"] == FIREWALL)
    assert decision["ticket"] is None and decision["consequenceOf"] == explaining
    # The headline names the root cause earliest on the path, not the firewall.
    assert outcome["reason"].startswith(roots[0]), outcome["reason"]
    assert FIREWALL not in outcome["reason"].split(";")[0]
    # The consequence is never acted on: no registry firewall change.
    assert not [w for w in writes(emulator) if "/registries/" in w]


def test_a_firewall_finding_alone_is_its_own_ticket(
    emulator: Emulator,
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Public access Disabled and no private endpoint at all: nothing earlier explains it."""
    spec = estate(emulator, "aks-spoke-weu", [])
    registry = scenario.find_registry(emulator.state, ACR)
    for connection in registry["properties"]["privateEndpointConnections"]:
        emulator.state.delete(connection["properties"]["privateEndpoint"]["id"])
    registry["properties"]["privateEndpointConnections"] = []
    emulator.state.put(registry)
    assert spec
    cluster_id = scenario.find_cluster(emulator.state, "aks-spoke-weu")["id"]
    (outcome,) = deliver_event(
        functions, "arm_events", arm_event(cluster_id, CLUSTER_WRITE), caplog
    )
    failed = [f for f in outcome["findings"] if f["status"] == "FAIL"]
    assert [f["cause"] for f in failed] == [FIREWALL]
    assert "consequenceOf" not in failed[0]["evidence"]
    assert [i["title"] for i in github_issues(emulator.state)] == [
        f"[acr-pull] {FIREWALL} on aks-spoke-weu"
    ]
