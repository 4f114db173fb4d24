"""firewall-egress-blocked through the real network and AKS clients against the emulator's
hub-and-spoke estate (emulator/scenarios/network-private.yaml)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.firewall_egress_blocked import FirewallEgressBlocked
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

SPOKE = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-spoke/providers/Microsoft.Network"
BREAK = {"cause": "firewall-egress-blocked", "cluster": "aks-spoke-weu", "registry": "acrhubweu"}


def private_estate(*breaks: dict[str, Any], endpoint_policies: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8")
    )
    if endpoint_policies:
        hub = spec["subscriptions"][0]["resourceGroups"][0]["virtualNetworks"][0]
        next(s for s in hub["subnets"] if s["name"] == "pe")["privateEndpointNetworkPolicies"] = (
            endpoint_policies
        )
    spec["breaks"] = list(breaks)
    return spec


def run(
    emulator: Emulator, *, cluster: str = "aks-spoke-weu", registry: str = "acrhubweu"
) -> Finding:
    estate = fresh_estate()
    target = Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"]),
        scenario.find_registry(emulator.state, registry)["id"],
    )
    return FirewallEgressBlocked().run(target, estate)


def test_subnet_without_route_table_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-private")
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["routeTables"] == []
    assert finding.evidence["endpointIps"] == ["10.100.8.4", "10.100.8.5"]


def test_endpoint_routed_to_the_firewall_fails_as_evidence(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate(BREAK))
    table_id = f"{SPOKE}/routeTables/rt-aks-spoke-weu-egress"
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.action_id is None
    assert "a person must check" in finding.summary
    assert finding.evidence["routeTables"] == [table_id]
    first = finding.evidence["blockedBy"][0]
    assert first == {
        "routeTable": table_id,
        "subnet": f"{SPOKE}/virtualNetworks/vnet-spoke/subnets/aks",
        "route": "to-firewall-0",
        "addressPrefix": "10.100.8.4/32",
        "nextHopType": "VirtualAppliance",
        "nextHop": "10.100.1.4",
        "endpointIp": "10.100.8.4",
    }
    assert finding.commands == (
        "az network route-table route list -g rg-net-spoke --route-table-name rt-aks-spoke-weu-egress -o table",
    )


def test_default_route_does_not_capture_a_peered_endpoint(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    # The peering's system route (10.100.0.0/16) and the endpoint's /32 beat 0.0.0.0/0.
    scenario.load(emulator.state, private_estate({**BREAK, "prefix": "0.0.0.0/0"}))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["routeTables"] == [f"{SPOKE}/routeTables/rt-aks-spoke-weu-egress"]


@pytest.mark.parametrize(
    ("policies", "status"), [("Disabled", Status.PASS), ("RouteTableEnabled", Status.FAIL)]
)
def test_endpoint_subnet_route_policies_decide_a_wider_route(
    emulator: Emulator, app_env: dict[str, str], policies: str, status: Status
) -> None:
    scenario.load(
        emulator.state,
        private_estate({**BREAK, "prefix": "10.100.8.0/24"}, endpoint_policies=policies),
    )
    finding = run(emulator)
    assert finding.status is status, finding.summary


def test_transit_spoke_default_route_to_the_firewall_fails(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-private")
    finding = run(emulator, cluster="aks-apps-weu")
    assert finding.status is Status.FAIL
    assert {b["route"] for b in finding.evidence["blockedBy"]} == {"default-via-firewall"}
    assert {b["endpointIp"] for b in finding.evidence["blockedBy"]} == {"10.100.8.4", "10.100.8.5"}


def test_blackhole_route_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state, private_estate({**BREAK, "nextHopType": "None", "nextHopIpAddress": None})
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert "nowhere" in finding.summary


def test_registry_without_private_endpoint_is_not_applicable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, cluster="aks-udr-weu", registry="acrpublicweu")
    assert finding.status is Status.PASS
    assert "not applicable" in finding.summary


def test_unreadable_route_table_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-private")
    table_id = f"{SPOKE}/routeTables/rt-apps"
    emulator.deny(table_id)
    finding = run(emulator, cluster="aks-apps-weu")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": table_id}


def test_missing_cluster_subnet_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-private")
    subnet_id = f"{SPOKE}/virtualNetworks/vnet-apps/subnets/aks"
    emulator.state.delete(subnet_id)
    from emulator.providers.network import sync_vnet

    sync_vnet(emulator.state, f"{SPOKE}/virtualNetworks/vnet-apps")
    finding = run(emulator, cluster="aks-apps-weu")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": subnet_id}
