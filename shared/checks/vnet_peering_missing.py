"""Cause 4, solution 1: the private endpoint's VNet and the cluster VNet are not peered."""

from __future__ import annotations

from dataclasses import replace

from shared.checks.base import CheckMeta, Finding, Status, Target
from shared.checks.private_link import PrivateLinkCheck
from shared.ports import Estate
from shared.ports.network import PrivateEndpoint, covered, peered, peering_states
from shared.ports.registries import Registry
from shared.resource_id import ResourceId, same_id

APPLIANCE_HOPS = ("virtualappliance", "virtualapplianceecmp")


class VnetPeeringMissing(PrivateLinkCheck):
    not_applicable = ", so no peering is needed"

    meta = CheckMeta(
        id="vnet-peering-missing",
        family="4",
        title="The cluster VNet is peered with the VNet of the registry's private endpoint",
        guide_section="Cause 4, Solution 1: Make sure virtual network peering is used",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.Network/privateEndpoints/read",
            "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/read",
            "Microsoft.Network/routeTables/read",
        ),
        action_id=None,
    )

    def evaluate_private(
        self, target: Target, estate: Estate, registry: Registry, endpoints: list[PrivateEndpoint]
    ) -> Finding:
        cluster = target.cluster
        cluster_vnets = estate.get_cluster_network(cluster).vnet_ids
        states: dict[str, str] = {}
        unreached: list[str] = []
        for vnet_id in cluster_vnets:
            reached = False
            for endpoint in endpoints:
                if same_id(vnet_id, endpoint.vnet_id):
                    reached = True
                    continue
                local = estate.get_virtual_network(vnet_id)
                remote = estate.get_virtual_network(endpoint.vnet_id)
                states |= peering_states(local, remote)
                reached = reached or peered(local, remote)
            if not reached:
                unreached.append(vnet_id)
        evidence = {
            "registry": registry.id,
            "privateEndpoints": [e.id for e in endpoints],
            "clusterVnets": list(cluster_vnets),
            "endpointVnets": list(dict.fromkeys(e.vnet_id for e in endpoints)),
            "peerings": states,
        }
        if not unreached:
            return self.finding(
                Status.PASS,
                f"{cluster.name} shares or is peered (Connected both ways) with the VNet of a "
                f"private endpoint of {registry.name}.",
                target,
                evidence,
            )
        transit = _appliance_route(estate, cluster_subnets(estate, target), endpoints)
        if transit:
            return self.finding(
                Status.UNKNOWN,
                f"{cluster.name} is not peered with the private endpoint's VNet, but route "
                f"{transit} sends the endpoint's traffic to an appliance, so it may transit a "
                "hub; that path cannot be followed from here",
                target,
                {**evidence, "transitRoute": transit},
            )
        pairs = ", ".join(f"{k}: {v}" for k, v in states.items())
        finding = self.finding(
            Status.FAIL,
            f"{cluster.name} and the private endpoint of {registry.name} are in VNets that are "
            f"not peered both ways and Connected ({pairs}), so pulls time out; re-creating a "
            "peering needs a network owner.",
            target,
            evidence,
            fixable=False,
        )
        vnets = dict.fromkeys([*unreached, *(e.vnet_id for e in endpoints)])
        return replace(
            finding,
            commands=tuple(
                f"az network vnet peering list -g {ResourceId.parse(v).resource_group} "
                f"--vnet-name {ResourceId.parse(v).name} -o table"
                for v in vnets
            ),
        )


def cluster_subnets(estate: Estate, target: Target) -> tuple[str, ...]:
    return estate.get_cluster_network(target.cluster).subnet_ids


def _appliance_route(
    estate: Estate, subnet_ids: tuple[str, ...], endpoints: list[PrivateEndpoint]
) -> str | None:
    """The id/name of a UDR on the cluster subnets sending an endpoint IP to an appliance."""
    for subnet_id in subnet_ids:
        table_id = estate.get_subnet(subnet_id).route_table_id
        if not table_id:
            continue
        for route in estate.get_route_table(table_id).routes:
            if route.next_hop_type.lower() in APPLIANCE_HOPS and any(
                covered(ip, [route.address_prefix]) for e in endpoints for ip in e.ip_addresses
            ):
                return f"{table_id}/routes/{route.name}"
    return None
