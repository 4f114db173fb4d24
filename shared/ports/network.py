"""The network between a cluster and its registry: VNets, peerings, private endpoints, private DNS,
routes, and the public IPs the cluster's traffic leaves from.

The helpers at the bottom (CIDR coverage, longest-prefix routing) are pure logic over these
dataclasses so the checks stay short and are unit-testable without an estate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from shared.models import Cluster, OperationResult
from shared.resource_id import same_id

REGISTRY_ZONE = "privatelink.azurecr.io"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    address_prefixes: tuple[str, ...]
    route_table_id: str | None = None
    nat_gateway_id: str | None = None
    # "Disabled" (the default) means the /32 routes of private endpoints beat any wider UDR.
    private_endpoint_network_policies: str = "Disabled"

    @property
    def vnet_id(self) -> str:
        return vnet_of(self.id)


@dataclass(frozen=True)
class Peering:
    id: str
    name: str
    remote_vnet_id: str
    state: str  # Initiated | Connected | Disconnected
    remote_address_prefixes: tuple[str, ...] = ()

    @property
    def connected(self) -> bool:
        return self.state.lower() == "connected"


@dataclass(frozen=True)
class VirtualNetwork:
    id: str
    name: str
    address_prefixes: tuple[str, ...]
    subnets: tuple[Subnet, ...]
    peerings: tuple[Peering, ...]
    dns_servers: tuple[str, ...] = ()

    def peering_to(self, remote_vnet_id: str) -> Peering | None:
        return next((p for p in self.peerings if same_id(p.remote_vnet_id, remote_vnet_id)), None)

    def subnet(self, subnet_id: str) -> Subnet | None:
        return next((s for s in self.subnets if same_id(s.id, subnet_id)), None)


@dataclass(frozen=True)
class PrivateEndpoint:
    id: str
    name: str
    subnet_id: str
    # privateLinkServiceConnections[].privateLinkServiceId (the registry) and their status.
    target_ids: tuple[str, ...]
    connection_status: str
    ip_addresses: tuple[str, ...]
    fqdns: tuple[str, ...]
    # From privateDnsZoneGroups: the zones Azure keeps this endpoint's A records in.
    dns_zone_ids: tuple[str, ...] = ()

    @property
    def vnet_id(self) -> str:
        return vnet_of(self.subnet_id)


@dataclass(frozen=True)
class VnetLink:
    id: str
    name: str
    vnet_id: str
    registration_enabled: bool
    state: str  # virtualNetworkLinkState: InProgress | Completed
    provisioning_state: str


@dataclass(frozen=True)
class PrivateDnsZone:
    id: str
    name: str
    links: tuple[VnetLink, ...]

    def link_for(self, vnet_id: str) -> VnetLink | None:
        return next((link for link in self.links if same_id(link.vnet_id, vnet_id)), None)


@dataclass(frozen=True)
class Route:
    name: str
    address_prefix: str
    next_hop_type: str  # VirtualAppliance | Internet | VnetLocal | VirtualNetworkGateway | None
    next_hop_ip: str | None = None


@dataclass(frozen=True)
class RouteTable:
    id: str
    name: str
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class PublicIp:
    id: str
    name: str
    address: str | None  # None while a dynamic address is unallocated


@dataclass(frozen=True)
class ClusterNetwork:
    """Where a cluster's nodes sit and how their traffic leaves (from the managed cluster)."""

    cluster_id: str
    subnet_ids: tuple[str, ...]
    outbound_type: str
    # True when AKS created the VNet (no vnetSubnetID): it lives in the node resource group.
    managed_vnet: bool = False
    lb_outbound_ip_ids: tuple[str, ...] = ()
    lb_outbound_prefix_ids: tuple[str, ...] = ()
    nat_outbound_ip_ids: tuple[str, ...] = ()
    nat_outbound_prefix_ids: tuple[str, ...] = ()

    @property
    def vnet_ids(self) -> tuple[str, ...]:
        seen: dict[str, str] = {}
        for subnet_id in self.subnet_ids:
            seen.setdefault(vnet_of(subnet_id).lower(), vnet_of(subnet_id))
        return tuple(seen.values())


@dataclass(frozen=True)
class Egress:
    """The public addresses a cluster reaches the internet from, and where they were found."""

    source: (
        str  # loadBalancer | managedNATGateway | userAssignedNATGateway | userDefinedRouting | none
    )
    addresses: tuple[str, ...]  # single IPs or CIDR prefixes
    resource_ids: tuple[str, ...]
    unknown_reason: str = ""

    @property
    def known(self) -> bool:
        return not self.unknown_reason


