"""vnet-peering-missing through the real network and AKS clients against the emulator's
hub-and-spoke estate (emulator/scenarios/network-private.yaml)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.vnet_peering_missing import VnetPeeringMissing
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

HUB_RG = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-hub"
HUB_VNET = f"{HUB_RG}/providers/Microsoft.Network/virtualNetworks/vnet-hub"
SPOKE_VNET = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-spoke/providers/Microsoft.Network/virtualNetworks/vnet-spoke"


def private_estate(*breaks: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8")
    )
    spec["breaks"] = list(breaks)
    return spec


def vnet_spec(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        v
        for g in spec["subscriptions"][0]["resourceGroups"]
        for v in g.get("virtualNetworks", [])
        if v["name"] == name
    )


def run(
    emulator: Emulator, *, cluster: str = "aks-spoke-weu", registry: str = "acrhubweu"
) -> Finding:
    estate = fresh_estate()
    target = Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"]),
        scenario.find_registry(emulator.state, registry)["id"],
    )
    return VnetPeeringMissing().run(target, estate)


def test_connected_both_ways_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-private")
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["peerings"] == {
        "vnet-spoke->vnet-hub": "Connected",
        "vnet-hub->vnet-spoke": "Connected",
    }
    assert finding.evidence["clusterVnets"] == [SPOKE_VNET]
    assert finding.evidence["endpointVnets"] == [HUB_VNET]


def test_peering_deleted_on_the_hub_side_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        private_estate(
            {"cause": "vnet-peering-missing", "cluster": "aks-spoke-weu", "registry": "acrhubweu"}
        ),
    )
    assert emulator.state.get(f"{HUB_VNET}/virtualNetworkPeerings/hub-to-spoke") is None
    hub = emulator.state.get(HUB_VNET)
    assert hub is not None and hub["properties"]["virtualNetworkPeerings"] == []
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.action_id is None
    assert finding.evidence["peerings"] == {
        "vnet-spoke->vnet-hub": "Disconnected",
        "vnet-hub->vnet-spoke": "missing",
    }
    assert (
        "az network vnet peering list -g rg-net-spoke --vnet-name vnet-spoke -o table"
        in finding.commands
    )
    assert (
        "az network vnet peering list -g rg-net-hub --vnet-name vnet-hub -o table"
        in finding.commands
    )


def test_disconnected_peerings_fail(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        private_estate(
            {
                "cause": "vnet-peering-missing",
                "cluster": "aks-spoke-weu",
                "registry": "acrhubweu",
                "mode": "disconnected",
            }
        ),
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert set(finding.evidence["peerings"].values()) == {"Disconnected"}


def test_one_sided_peering_is_initiated_and_fails(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    del vnet_spec(spec, "vnet-spoke")["peerings"]
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["peerings"] == {
        "vnet-spoke->vnet-hub": "missing",
        "vnet-hub->vnet-spoke": "Initiated",
    }


def test_endpoint_in_the_cluster_vnet_passes_without_peering(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    spoke = vnet_spec(spec, "vnet-spoke")
    del spoke["peerings"]
    del vnet_spec(spec, "vnet-hub")["peerings"]
    spoke["subnets"].append({"name": "pe", "prefix": "10.1.8.0/24"})
    registry = spec["subscriptions"][0]["resourceGroups"][-1]["registries"][0]
    registry["privateEndpoint"]["vnet"] = "vnet-spoke"
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["peerings"] == {}


def test_transit_through_a_hub_appliance_is_unknown(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-private")
    finding = run(emulator, cluster="aks-apps-weu")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["transitRoute"].endswith(
        "/routeTables/rt-apps/routes/default-via-firewall"
    )
    assert finding.evidence["peerings"] == {
        "vnet-apps->vnet-hub": "missing",
        "vnet-hub->vnet-apps": "missing",
    }


def test_registry_without_private_endpoint_is_not_applicable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, cluster="aks-lb-weu", registry="acrpublicweu")
    assert finding.status is Status.PASS
    assert "not applicable" in finding.summary


@pytest.mark.parametrize("scope", [HUB_RG, HUB_VNET])
def test_unreadable_hub_is_unknown(emulator: Emulator, app_env: dict[str, str], scope: str) -> None:
    scenario.load(emulator.state, "network-private")
    emulator.deny(scope)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["unreadable"].lower().startswith(HUB_RG.lower())
