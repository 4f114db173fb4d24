"""Contract tests: every Microsoft.Network route, fetched with the real SDKs and round-tripped;
virtual network link writes, including what Azure rejects."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator import scenario
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips, shape_gaps, wire_get

ZONE = "privatelink.azurecr.io"
HUB = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-hub/providers/Microsoft.Network"
SPOKE = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-spoke/providers/Microsoft.Network"
ZONE_ID = f"{HUB}/privateDnsZones/{ZONE}"


@pytest.fixture
def private(emulator: Emulator, app_env: dict[str, str]) -> ClientFactory:
    scenario.load(emulator.state, "network-private")
    return ClientFactory(Settings.from_env(os.environ))


@pytest.fixture
def public(emulator: Emulator, app_env: dict[str, str]) -> ClientFactory:
    scenario.load(emulator.state, "network-public")
    return ClientFactory(Settings.from_env(os.environ))


def stored(emulator: Emulator, resource_id: str) -> dict[str, Any]:
    found = emulator.state.get(resource_id)
    assert found is not None, resource_id
    return found


def api_versions(emulator: Emulator, fragment: str) -> set[str | None]:
    return {e.api_version for e in emulator.journal("arm") if fragment in e.path}


# -- virtual networks, subnets, peerings ----------------------------------------------------------


def test_virtual_network_get_has_subnets_and_peerings_inline(
    private: ClientFactory, emulator: Emulator
) -> None:
    from azure.mgmt.network.models import VirtualNetwork

    vnet = private.network(PROD_SUB).virtual_networks.get("rg-net-hub", "vnet-hub")
    assert vnet.address_space.address_prefixes == ["10.100.0.0/16"]
    assert [s.id for s in vnet.subnets] == [
        f"{HUB}/virtualNetworks/vnet-hub/subnets/AzureFirewallSubnet",
        f"{HUB}/virtualNetworks/vnet-hub/subnets/pe",
    ]
    assert vnet.subnets[1].private_endpoints[0].id == f"{HUB}/privateEndpoints/pe-acrhubweu"
    (peering,) = vnet.virtual_network_peerings
    assert peering.remote_virtual_network.id == f"{SPOKE}/virtualNetworks/vnet-spoke"
    assert peering.peering_state == "Connected"
    assert peering.remote_address_space.address_prefixes == ["10.1.0.0/16"]
    assert_round_trips(VirtualNetwork, stored(emulator, vnet.id))
    assert api_versions(emulator, "/virtualNetworks/") == {"2026-03-01"}


def test_virtual_network_list_by_resource_group_pages(
    private: ClientFactory, emulator: Emulator
) -> None:
    emulator.state.page_size = 1
    names = [v.name for v in private.network(PROD_SUB).virtual_networks.list("rg-net-spoke")]
    assert names == ["vnet-apps", "vnet-spoke"]
    pages = [e for e in emulator.journal("arm") if e.path.endswith("/virtualNetworks")]
    assert len(pages) == 2


def test_subnet_get_carries_its_route_table(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import Subnet

    subnet = private.network(PROD_SUB).subnets.get("rg-net-spoke", "vnet-apps", "aks")
    assert subnet.address_prefix == "10.2.0.0/22"
    assert subnet.route_table.id == f"{SPOKE}/routeTables/rt-apps"
    assert subnet.private_endpoint_network_policies == "Disabled"
    assert_round_trips(Subnet, stored(emulator, subnet.id))


def test_peerings_list_and_get(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import VirtualNetworkPeering

    client = private.network(PROD_SUB)
    listed = list(client.virtual_network_peerings.list("rg-net-spoke", "vnet-spoke"))
    assert [(p.name, p.peering_state) for p in listed] == [("spoke-to-hub", "Connected")]
    one = client.virtual_network_peerings.get("rg-net-spoke", "vnet-spoke", "spoke-to-hub")
    assert one.remote_virtual_network.id == f"{HUB}/virtualNetworks/vnet-hub"
    assert one.peering_sync_level == "FullyInSync"
    assert_round_trips(VirtualNetworkPeering, stored(emulator, one.id))


def test_missing_peering_is_a_404(private: ClientFactory) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        private.network(PROD_SUB).virtual_network_peerings.get("rg-net-spoke", "vnet-spoke", "nope")


def test_network_resources_are_read_only(private: ClientFactory, emulator: Emulator) -> None:
    client = private.network(PROD_SUB)
    current = client.virtual_networks.get("rg-net-hub", "vnet-hub")
    with pytest.raises(HttpResponseError) as caught:
        client.virtual_networks.begin_create_or_update("rg-net-hub", "vnet-hub", current).result()
    assert caught.value.status_code == 405
    assert stored(emulator, current.id)["properties"]["provisioningState"] == "Succeeded"


# -- private endpoints and their DNS zone groups --------------------------------------------------


def test_private_endpoint_get_and_list(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import PrivateEndpoint

    client = private.network(PROD_SUB)
    endpoint = client.private_endpoints.get("rg-net-hub", "pe-acrhubweu")
    registry = scenario.find_registry(emulator.state, "acrhubweu")
    (connection,) = endpoint.private_link_service_connections
    assert connection.private_link_service_id == registry["id"]
    assert connection.group_ids == ["registry"]
    assert connection.private_link_service_connection_state.status == "Approved"
    assert endpoint.subnet.id == f"{HUB}/virtualNetworks/vnet-hub/subnets/pe"
    assert endpoint.network_interfaces[0].id.startswith(
        f"{HUB}/networkInterfaces/pe-acrhubweu.nic."
    )
    assert {c.fqdn: c.ip_addresses for c in endpoint.custom_dns_configs} == {
        "acrhubweu.azurecr.io": ["10.100.8.4"],
        "acrhubweu.westeurope.data.azurecr.io": ["10.100.8.5"],
    }
    assert [e.name for e in client.private_endpoints.list("rg-net-hub")] == ["pe-acrhubweu"]
    assert_round_trips(PrivateEndpoint, stored(emulator, endpoint.id))


def test_registry_shows_the_private_endpoint_connection(
    private: ClientFactory, emulator: Emulator
) -> None:
    from azure.mgmt.containerregistry.models import Registry

    registry = private.container_registry(PROD_SUB).registries.get("rg-acr", "acrhubweu")
    (connection,) = registry.private_endpoint_connections
    assert connection.private_endpoint.id == f"{HUB}/privateEndpoints/pe-acrhubweu"
    assert connection.private_link_service_connection_state.status == "Approved"
    assert registry.public_network_access == "Disabled"
    assert_round_trips(Registry, stored(emulator, registry.id))


def test_private_dns_zone_group_list(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import PrivateDnsZoneGroup

    (group,) = private.network(PROD_SUB).private_dns_zone_groups.list("pe-acrhubweu", "rg-net-hub")
    (config,) = group.private_dns_zone_configs
    assert config.private_dns_zone_id == ZONE_ID
    assert {r.record_set_name: r.ip_addresses for r in config.record_sets} == {
        "acrhubweu": ["10.100.8.4"],
        "acrhubweu.westeurope.data": ["10.100.8.5"],
    }
    body = {k: v for k, v in stored(emulator, group.id).items() if k != "type"}
    assert_round_trips(PrivateDnsZoneGroup, body)


# -- private DNS zones, links and records ---------------------------------------------------------


def test_private_dns_zone_get_and_lists(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.privatedns.models import PrivateZone

    client = private.private_dns(PROD_SUB)
    zone = client.private_zones.get("rg-net-hub", ZONE)
    assert zone.location == "global"
    assert zone.number_of_virtual_network_links == 2
    assert zone.number_of_record_sets == 3
    assert [z.id for z in client.private_zones.list()] == [ZONE_ID]
    assert [z.name for z in client.private_zones.list_by_resource_group("rg-net-hub")] == [ZONE]
    assert_round_trips(PrivateZone, stored(emulator, ZONE_ID))
    assert api_versions(emulator, "/privateDnsZones") == {"2024-06-01"}


def test_virtual_network_links_list_and_get(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.privatedns.models import VirtualNetworkLink

    client = private.private_dns(PROD_SUB)
    links = list(client.virtual_network_links.list("rg-net-hub", ZONE))
    assert {link.name: link.virtual_network.id for link in links} == {
        "vnet-hub-link": f"{HUB}/virtualNetworks/vnet-hub",
        "vnet-spoke-link": f"{SPOKE}/virtualNetworks/vnet-spoke",
    }
    one = client.virtual_network_links.get("rg-net-hub", ZONE, "vnet-spoke-link")
    assert (one.virtual_network_link_state, one.provisioning_state) == ("Completed", "Succeeded")
    assert one.registration_enabled is False
    assert_round_trips(VirtualNetworkLink, stored(emulator, one.id))


def test_a_record_get(private: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.privatedns.models import RecordSet

    record = private.private_dns(PROD_SUB).record_sets.get("rg-net-hub", ZONE, "A", "acrhubweu")
    assert [a.ipv4_address for a in record.a_records] == ["10.100.8.4"]
    assert_round_trips(RecordSet, stored(emulator, record.id))


def test_link_create_is_a_long_running_operation(
    private: ClientFactory, emulator: Emulator
) -> None:
    vnet_id = f"{SPOKE}/virtualNetworks/vnet-apps"
    poller = private.private_dns(PROD_SUB).virtual_network_links.begin_create_or_update(
        "rg-net-hub",
        ZONE,
        "vnet-apps-link",
        {
            "location": "Global",
            "properties": {"virtualNetwork": {"id": vnet_id}, "registrationEnabled": False},
        },
    )
    link = poller.result()
    assert link.virtual_network.id == vnet_id
    assert (link.virtual_network_link_state, link.provisioning_state) == ("Completed", "Succeeded")
    assert link.location == "global"
    journal = emulator.journal("arm")
    put = next(e for e in journal if e.method == "PUT")
    assert put.status == 201
    assert put.path.endswith(f"/privateDnsZones/{ZONE}/virtualNetworkLinks/vnet-apps-link")
    assert any("/operations/" in e.path for e in journal)
    assert stored(emulator, ZONE_ID)["properties"]["numberOfVirtualNetworkLinks"] == 3


@pytest.mark.parametrize(
    ("link", "body", "status", "code"),
    [
        (
            "x",
            {"location": "global", "properties": {"registrationEnabled": False}},
            400,
            "InvalidRequestContent",
        ),
        (
            "x",
            {"location": "global", "properties": {"virtualNetwork": {}}},
            400,
            "InvalidRequestContent",
        ),
        (
            "x",
            {"properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-apps"}}},
            400,
            "InvalidRequestContent",
        ),
        (
            "x",
            {
                "location": "global",
                "properties": {
                    "virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-apps"},
                    "registrationEnabled": "no",
                },
            },
            400,
            "InvalidRequestContent",
        ),
        (
            "x",
            {
                "location": "global",
                "properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/ghost"}},
            },
            400,
            "BadRequest",
        ),
        (
            "x",
            {
                "location": "westeurope",
                "properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-apps"}},
            },
            400,
            "LocationNotAvailableForResourceType",
        ),
        # The spoke is already linked (as vnet-spoke-link): one link per zone and VNet.
        (
            "again",
            {
                "location": "global",
                "properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-spoke"}},
            },
            409,
            "Conflict",
        ),
        # An existing link cannot be moved to another VNet.
        (
            "vnet-spoke-link",
            {
                "location": "global",
                "properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-apps"}},
            },
            400,
            "BadRequest",
        ),
    ],
)
def test_link_rejections(
    private: ClientFactory,
    emulator: Emulator,
    link: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = stored(emulator, ZONE_ID)
    with pytest.raises(HttpResponseError) as caught:
        private.private_dns(PROD_SUB).virtual_network_links.begin_create_or_update(
            "rg-net-hub", ZONE, link, body
        ).result()
    assert (caught.value.status_code, caught.value.error.code) == (status, code)
    assert stored(emulator, ZONE_ID) == before
    assert emulator.state.get(f"{ZONE_ID}/virtualNetworkLinks/x") is None
    assert emulator.state.get(f"{ZONE_ID}/virtualNetworkLinks/again") is None


def test_link_to_a_second_zone_of_the_same_name_is_rejected(
    private: ClientFactory, emulator: Emulator
) -> None:
    from emulator.builders.network import put_zone

    other = put_zone(emulator.state, PROD_SUB, "rg-net-spoke", ZONE)
    with pytest.raises(HttpResponseError) as caught:
        private.private_dns(PROD_SUB).virtual_network_links.begin_create_or_update(
            "rg-net-spoke",
            ZONE,
            "dup",
            {
                "location": "global",
                "properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-spoke"}},
            },
        ).result()
    assert (caught.value.status_code, caught.value.error.code) == (400, "BadRequest")
    assert "overlapping namespaces" in caught.value.error.message
    assert emulator.state.get(f"{other['id']}/virtualNetworkLinks/dup") is None


def test_link_under_a_missing_zone_is_a_404(private: ClientFactory) -> None:
    with pytest.raises(HttpResponseError) as caught:
        private.private_dns(PROD_SUB).virtual_network_links.begin_create_or_update(
            "rg-net-hub",
            "privatelink.example.com",
            "x",
            {
                "location": "global",
                "properties": {"virtualNetwork": {"id": f"{SPOKE}/virtualNetworks/vnet-apps"}},
            },
        ).result()
    assert (caught.value.status_code, caught.value.error.code) == (404, "ParentResourceNotFound")


# -- egress: public IPs, prefixes, load balancer, NAT gateway, route tables -----------------------


def test_aks_load_balancer_and_its_outbound_ip(public: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import LoadBalancer, PublicIPAddress

    cluster = scenario.find_cluster(emulator.state, "aks-lb-weu")
    node_rg = cluster["properties"]["nodeResourceGroup"]
    client = public.network(PROD_SUB)
    lb = client.load_balancers.get(node_rg, "kubernetes")
    (rule,) = lb.outbound_rules
    frontends = {f.id: f for f in lb.frontend_ip_configurations}
    assert {ref.id for ref in rule.frontend_ip_configurations} == set(frontends)
    ip_ids = [f.public_ip_address.id for f in frontends.values()]
    effective = cluster["properties"]["networkProfile"]["loadBalancerProfile"][
        "effectiveOutboundIPs"
    ]
    assert sorted(ip_ids) == sorted(r["id"] for r in effective)
    name = ip_ids[0].rsplit("/", 1)[-1]
    ip = client.public_ip_addresses.get(node_rg, name)
    assert ip.ip_address in {"20.61.10.4", "20.61.10.5"}
    assert ip.public_ip_allocation_method == "Static"
    assert_round_trips(LoadBalancer, stored(emulator, lb.id))
    assert_round_trips(PublicIPAddress, stored(emulator, ip.id))


EXAMPLES = Path(__file__).parent / "examples" / "containerservice" / "2026-08-01"


def example_profile(name: str, profile: str) -> dict[str, Any]:
    body = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))["responses"]["200"]["body"]
    found: dict[str, Any] = body["properties"]["networkProfile"][profile]
    return found


def test_own_outbound_ips_and_prefixes_have_azures_shape(
    public: ClientFactory, emulator: Emulator
) -> None:
    """--load-balancer-outbound-ips / -ip-prefixes: outboundIPs as in ManagedClustersGet.json,
    and effectiveOutboundIPs lists the prefix id too; the LB frontend holds the prefix."""
    from azure.mgmt.containerservice.models import ManagedCluster
    from azure.mgmt.network.models import LoadBalancer

    example = example_profile("ManagedClustersGet.json", "loadBalancerProfile")
    cluster = scenario.find_cluster(emulator.state, "aks-lbown-weu")
    served = cluster["properties"]["networkProfile"]["loadBalancerProfile"]
    assert set(served["outboundIPs"]) == set(example["outboundIPs"]) == {"publicIPs"}
    assert set(served["outboundIPs"]["publicIPs"][0]) == {"id"}
    egress = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-egress/providers/Microsoft.Network"
    assert served["outboundIPPrefixes"] == {
        "publicIPPrefixes": [{"id": f"{egress}/publicIPPrefixes/ippre-lb-own"}]
    }
    assert [r["id"] for r in served["effectiveOutboundIPs"]] == [
        f"{egress}/publicIPAddresses/pip-lb-own",
        f"{egress}/publicIPPrefixes/ippre-lb-own",
    ]
    assert_round_trips(ManagedCluster, cluster)
    mc = public.container_service(PROD_SUB).managed_clusters.get("rg-aks", "aks-lbown-weu")
    prefixes = mc.network_profile.load_balancer_profile.outbound_ip_prefixes.public_ip_prefixes
    assert [p.id for p in prefixes] == [f"{egress}/publicIPPrefixes/ippre-lb-own"]
    lb = public.network(PROD_SUB).load_balancers.get(
        cluster["properties"]["nodeResourceGroup"], "kubernetes"
    )
    held = [f.public_ip_prefix.id for f in lb.frontend_ip_configurations if f.public_ip_prefix]
    assert held == [f"{egress}/publicIPPrefixes/ippre-lb-own"]
    assert_round_trips(LoadBalancer, stored(emulator, lb.id))


def test_managed_nat_gateway_profile_has_azures_shape(emulator: Emulator, public: Any) -> None:
    example = example_profile("ManagedClustersCreate_ManagedNATGateway.json", "natGatewayProfile")
    cluster = scenario.find_cluster(emulator.state, "aks-natmanaged-weu")
    served = cluster["properties"]["networkProfile"]["natGatewayProfile"]
    assert set(served) == set(example)
    node_rg = cluster["properties"]["nodeResourceGroup"]
    assert all(f"/resourceGroups/{node_rg}/" in r["id"] for r in served["effectiveOutboundIPs"])


def test_nat_gateway_and_public_ip_prefix(public: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import NatGateway, PublicIPPrefix

    client = public.network(PROD_SUB)
    gateway = client.nat_gateways.get("rg-net-egress", "ng-aks")
    egress = (
        "/subscriptions/" + PROD_SUB + "/resourceGroups/rg-net-egress/providers/Microsoft.Network"
    )
    assert [r.id for r in gateway.public_ip_addresses] == [f"{egress}/publicIPAddresses/pip-natgw"]
    assert [r.id for r in gateway.public_ip_prefixes] == [f"{egress}/publicIPPrefixes/ippre-natgw"]
    assert [s.id for s in gateway.subnets] == [f"{egress}/virtualNetworks/vnet-nat/subnets/aks"]
    prefix = client.public_ip_prefixes.get("rg-net-egress", "ippre-natgw")
    assert (prefix.ip_prefix, prefix.prefix_length) == ("20.61.31.0/30", 30)
    assert_round_trips(NatGateway, stored(emulator, gateway.id))
    assert_round_trips(PublicIPPrefix, stored(emulator, prefix.id))


def test_route_table_get_and_routes_list(public: ClientFactory, emulator: Emulator) -> None:
    from azure.mgmt.network.models import Route, RouteTable

    client = public.network(PROD_SUB)
    table = client.route_tables.get("rg-net-egress", "rt-udr")
    (route,) = table.routes
    assert (route.address_prefix, route.next_hop_type, route.next_hop_ip_address) == (
        "0.0.0.0/0",
        "VirtualAppliance",
        "10.0.1.4",
    )
    assert [s.id.rsplit("/", 3)[-3] for s in table.subnets] == ["vnet-udr"]
    assert [r.name for r in client.routes.list("rg-net-egress", "rt-udr")] == [
        "default-via-firewall"
    ]
    assert_round_trips(RouteTable, stored(emulator, table.id))
    assert_round_trips(Route, stored(emulator, route.id))


def test_denied_scope_is_a_403(public: ClientFactory, emulator: Emulator) -> None:
    emulator.deny(f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-egress")
    with pytest.raises(HttpResponseError) as caught:
        public.network(PROD_SUB).route_tables.get("rg-net-egress", "rt-udr")
    assert (caught.value.status_code, caught.value.error.code) == (403, "AuthorizationFailed")


# -- shapes against the REST specification's examples ------------------------------------------

NETWORK_EXAMPLES = Path(__file__).parent / "examples" / "network" / "2025-07-01"


@pytest.mark.parametrize(
    ("example", "resource"),
    [
        # The user-assigned NAT gateway of aks-natuser-weu, in another resource group.
        ("NatGatewayGet.json", "rg-net-egress/providers/Microsoft.Network/natGateways/ng-aks"),
        # Its IP prefix, and the prefix the load balancer of aks-lbown-weu egresses from.
        (
            "PublicIpPrefixGet.json",
            "rg-net-egress/providers/Microsoft.Network/publicIPPrefixes/ippre-natgw",
        ),
        (
            "PublicIpPrefixGet.json",
            "rg-net-egress/providers/Microsoft.Network/publicIPPrefixes/ippre-lb-own",
        ),
        # userDefinedRouting: the node subnet's route table and its default route.
        ("RouteTableGet.json", "rg-net-egress/providers/Microsoft.Network/routeTables/rt-udr"),
    ],
)
def test_egress_resources_have_the_shape_of_the_rest_examples(
    public: ClientFactory, emulator: Emulator, example: str, resource: str
) -> None:
    """What the wire carries (not the SDK's reading of it) has every key of the specification's
    example, with the same kind of value; nothing the SDK models lack (round trip)."""
    from azure.mgmt.network.models import NatGateway, PublicIPPrefix, RouteTable

    spec = json.loads((NETWORK_EXAMPLES / example).read_text(encoding="utf-8"))
    expected = spec["responses"]["200"]["body"]
    served = wire_get(
        emulator,
        f"/subscriptions/{PROD_SUB}/resourceGroups/{resource}",
        spec["parameters"]["api-version"],
    )
    # etag is optional in the examples (NatGatewayGet has none); the rest must all be there.
    assert shape_gaps(expected, served) == []
    assert served["type"].lower() == expected["type"].lower()
    model = {"natGateways": NatGateway, "publicIPPrefixes": PublicIPPrefix}.get(
        resource.split("/")[3], RouteTable
    )
    assert_round_trips(model, served)