class NetworkPort(Protocol):
    def get_cluster_network(self, cluster: Cluster) -> ClusterNetwork: ...

    def get_cluster_egress(self, cluster: Cluster) -> Egress: ...

    def get_virtual_network(self, vnet_id: str) -> VirtualNetwork: ...

    def get_subnet(self, subnet_id: str) -> Subnet: ...

    def get_private_endpoint(self, endpoint_id: str) -> PrivateEndpoint: ...

    def get_private_dns_zone(self, zone_id: str) -> PrivateDnsZone: ...

    def find_private_dns_zones(
        self, name: str, *, subscription_ids: tuple[str, ...]
    ) -> list[PrivateDnsZone]: ...

    def get_route_table(self, route_table_id: str) -> RouteTable: ...

    def get_public_ip(self, public_ip_id: str) -> PublicIp: ...

    # -- writes (remediations) ------------------------------------------------------------------

    def create_private_dns_zone_link(
        self,
        zone_id: str,
        name: str,
        *,
        vnet_id: str,
        registration_enabled: bool = False,
        timeout: float,
    ) -> OperationResult:
        """PUT ``<zone>/virtualNetworkLinks/<name>`` (location ``global``) to ``vnet_id``.

        Returns ``Succeeded``, ``InProgress`` (still running after ``timeout`` seconds),
        ``Failed`` (the operation ran and failed; ``detail`` holds its error code) or ``Conflict``
        (409: e.g. the zone already links that VNet under another name). Other refusals
        (400) raise :class:`~shared.errors.WriteRejected` carrying the ARM error code.
        """
        ...


# -- pure helpers ------------------------------------------------------------------------------


def vnet_of(subnet_id: str) -> str:
    """``.../virtualNetworks/v/subnets/s`` -> ``.../virtualNetworks/v``."""
    marker = subnet_id.lower().rfind("/subnets/")
    return subnet_id[:marker] if marker >= 0 else subnet_id


def network(value: str) -> IpNetwork | None:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def covered(address: str, rules: Iterable[str]) -> bool:
    """Is ``address`` (an IP or a CIDR prefix) wholly inside one of ``rules`` (IPs or CIDRs)?"""
    wanted = network(address)
    if wanted is None:
        return False
    for rule in rules:
        allowed = network(rule)
        if (
            allowed is not None and allowed.version == wanted.version and wanted.subnet_of(allowed)  # type: ignore[arg-type]
        ):
            return True
    return False


@dataclass(frozen=True)
class RouteChoice:
    """The route Azure picks for one destination: a UDR or a system route, by longest prefix."""

    prefix: str
    next_hop_type: str
    next_hop_ip: str | None
    user_defined: bool
    name: str


def effective_route(
    destination: str, user_routes: Iterable[Route], system_routes: Iterable[RouteChoice]
) -> RouteChoice | None:
    """Longest prefix wins; on equal prefixes a user-defined route beats a system route."""
    target = network(destination)
    if target is None:
        return None
    candidates: list[tuple[int, int, RouteChoice]] = []
    for route in user_routes:
        prefix = network(route.address_prefix)
        if prefix is not None and prefix.version == target.version and target.subnet_of(prefix):  # type: ignore[arg-type]
            choice = RouteChoice(
                route.address_prefix, route.next_hop_type, route.next_hop_ip, True, route.name
            )
            candidates.append((prefix.prefixlen, 1, choice))
    for choice in system_routes:
        prefix = network(choice.prefix)
        if prefix is not None and prefix.version == target.version and target.subnet_of(prefix):  # type: ignore[arg-type]
            candidates.append((prefix.prefixlen, 0, choice))
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


def peered(left: VirtualNetwork, right: VirtualNetwork) -> bool:
    """Peered both ways and Connected, which is what traffic between two VNets needs."""
    there, back = left.peering_to(right.id), right.peering_to(left.id)
    return bool(there and back and there.connected and back.connected)


def peering_states(left: VirtualNetwork, right: VirtualNetwork) -> dict[str, str]:
    """``{"a->b": state or "missing", "b->a": ...}`` for evidence."""
    there, back = left.peering_to(right.id), right.peering_to(left.id)
    return {
        f"{left.name}->{right.name}": there.state if there else "missing",
        f"{right.name}->{left.name}": back.state if back else "missing",
    }
