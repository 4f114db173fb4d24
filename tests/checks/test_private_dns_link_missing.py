"""private-dns-link-missing through the real network, private DNS and AKS clients against the
emulator's hub-and-spoke estate (emulator/scenarios/network-private.yaml)."""

from __future__ import annotations

import os
from typing import Any

import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.checks.private_dns_link_missing import PrivateDnsLinkMissing
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

NET = f"/subscriptions/{PROD_SUB}/resourceGroups/%s/providers/Microsoft.Network"
HUB_VNET = f"{NET % 'rg-net-hub'}/virtualNetworks/vnet-hub"
SPOKE_VNET = f"{NET % 'rg-net-spoke'}/virtualNetworks/vnet-spoke"
ZONE_ID = f"{NET % 'rg-net-hub'}/privateDnsZones/privatelink.azurecr.io"


def private_estate() -> dict[str, Any]:
    return yaml.safe_load((scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8"))


def group(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in spec["subscriptions"][0]["resourceGroups"] if g["name"] == name)


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["name"] == name)


def run(
    emulator: Emulator, *, cluster: str = "aks-spoke-weu", registry: str = "acrhubweu"
) -> Finding:
    estate = fresh_estate()
    target = Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"]),
        scenario.find_registry(emulator.state, registry)["id"],
    )
    return PrivateDnsLinkMissing().run(target, estate)


def test_linked_spoke_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-private")
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["zones"] == [ZONE_ID]
    assert finding.evidence["clusterVnets"] == [SPOKE_VNET]
    assert sorted(finding.evidence["linkedVnets"]) == sorted([HUB_VNET, SPOKE_VNET])
    # The zone came from the endpoint's privateDnsZoneGroup, not from a subscription-wide search.
    assert not any(e.path.endswith("/privateDnsZones") for e in emulator.journal("arm"))


def test_deleted_link_fails_with_the_link_command(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    spec["breaks"] = [{"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}]
    scenario.load(emulator.state, spec)
    assert emulator.state.get(f"{ZONE_ID}/virtualNetworkLinks/vnet-spoke-link") is None
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.action_id == "link-private-dns-zone"
    assert finding.evidence["unlinkedVnets"] == [SPOKE_VNET]
    assert finding.evidence["linkedVnets"] == [HUB_VNET]
    assert "vnet-spoke" in finding.summary and "403" in finding.summary
    assert (
        "az network private-dns link vnet create -g rg-net-hub -z privatelink.azurecr.io "
        f"-n vnet-spoke-link -v {SPOKE_VNET} -e false"
    ) in finding.commands
    assert (
        "az network private-dns link vnet list -g rg-net-hub -z privatelink.azurecr.io -o table"
        in finding.commands
    )


def test_zone_found_by_name_without_a_zone_group(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    named(group(spec, "rg-acr")["registries"], "acrhubweu")["privateEndpoint"]["zoneGroup"] = False
    spec["breaks"] = [{"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}]
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["zones"] == [ZONE_ID]
    assert any(
        e.path.endswith("/providers/Microsoft.Network/privateDnsZones")
        for e in emulator.journal("arm")
    )


def test_endpoint_in_the_cluster_vnet_with_the_portal_link_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    # No zone in the scenario: the endpoint builder makes one and links the endpoint's VNet, as
    # the portal does, so a cluster in that same VNet resolves privately.
    spec = private_estate()
    hub = group(spec, "rg-net-hub")
    del hub["privateDnsZones"]
    named(group(spec, "rg-net-spoke")["virtualNetworks"], "vnet-spoke")["subnets"].append(
        {"name": "pe", "prefix": "10.1.8.0/24"}
    )
    named(group(spec, "rg-acr")["registries"], "acrhubweu")["privateEndpoint"]["vnet"] = (
        "vnet-spoke"
    )
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["zones"] == [
        f"{NET % 'rg-net-spoke'}/privateDnsZones/privatelink.azurecr.io"
    ]


def test_endpoint_in_the_cluster_vnet_still_needs_the_link(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    # Sharing the VNet does not resolve privatelink.azurecr.io by itself: the zone must be linked.
    spec = private_estate()
    del group(spec, "rg-net-hub")["privateDnsZones"]
    named(group(spec, "rg-net-spoke")["virtualNetworks"], "vnet-spoke")["subnets"].append(
        {"name": "pe", "prefix": "10.1.8.0/24"}
    )
    named(group(spec, "rg-acr")["registries"], "acrhubweu")["privateEndpoint"]["vnet"] = (
        "vnet-spoke"
    )
    spec["breaks"] = [{"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}]
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["unlinkedVnets"] == [SPOKE_VNET]


def test_custom_dns_servers_make_it_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    spec = private_estate()
    named(group(spec, "rg-net-spoke")["virtualNetworks"], "vnet-spoke")["dnsServers"] = [
        "10.100.2.4"
    ]
    spec["breaks"] = [{"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}]
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["dnsServers"] == ["10.100.2.4"]
    assert finding.action_id is None


def test_a_link_with_custom_dns_servers_proves_nothing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    """Linked to the zone, but the nodes ask a custom server: UNKNOWN with what to check."""
    spec = private_estate()
    named(group(spec, "rg-net-spoke")["virtualNetworks"], "vnet-spoke")["dnsServers"] = [
        "10.100.2.4",
        "10.100.2.5",
    ]
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN, finding.summary
    assert finding.evidence["dnsServers"] == ["10.100.2.4", "10.100.2.5"]
    assert finding.evidence["forwardingRule"].startswith("privatelink.azurecr.io -> 168.63.129.16")
    assert f"az network vnet show --ids {SPOKE_VNET} --query dhcpOptions.dnsServers -o tsv" in (
        finding.commands
    )
    assert finding.action_id is None


def test_azure_dns_given_as_a_custom_server_is_azure_dns(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    named(group(spec, "rg-net-spoke")["virtualNetworks"], "vnet-spoke")["dnsServers"] = [
        "168.63.129.16"
    ]
    scenario.load(emulator.state, spec)
    assert run(emulator).status is Status.PASS


def test_registry_without_private_endpoint_is_not_applicable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, cluster="aks-lb-weu", registry="acrpublicweu")
    assert finding.status is Status.PASS
    assert "not applicable" in finding.summary
    assert not any("Microsoft.Network" in e.path for e in emulator.journal("arm"))


def test_no_zone_anywhere_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    spec = private_estate()
    del group(spec, "rg-net-hub")["privateDnsZones"]
    named(group(spec, "rg-acr")["registries"], "acrhubweu")["privateEndpoint"]["dnsZone"] = None
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["zones"] == []


def test_unreadable_zone_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-private")
    emulator.deny(ZONE_ID)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": ZONE_ID}
    denied = [e for e in emulator.journal("arm") if e.status == 403]
    assert denied and denied[0].path.startswith(ZONE_ID)


def test_relinking_through_the_sdk_makes_it_pass_again(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    spec["breaks"] = [{"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}]
    scenario.load(emulator.state, spec)
    assert run(emulator).status is Status.FAIL
    client = ClientFactory(Settings.from_env(os.environ)).private_dns(PROD_SUB)
    client.virtual_network_links.begin_create_or_update(
        "rg-net-hub",
        "privatelink.azurecr.io",
        "vnet-spoke-link",
        {
            "location": "global",
            "properties": {"virtualNetwork": {"id": SPOKE_VNET}, "registrationEnabled": False},
        },
    ).result()
    assert run(emulator).status is Status.PASS
