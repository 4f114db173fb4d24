"""Cause 4, solution 2: a (hub) firewall sits between the cluster and the private endpoint.

Only the route is visible from ARM, not the firewall's rules, so a FAIL here is evidence for a
person: the route that sends registry traffic to an appliance. The effective route is chosen as
Azure does: longest prefix, a user route winning a tie, against the system routes for the
cluster VNet, its Connected peerings, and the endpoint's /32 (which beats wider user routes
unless the endpoint's subnet has route-table network policies enabled).
"""

from __future__ import annotations

from dataclasses import replace

from shared.checks.base import CheckMeta, Finding, Status, Target
from shared.checks.private_link import PrivateLinkCheck
from shared.ports import Estate
from shared.ports.network import PrivateEndpoint, RouteChoice, VirtualNetwork, effective_route
from shared.ports.registries import Registry
from shared.resource_id import ResourceId, same_id

BLOCKING_HOPS = ("virtualappliance", "virtualapplianceecmp", "none")


class FirewallEgressBlocked(PrivateLinkCheck):
    not_applicable = "; the i/o timeout of Cause 4 only happens over Private Link"

    meta = CheckMeta(
        id="firewall-egress-blocked",
        family="4",
        title="No route sends the cluster's registry traffic through a firewall unchecked",
        guide_section="Cause 4, Solution 2: Use Azure Firewall Service",
        severity="medium",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.Network/privateEndpoints/read",
            "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/routeTables/read",
        ),
        action_id=None,
    )

    def evaluate_private(
        self, target: Target, estate: Estate, registry: Registry, endpoints: list[PrivateEndpoint]
    ) -> Finding:
        cluster = target.cluster
        tables: list[str] = []
        blocked: list[dict[str, str | None]] = []
        for subnet_id in estate.get_cluster_network(cluster).subnet_ids:
            subnet = estate.get_subnet(subnet_id)
            if not subnet.route_table_id:
                continue
            table = estate.get_route_table(subnet.route_table_id)
            tables.append(table.id)
            vnet = estate.get_virtual_network(subnet.vnet_id)
            for endpoint in endpoints:
                system = _system_routes(estate, vnet, endpoint)
                for ip in endpoint.ip_addresses:
                    choice = effective_route(ip, table.routes, system)
                    if (
                        choice
                        and choice.user_defined
                        and choice.next_hop_type.lower() in BLOCKING_HOPS
                    ):
                        blocked.append(_evidence(table.id, subnet_id, ip, choice))
        evidence = {
            "registry": registry.id,
            "endpointIps": [ip for e in endpoints for ip in e.ip_addresses],
            "routeTables": tables,
            "blockedBy": blocked,
        }
        if not blocked:
            return self.finding(
                Status.PASS,
                f"No route on the subnets of {cluster.name} sends traffic for the private "
                f"endpoint of {registry.name} to an appliance.",
                target,
                evidence,
            )
        first = blocked[0]
        hop = f"the appliance {first['nextHop']}" if first["nextHop"] else "nowhere (next hop None)"
        finding = self.finding(
            Status.FAIL,
            f"Route {first['route']} sends {cluster.name}'s traffic for {registry.name}'s "
            f"private endpoint {first['endpointIp']} to {hop}; a person must check that the "
            "firewall allows TCP 443 to the private endpoint IPs.",
            target,
            evidence,
            fixable=False,
        )
        return replace(
            finding,
            commands=tuple(
                f"az network route-table route list -g {ResourceId.parse(t).resource_group} "
                f"--route-table-name {ResourceId.parse(t).name} -o table"
                for t in dict.fromkeys(b["routeTable"] or "" for b in blocked)
            ),
        )


def _system_routes(
    estate: Estate, vnet: VirtualNetwork, endpoint: PrivateEndpoint
) -> list[RouteChoice]:
    routes = [RouteChoice(p, "VnetLocal", None, False, "VnetLocal") for p in vnet.address_prefixes]
    connected = [p for p in vnet.peerings if p.connected]
    routes += [
        RouteChoice(prefix, "VNetPeering", None, False, p.name)
        for p in connected
        for prefix in p.remote_address_prefixes
    ]
    reaches = same_id(vnet.id, endpoint.vnet_id) or any(
        same_id(p.remote_vnet_id, endpoint.vnet_id) for p in connected
    )
    if reaches and estate.get_subnet(
        endpoint.subnet_id
    ).private_endpoint_network_policies.lower() not in ("enabled", "routetableenabled"):
        routes += [
            RouteChoice(f"{ip}/32", "InterfaceEndpoint", None, False, "InterfaceEndpoint")
            for ip in endpoint.ip_addresses
        ]
    return routes


def _evidence(table_id: str, subnet_id: str, ip: str, choice: RouteChoice) -> dict[str, str | None]:
    return {
        "routeTable": table_id,
        "subnet": subnet_id,
        "route": choice.name,
        "addressPrefix": choice.prefix,
        "nextHopType": choice.next_hop_type,
        "nextHop": choice.next_hop_ip,
        "endpointIp": ip,
    }
