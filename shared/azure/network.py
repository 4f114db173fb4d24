"""VNets, private endpoints, private DNS, routes and egress IPs through azure-mgmt-network and
azure-mgmt-privatedns.

The managed cluster is read again here (a separate cached GET) because :class:`~shared.models.Cluster`
carries no network profile or node subnets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.azure.cache import RunCache, cached
from shared.azure.clusters import _text
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.azure.operations import wait_for_operation
from shared.errors import NotFound
from shared.models import Cluster, OperationResult
from shared.ports.network import (
    ClusterNetwork,
    Egress,
    Peering,
    PrivateDnsZone,
    PrivateEndpoint,
    PublicIp,
    Route,
    RouteTable,
    Subnet,
    VirtualNetwork,
    VnetLink,
    vnet_of,
)
from shared.resource_id import ResourceId

AKS_LOAD_BALANCER = "kubernetes"


class NetworkReader:
    factory: ClientFactory
    cache: RunCache

    # -- virtual networks --------------------------------------------------------------------

    @cached
    def get_virtual_network(self, vnet_id: str) -> VirtualNetwork:
        rid = ResourceId.parse(vnet_id)
        client = self.factory.network(rid.subscription_id)
        with translated(vnet_id, doing="read virtual network"):
            return _vnet(client.virtual_networks.get(rid.resource_group, rid.name))

    @cached
    def list_virtual_networks(
        self, subscription_id: str, resource_group: str
    ) -> list[VirtualNetwork]:
        scope = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        client = self.factory.network(subscription_id)
        with translated(scope, doing="list virtual networks in"):
            return [_vnet(v) for v in client.virtual_networks.list(resource_group)]

    def get_subnet(self, subnet_id: str) -> Subnet:
        subnet = self.get_virtual_network(vnet_of(subnet_id)).subnet(subnet_id)
        if subnet is None:
            raise NotFound(f"{subnet_id} was not found", resource_id=subnet_id)
        return subnet

    # -- private endpoints and private DNS ---------------------------------------------------

    @cached
    def get_private_endpoint(self, endpoint_id: str) -> PrivateEndpoint:
        rid = ResourceId.parse(endpoint_id)
        client = self.factory.network(rid.subscription_id)
        with translated(endpoint_id, doing="read private endpoint"):
            model = client.private_endpoints.get(rid.resource_group, rid.name)
            groups = list(client.private_dns_zone_groups.list(rid.name, rid.resource_group))
        configs = [c for g in groups for c in g.private_dns_zone_configs or ()]
        zone_ids = tuple(c.private_dns_zone_id for c in configs if c.private_dns_zone_id)
        # With a zone group, Azure may leave customDnsConfigs empty: its A records hold the IPs.
        record_ips = [
            ip for c in configs for r in c.record_sets or () for ip in r.ip_addresses or ()
        ]
        return _endpoint(model, zone_ids, record_ips)

    @cached
    def get_private_dns_zone(self, zone_id: str) -> PrivateDnsZone:
        rid = ResourceId.parse(zone_id)
        client = self.factory.private_dns(rid.subscription_id)
        with translated(zone_id, doing="read private DNS zone"):
            zone = client.private_zones.get(rid.resource_group, rid.name)
            links = list(client.virtual_network_links.list(rid.resource_group, rid.name))
        return dns_zone_of(zone, links, zone_id)

    @cached
    def list_private_dns_zone_ids(self, subscription_id: str) -> list[tuple[str, str]]:
        """(id, name) of every private DNS zone in a subscription."""
        client = self.factory.private_dns(subscription_id)
        with translated(f"/subscriptions/{subscription_id}", doing="list private DNS zones in"):
            return [(z.id, z.name) for z in client.private_zones.list() if z.id and z.name]

    def find_private_dns_zones(
        self, name: str, *, subscription_ids: tuple[str, ...]
    ) -> list[PrivateDnsZone]:
        """Zones called ``name`` (e.g. ``privatelink.azurecr.io``) in any of the subscriptions."""
        found: dict[str, PrivateDnsZone] = {}
        for subscription_id in dict.fromkeys(s.lower() for s in subscription_ids):
            for zone_id, zone_name in self.list_private_dns_zone_ids(subscription_id):
                if zone_name.lower() == name.lower():
                    found.setdefault(zone_id.lower(), self.get_private_dns_zone(zone_id))
        return list(found.values())

    # -- routes and public IPs ---------------------------------------------------------------

    @cached
    def get_route_table(self, route_table_id: str) -> RouteTable:
        rid = ResourceId.parse(route_table_id)
        client = self.factory.network(rid.subscription_id)
        with translated(route_table_id, doing="read route table"):
            model = client.route_tables.get(rid.resource_group, rid.name)
        return route_table_of(model, route_table_id)

    @cached
    def get_public_ip(self, public_ip_id: str) -> PublicIp:
        rid = ResourceId.parse(public_ip_id)
        client = self.factory.network(rid.subscription_id)
        with translated(public_ip_id, doing="read public IP address"):
            model = client.public_ip_addresses.get(rid.resource_group, rid.name)
        return public_ip_of(model, public_ip_id)

    @cached
    def get_public_ip_prefix(self, prefix_id: str) -> str | None:
        rid = ResourceId.parse(prefix_id)
        client = self.factory.network(rid.subscription_id)
        with translated(prefix_id, doing="read public IP prefix"):
            prefix: str | None = client.public_ip_prefixes.get(
                rid.resource_group, rid.name
            ).ip_prefix
        return prefix

    # -- the cluster's side ------------------------------------------------------------------

    @cached
    def get_cluster_network(self, cluster: Cluster) -> ClusterNetwork:
        rid = cluster.resource
        client = self.factory.container_service(rid.subscription_id)
        with translated(cluster.id, doing="read managed cluster"):
            mc = client.managed_clusters.get(rid.resource_group, rid.name)
        return cluster_network_of(
            cluster,
            mc,
            lambda: self.list_virtual_networks(rid.subscription_id, cluster.node_resource_group),
        )

    @cached
    def get_cluster_egress(self, cluster: Cluster) -> Egress:
        """The public IPs the cluster's outbound traffic uses, from the load balancer or NAT gateway."""
        net = self.get_cluster_network(cluster)
        outbound = net.outbound_type or "loadBalancer"
        if outbound == "loadBalancer":
            ip_ids, prefix_ids = net.lb_outbound_ip_ids, net.lb_outbound_prefix_ids
            if not ip_ids and not prefix_ids:
                ip_ids, prefix_ids = self._aks_load_balancer_frontends(cluster)
            return self._egress(outbound, ip_ids, prefix_ids)
        if outbound == "managedNATGateway":
            return self._egress(outbound, net.nat_outbound_ip_ids, net.nat_outbound_prefix_ids)
        if outbound == "userAssignedNATGateway":
            gateways = tuple(
                dict.fromkeys(
                    s.nat_gateway_id
                    for s in map(self.get_subnet, net.subnet_ids)
                    if s.nat_gateway_id
                )
            )
            if not gateways:
                return Egress(outbound, (), (), "the node subnets have no NAT gateway attached")
            found = [self._nat_gateway(g) for g in gateways]
            egress = self._egress(
                outbound, sum((f[0] for f in found), ()), sum((f[1] for f in found), ())
            )
            return Egress(
                outbound, egress.addresses, gateways + egress.resource_ids, egress.unknown_reason
            )
        if outbound == "userDefinedRouting":
            return self._routed_egress(net)
        return Egress(outbound, (), (), f"outbound type {outbound} has no public egress IP")

    def _routed_egress(self, net: ClusterNetwork) -> Egress:
        """userDefinedRouting: the egress IP is the public IP of whatever the default route of
        the node subnets points at (a firewall or appliance), which no AKS field names."""
        tables = tuple(
            dict.fromkeys(
                s.route_table_id for s in map(self.get_subnet, net.subnet_ids) if s.route_table_id
            )
        )
        hops = [
            f"{r.next_hop_type} {r.next_hop_ip or ''}".strip() + f" (route {r.name} in {t.name})"
            for t in map(self.get_route_table, tables)
            for r in t.routes
            if r.address_prefix == "0.0.0.0/0"
        ]
        where = (
            f"the default route sends it to {'; '.join(hops)}"
            if hops
            else ("no route table on the node subnets has a 0.0.0.0/0 route")
        )
        return Egress(
            "userDefinedRouting",
            (),
            tables,
            "outbound traffic follows user-defined routes, and the public IP it leaves from "
            f"belongs to a firewall or appliance AKS does not know: {where}; check that that "
            "device's public IP is allowed",
        )

    def _egress(self, source: str, ip_ids: tuple[str, ...], prefix_ids: tuple[str, ...]) -> Egress:
        addresses: list[str] = []
        missing: list[str] = []
        for ip_id in ip_ids:
            address = self.get_public_ip(ip_id).address
            if address:
                addresses.append(address)
            else:
                missing.append(ip_id)
        for prefix_id in prefix_ids:
            prefix = self.get_public_ip_prefix(prefix_id)
            if prefix:
                addresses.append(prefix)
            else:
                missing.append(prefix_id)
        reason = ""
        if not ip_ids and not prefix_ids:
            reason = f"no outbound public IP is configured for {source}"
        elif missing:
            reason = "some outbound public IPs have no address allocated"
        return Egress(source, tuple(addresses), ip_ids + prefix_ids, reason)

    def _aks_load_balancer_frontends(
        self, cluster: Cluster
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Outbound-rule frontends of the ``kubernetes`` load balancer AKS keeps in the node RG."""
        rid = cluster.resource
        lb_id = (
            f"{cluster.node_resource_group_id}/providers/Microsoft.Network/loadBalancers/"
            f"{AKS_LOAD_BALANCER}"
        )
        client = self.factory.network(rid.subscription_id)
        with translated(lb_id, doing="read load balancer"):
            lb = client.load_balancers.get(cluster.node_resource_group, AKS_LOAD_BALANCER)
        outbound = {
            ref.id.lower()
            for rule in lb.outbound_rules or ()
            for ref in rule.frontend_ip_configurations or ()
            if ref.id
        }
        frontends = [
            f for f in lb.frontend_ip_configurations or () if f.id and f.id.lower() in outbound
        ]
        ips = tuple(
            f.public_ip_address.id
            for f in frontends
            if f.public_ip_address and f.public_ip_address.id
        )
        prefixes = tuple(
            f.public_ip_prefix.id for f in frontends if f.public_ip_prefix and f.public_ip_prefix.id
        )
        return ips, prefixes

    @cached
    def _nat_gateway(self, gateway_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        rid = ResourceId.parse(gateway_id)
        client = self.factory.network(rid.subscription_id)
        with translated(gateway_id, doing="read NAT gateway"):
            gateway = client.nat_gateways.get(rid.resource_group, rid.name)
        return _ids(gateway.public_ip_addresses), _ids(gateway.public_ip_prefixes)

    # -- writes (remediations) ---------------------------------------------------------------

    def create_private_dns_zone_link(
        self,
        zone_id: str,
        name: str,
        *,
        vnet_id: str,
        registration_enabled: bool = False,
        timeout: float,
    ) -> OperationResult:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.privatedns.models import (
            SubResource,
            VirtualNetworkLink,
            VirtualNetworkLinkProperties,
        )

        from shared.errors import WriteRejected

        rid = ResourceId.parse(zone_id)
        link_id = f"{rid}/virtualNetworkLinks/{name}"
        client = self.factory.private_dns(rid.subscription_id)
        link = VirtualNetworkLink(
            location="global",
            properties=VirtualNetworkLinkProperties(
                virtual_network=SubResource(id=vnet_id),
                registration_enabled=registration_enabled,
            ),
        )
        rejected: WriteRejected | None = None
        try:
            with translated(link_id, doing="create the virtual network link"):
                try:
                    poller = client.virtual_network_links.begin_create_or_update(
                        rid.resource_group, rid.name, name, link
                    )
                except HttpResponseError as exc:
                    code = getattr(exc.error, "code", None) or exc.reason or ""
                    if exc.status_code == 409:
                        return OperationResult("Conflict", code)
                    if exc.status_code not in (400, 422):
                        raise
                    rejected = WriteRejected(
                        f"ARM refused the virtual network link {link_id} ({exc.status_code} {code})",
                        resource_id=link_id,
                        code=code,
                    )
                else:
                    return wait_for_operation(poller, timeout)
        finally:
            self.cache.clear()
        assert rejected is not None
        raise rejected


def cluster_network_of(
    cluster: Cluster, mc: Any, managed_vnets: Callable[[], list[VirtualNetwork]]
) -> ClusterNetwork:
    """The cluster's network from its ARM shape (``managed_vnets``: the VNets AKS made, read
    only when no pool names a subnet). Shared by ARM reads and the Resource Graph inventory."""
    subnet_ids = tuple(
        dict.fromkeys(p.vnet_subnet_id for p in mc.agent_pool_profiles or () if p.vnet_subnet_id)
    )
    managed = not subnet_ids
    if managed:
        # AKS created the VNet (aks-vnet-*) in the node resource group.
        vnets = managed_vnets()
        subnet_ids = tuple(s.id for v in vnets for s in v.subnets)
    profile = mc.network_profile
    lb = profile.load_balancer_profile if profile else None
    nat = profile.nat_gateway_profile if profile else None
    # effectiveOutboundIPs holds public IP *and* public IP prefix ids (a cluster created
    # with --load-balancer-outbound-ip-prefixes lists the prefixes there): split them by type.
    lb_ips, lb_prefixes = _by_type(
        _ids(lb.effective_outbound_i_ps if lb else None),
        _ids(lb.outbound_i_ps.public_i_ps if lb and lb.outbound_i_ps else None),
        _ids(
            lb.outbound_ip_prefixes.public_ip_prefixes if lb and lb.outbound_ip_prefixes else None
        ),
    )
    nat_ips, nat_prefixes = _by_type(_ids(nat.effective_outbound_i_ps if nat else None))
    return ClusterNetwork(
        cluster_id=cluster.id,
        subnet_ids=subnet_ids,
        outbound_type=_text(profile.outbound_type) if profile else "",
        managed_vnet=managed,
        lb_outbound_ip_ids=lb_ips,
        lb_outbound_prefix_ids=lb_prefixes,
        nat_outbound_ip_ids=nat_ips,
        nat_outbound_prefix_ids=nat_prefixes,
    )


def route_table_of(model: Any, fallback_id: str = "") -> RouteTable:
    return RouteTable(
        id=model.id or fallback_id,
        name=model.name or fallback_id.rsplit("/", 1)[-1],
        routes=tuple(
            Route(
                name=r.name or "",
                address_prefix=r.address_prefix or "",
                next_hop_type=_text(r.next_hop_type),
                next_hop_ip=r.next_hop_ip_address,
            )
            for r in model.routes or ()
        ),
    )


def public_ip_of(model: Any, fallback_id: str = "") -> PublicIp:
    return PublicIp(
        id=model.id or fallback_id,
        name=model.name or fallback_id.rsplit("/", 1)[-1],
        address=model.ip_address,
    )


def dns_zone_of(zone: Any, links: list[Any], fallback_id: str = "") -> PrivateDnsZone:
    return PrivateDnsZone(
        id=str(ResourceId.parse(zone.id or fallback_id)),
        name=zone.name or fallback_id.rsplit("/", 1)[-1],
        links=tuple(_link(x) for x in links),
    )


def _ids(refs: Any) -> tuple[str, ...]:
    return tuple(r.id for r in refs or () if getattr(r, "id", None))


_PREFIX_TYPE = "microsoft.network/publicipprefixes"


def _by_type(*groups: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(public IP ids, public IP prefix ids) of all ``groups``, each once, in order."""
    ips: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for resource_id in (i for group in groups for i in group):
        try:
            is_prefix = ResourceId.parse(resource_id).full_type.lower() == _PREFIX_TYPE
        except ValueError:
            continue
        (prefixes if is_prefix else ips).setdefault(resource_id.lower(), resource_id)
    return tuple(ips.values()), tuple(prefixes.values())


