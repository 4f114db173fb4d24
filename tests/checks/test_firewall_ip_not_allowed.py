"""firewall-ip-not-allowed through the real registry, AKS and network clients against the
emulator: load balancer and NAT gateway egress, CIDR rules, public access Disabled, private paths
(emulator/scenarios/network-public.yaml and network-private.yaml)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.firewall_ip_not_allowed import FirewallIpNotAllowed
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

EGRESS = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-egress/providers/Microsoft.Network"


def public_estate(*rules: str, **registry: Any) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-public.yaml").read_text(encoding="utf-8")
    )
    acr = next(
        r
        for g in spec["subscriptions"][0]["resourceGroups"]
        for r in g.get("registries", [])
        if r["name"] == "acrpublicweu"
    )
    if rules:
        acr["networkRuleSet"]["ipRules"] = list(rules)
    acr.update(registry)
    return spec


def run(emulator: Emulator, cluster: str, registry: str = "acrpublicweu") -> Finding:
    estate = fresh_estate()
    target = Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"]),
        scenario.find_registry(emulator.state, registry)["id"],
    )
    return FirewallIpNotAllowed().run(target, estate)


def network_reads(emulator: Emulator) -> list[str]:
    return [e.path for e in emulator.journal("arm") if "/Microsoft.Network/" in e.path]


def test_load_balancer_ips_inside_an_allowed_cidr_pass(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, "aks-lb-weu")
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["egressSource"] == "loadBalancer"
    assert sorted(finding.evidence["egressIps"]) == ["20.61.10.4", "20.61.10.5"]
    assert finding.evidence["missingIps"] == []


def test_break_removes_the_cluster_ips_and_fails(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = public_estate()
    spec["breaks"] = [
        {"cause": "firewall-ip-not-allowed", "registry": "acrpublicweu", "cluster": "aks-lb-weu"}
    ]
    scenario.load(emulator.state, spec)
    rules = scenario.find_registry(emulator.state, "acrpublicweu")["properties"]["networkRuleSet"]
    assert "20.61.10.0/29" not in [r["value"] for r in rules["ipRules"]]
    finding = run(emulator, "aks-lb-weu")
    assert finding.status is Status.FAIL
    assert finding.action_id == "allow-egress-ip"
    assert sorted(finding.evidence["missingIps"]) == ["20.61.10.4", "20.61.10.5"]
    assert finding.evidence["defaultAction"] == "Deny"
    assert "az acr network-rule add --name acrpublicweu --ip-address 20.61.10.4" in finding.commands
    assert all(
        r.startswith(f"/subscriptions/{PROD_SUB}/resourceGroups/MC_rg-aks_aks-lb-weu_westeurope/")
        for r in finding.evidence["egressResources"]
    )


def test_one_of_two_ips_missing_fails_for_that_ip_only(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, public_estate("20.61.10.4"))
    finding = run(emulator, "aks-lb-weu")
    assert finding.status is Status.FAIL
    assert finding.evidence["missingIps"] == ["20.61.10.5"]
    assert finding.evidence["allowedRules"] == ["20.61.10.4"]


def test_managed_nat_gateway_egress(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, "aks-natmanaged-weu")
    assert finding.status is Status.PASS, finding.summary
    assert (finding.evidence["egressSource"], finding.evidence["egressIps"]) == (
        "managedNATGateway",
        ["20.61.20.7"],
    )


def test_managed_nat_gateway_ip_not_allowed(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, public_estate("20.61.10.0/29"))
    finding = run(emulator, "aks-natmanaged-weu")
    assert finding.status is Status.FAIL
    assert finding.evidence["missingIps"] == ["20.61.20.7"]


def test_user_assigned_nat_gateway_ip_and_prefix(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, "aks-natuser-weu")
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["egressIps"] == ["20.61.30.9", "20.61.31.0/30"]
    assert finding.evidence["egressResources"][0] == f"{EGRESS}/natGateways/ng-aks"


def test_own_load_balancer_ip_and_prefix_are_read_by_type(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    """effectiveOutboundIPs lists the prefix id: it is read as a publicIPPrefix, not a public IP
    (which 404s and made the check UNKNOWN)."""
    scenario.load(emulator.state, "network-public")
    cluster = scenario.find_cluster(emulator.state, "aks-lbown-weu")
    effective = cluster["properties"]["networkProfile"]["loadBalancerProfile"][
        "effectiveOutboundIPs"
    ]
    assert f"{EGRESS}/publicIPPrefixes/ippre-lb-own" in [r["id"] for r in effective]
    finding = run(emulator, "aks-lbown-weu")
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["egressSource"] == "loadBalancer"
    assert finding.evidence["egressIps"] == ["20.61.40.4", "20.61.41.0/30"]
    assert finding.evidence["egressResources"] == [
        f"{EGRESS}/publicIPAddresses/pip-lb-own",
        f"{EGRESS}/publicIPPrefixes/ippre-lb-own",
    ]
    reads = network_reads(emulator)
    assert not any("/publicIPAddresses/ippre-lb-own" in p for p in reads)


def test_own_load_balancer_prefix_not_covered_fails_with_its_cidr(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, public_estate("20.61.40.4", "20.61.41.0/31"))
    finding = run(emulator, "aks-lbown-weu")
    assert finding.status is Status.FAIL, finding.summary
    assert finding.evidence["missingIps"] == ["20.61.41.0/30"]
    assert (
        "az acr network-rule add --name acrpublicweu --ip-address 20.61.41.0/30" in finding.commands
    )


def test_prefix_only_partly_allowed_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, public_estate("20.61.30.9", "20.61.31.0/31"))
    finding = run(emulator, "aks-natuser-weu")
    assert finding.status is Status.FAIL
    assert finding.evidence["missingIps"] == ["20.61.31.0/30"]


def test_user_defined_routing_egress_is_unknown(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, "aks-udr-weu")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["egressSource"] == "userDefinedRouting"
    assert "user-defined routes" in finding.summary


def test_user_defined_routing_names_the_next_hop_and_where_to_look(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, "aks-udr-weu")
    assert finding.status is Status.UNKNOWN
    assert "VirtualAppliance 10.0.1.4 (route default-via-firewall in rt-udr)" in finding.summary
    assert finding.evidence["egressResources"] == [f"{EGRESS}/routeTables/rt-udr"]
    assert any(
        c.startswith(f"az network route-table route list --ids {EGRESS}/routeTables/rt-udr")
        for c in finding.commands
    )
    assert not any("loadBalancerProfile" in c for c in finding.commands)


# Where each outbound type keeps its egress addresses: the command a person runs, and what the
# commands must not send them to.
OUTBOUND_COMMANDS = {
    "aks-lb-weu": (
        "networkProfile.loadBalancerProfile.effectiveOutboundIPs",
        "az network public-ip show --ids /subscriptions/",
        "natGateway",
    ),
    "aks-lbown-weu": (
        "networkProfile.loadBalancerProfile.effectiveOutboundIPs",
        f"az network public-ip prefix show --ids {EGRESS}/publicIPPrefixes/ippre-lb-own",
        "natGateway",
    ),
    "aks-natmanaged-weu": (
        "networkProfile.natGatewayProfile.effectiveOutboundIPs",
        "az network public-ip show --ids /subscriptions/",
        "loadBalancerProfile.effectiveOutboundIPs[].id -o tsv",
    ),
    "aks-natuser-weu": (
        "--query natGateway.id",
        f"az network nat gateway show --ids {EGRESS}/natGateways/ng-aks",
        "loadBalancerProfile.effectiveOutboundIPs[].id -o tsv",
    ),
}


@pytest.mark.parametrize("cluster", sorted(OUTBOUND_COMMANDS))
def test_commands_match_the_outbound_type(
    emulator: Emulator, app_env: dict[str, str], cluster: str
) -> None:
    spec = public_estate()
    spec["breaks"] = [
        {"cause": "firewall-ip-not-allowed", "registry": "acrpublicweu", "cluster": cluster}
    ]
    scenario.load(emulator.state, spec)
    finding = run(emulator, cluster)
    assert finding.status is Status.FAIL, finding.summary
    lead, shown, never = OUTBOUND_COMMANDS[cluster]
    assert any(lead in c for c in finding.commands), finding.commands
    assert any(c.startswith(shown) for c in finding.commands), finding.commands
    assert not any(never in c for c in finding.commands), finding.commands


def test_open_registry_passes_without_reading_the_network(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    finding = run(emulator, "aks-lb-weu", registry="acropenweu")
    assert finding.status is Status.PASS
    assert network_reads(emulator) == []


def test_public_access_disabled_without_endpoint_fails_without_a_fix(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = public_estate()
    spec["breaks"] = [
        {"cause": "firewall-ip-not-allowed", "registry": "acrpublicweu", "variant": "disabled"}
    ]
    scenario.load(emulator.state, spec)
    finding = run(emulator, "aks-lb-weu")
    assert finding.status is Status.FAIL
    assert finding.action_id is None
    assert finding.evidence["publicNetworkAccess"] == "Disabled"
    assert "a person must decide" in finding.summary


def test_public_access_disabled_with_a_peered_endpoint_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-private")
    finding = run(emulator, "aks-spoke-weu", registry="acrhubweu")
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["privateEndpoint"].endswith("/privateEndpoints/pe-acrhubweu")


@pytest.mark.parametrize("mode", ["deleted", "disconnected"])
def test_public_access_disabled_with_an_unpeered_endpoint_fails(
    emulator: Emulator, app_env: dict[str, str], mode: str
) -> None:
    spec = yaml.safe_load((scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8"))
    spec["breaks"] = [
        {
            "cause": "vnet-peering-missing",
            "cluster": "aks-spoke-weu",
            "registry": "acrhubweu",
            "mode": mode,
        }
    ]
    scenario.load(emulator.state, spec)
    finding = run(emulator, "aks-spoke-weu", registry="acrhubweu")
    assert finding.status is Status.FAIL
    assert finding.action_id is None


def test_load_balancer_is_read_when_the_cluster_lists_no_effective_ips(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, public_estate("20.61.10.4"))
    cluster = scenario.find_cluster(emulator.state, "aks-lb-weu")
    del cluster["properties"]["networkProfile"]["loadBalancerProfile"]["effectiveOutboundIPs"]
    emulator.state.put(cluster)
    finding = run(emulator, "aks-lb-weu")
    assert finding.status is Status.FAIL
    assert finding.evidence["missingIps"] == ["20.61.10.5"]
    assert any(p.endswith("/loadBalancers/kubernetes") for p in network_reads(emulator))


def test_unreadable_public_ip_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-public")
    cluster = scenario.find_cluster(emulator.state, "aks-lb-weu")
    node_rg = (
        f"/subscriptions/{PROD_SUB}/resourceGroups/{cluster['properties']['nodeResourceGroup']}"
    )
    emulator.deny(f"{node_rg}/providers/Microsoft.Network/publicIPAddresses")
    finding = run(emulator, "aks-lb-weu")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["unreadable"].startswith(
        f"{node_rg}/providers/Microsoft.Network/publicIPAddresses/"
    )


def test_break_for_a_user_nat_gateway_cluster_removes_its_ip_and_prefix(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = public_estate()
    spec["breaks"] = [
        {
            "cause": "firewall-ip-not-allowed",
            "registry": "acrpublicweu",
            "cluster": "aks-natuser-weu",
        }
    ]
    scenario.load(emulator.state, spec)
    finding = run(emulator, "aks-natuser-weu")
    assert finding.status is Status.FAIL
    assert finding.evidence["missingIps"] == ["20.61.30.9", "20.61.31.0/30"]
    assert finding.evidence["allowedRules"] == [
        "20.61.10.0/29",
        "20.61.20.7",
        "20.61.40.4",
        "20.61.41.0/28",
    ]