def _vnet(model: Any) -> VirtualNetwork:
    space = model.address_space
    return VirtualNetwork(
        id=str(ResourceId.parse(model.id)),
        name=model.name,
        address_prefixes=tuple(space.address_prefixes or ()) if space else (),
        subnets=tuple(_subnet(s) for s in model.subnets or ()),
        peerings=tuple(_peering(p) for p in model.virtual_network_peerings or ()),
        dns_servers=tuple(model.dhcp_options.dns_servers or ()) if model.dhcp_options else (),
    )


def _subnet(model: Any) -> Subnet:
    prefixes = tuple(model.address_prefixes or ()) or (
        (model.address_prefix,) if model.address_prefix else ()
    )
    return Subnet(
        id=model.id,
        name=model.name or "",
        address_prefixes=prefixes,
        route_table_id=model.route_table.id if model.route_table else None,
        nat_gateway_id=model.nat_gateway.id if model.nat_gateway else None,
        private_endpoint_network_policies=_text(model.private_endpoint_network_policies)
        or "Disabled",
    )


def _peering(model: Any) -> Peering:
    remote_space = model.remote_virtual_network_address_space or model.remote_address_space
    return Peering(
        id=model.id,
        name=model.name or "",
        remote_vnet_id=model.remote_virtual_network.id if model.remote_virtual_network else "",
        state=_text(model.peering_state) or "Unknown",
        remote_address_prefixes=tuple(remote_space.address_prefixes or ()) if remote_space else (),
    )


def _endpoint(model: Any, zone_ids: tuple[str, ...], record_ips: list[str]) -> PrivateEndpoint:
    connections = [
        *(model.private_link_service_connections or ()),
        *(model.manual_private_link_service_connections or ()),
    ]
    states = [c.private_link_service_connection_state for c in connections]
    configs = model.custom_dns_configs or ()
    ips = [ip for c in configs for ip in c.ip_addresses or ()]
    ips += [c.private_ip_address for c in model.ip_configurations or () if c.private_ip_address]
    ips += record_ips
    return PrivateEndpoint(
        id=str(ResourceId.parse(model.id)),
        name=model.name,
        subnet_id=model.subnet.id if model.subnet else "",
        target_ids=tuple(
            c.private_link_service_id for c in connections if c.private_link_service_id
        ),
        connection_status=next((_text(s.status) for s in states if s is not None), ""),
        ip_addresses=tuple(dict.fromkeys(ips)),
        fqdns=tuple(c.fqdn for c in configs if c.fqdn),
        dns_zone_ids=zone_ids,
    )


def _link(model: Any) -> VnetLink:
    return VnetLink(
        id=model.id,
        name=model.name,
        vnet_id=model.virtual_network.id if model.virtual_network else "",
        registration_enabled=bool(model.registration_enabled),
        state=_text(model.virtual_network_link_state),
        provisioning_state=_text(model.provisioning_state),
    )
