"""Cause 3, solution 1: the cluster VNet is not linked to the registry's private DNS zone."""

from __future__ import annotations

from dataclasses import replace

from shared.checks.base import CheckMeta, Finding, Status, Target
from shared.checks.private_link import PrivateLinkCheck
from shared.ports import Estate
from shared.ports.network import REGISTRY_ZONE, PrivateDnsZone, PrivateEndpoint
from shared.ports.registries import Registry
from shared.resource_id import ResourceId


class PrivateDnsLinkMissing(PrivateLinkCheck):
    not_applicable = ", so no private DNS zone applies"

    meta = CheckMeta(
        id="private-dns-link-missing",
        family="3",
        title="The cluster VNet is linked to the registry's privatelink.azurecr.io zone",
        guide_section="Cause 3, Solution 1: Make sure AKS virtual network link is set in the "
        "container registry's Private DNS zone",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.Network/privateEndpoints/read",
            "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
            "Microsoft.Network/privateDnsZones/read",
            "Microsoft.Network/privateDnsZones/virtualNetworkLinks/read",
            "Microsoft.Network/virtualNetworks/read",
        ),
        action_id="link-private-dns-zone",
    )

    def evaluate_private(
        self, target: Target, estate: Estate, registry: Registry, endpoints: list[PrivateEndpoint]
    ) -> Finding:
        cluster = target.cluster
        zone_ids = dict.fromkeys(z for e in endpoints for z in e.dns_zone_ids)
        if zone_ids:
            zones = [estate.get_private_dns_zone(z) for z in zone_ids]
        else:
            subscriptions = tuple(
                dict.fromkeys(
                    [ResourceId.parse(e.id).subscription_id for e in endpoints]
                    + [cluster.resource.subscription_id]
                )
            )
            zones = estate.find_private_dns_zones(REGISTRY_ZONE, subscription_ids=subscriptions)
        cluster_vnets = estate.get_cluster_network(cluster).vnet_ids
        evidence = {
            "registry": registry.id,
            "privateEndpoints": [e.id for e in endpoints],
            "zones": [z.id for z in zones],
            "linkedVnets": [link.vnet_id for z in zones for link in z.links],
            "clusterVnets": list(cluster_vnets),
        }
        if not zones:
            return self.finding(
                Status.UNKNOWN,
                f"No {REGISTRY_ZONE} zone was found for the private endpoints of "
                f"{registry.name}: it may live in a subscription out of scope, or DNS is custom",
                target,
                evidence,
            )
        unlinked = [v for v in cluster_vnets if not any(z.link_for(v) for z in zones)]
        names = ", ".join(_name(v) for v in unlinked or cluster_vnets)
        servers = sorted(
            {
                server
                for v in cluster_vnets
                for server in estate.get_virtual_network(v).dns_servers
                if server != AZURE_DNS
            }
        )
        if not unlinked and servers:
            # Nodes ask these servers, not Azure DNS: the zone link only helps if they forward.
            finding = self.finding(
                Status.UNKNOWN,
                f"The VNet {names} of {cluster.name} is linked to {zones[0].name}, but its nodes "
                f"resolve through the custom DNS servers {', '.join(servers)}; "
                f"{registry.login_server} resolves to the private endpoint only if they forward "
                f"{REGISTRY_ZONE} (or azurecr.io) to Azure DNS {AZURE_DNS} from a VNet linked to "
                "the zone, which Azure cannot show",
                target,
                {**evidence, "dnsServers": servers, "forwardingRule": FORWARDING_RULE},
            )
            return replace(finding, commands=_custom_dns_commands(cluster_vnets, registry))
        if not unlinked:
            return self.finding(
                Status.PASS,
                f"The VNet {names} of {cluster.name} is linked to {zones[0].name}, so "
                f"{registry.login_server} resolves to the private endpoint.",
                target,
                evidence,
            )
        custom = {v: estate.get_virtual_network(v).dns_servers for v in unlinked}
        if all(custom.values()):
            servers = sorted({s for found in custom.values() for s in found})
            return self.finding(
                Status.UNKNOWN,
                f"The VNet {names} of {cluster.name} is not linked to {zones[0].name} but uses "
                f"custom DNS servers {', '.join(servers)}; whether they resolve the zone cannot "
                "be read from Azure",
                target,
                {**evidence, "dnsServers": servers},
            )
        finding = self.finding(
            Status.FAIL,
            f"The VNet {names} of {cluster.name} is not linked to the {zones[0].name} zone of "
            f"{registry.name}, so {registry.login_server} resolves to its public address and "
            "the registry answers 403.",
            target,
            {**evidence, "unlinkedVnets": unlinked},
        )
        return replace(finding, commands=_link_commands(zones[0], unlinked))

    def commands(self, target: Target) -> tuple[str, ...]:
        acr = ResourceId.parse(target.registry_id).name if target.registry_id else "<acr>"
        return (
            f"az acr show -n {acr} --query privateEndpointConnections[].privateEndpoint.id -o tsv",
            f"az network private-dns zone list --query \"[?name=='{REGISTRY_ZONE}'].id\" -o tsv",
        )


# Azure's recursive resolver (the virtual public IP): a VNet pointing at it uses Azure DNS.
AZURE_DNS = "168.63.129.16"
FORWARDING_RULE = f"{REGISTRY_ZONE} -> {AZURE_DNS} (conditional forwarder on the custom servers)"


def _custom_dns_commands(vnet_ids: tuple[str, ...], registry: Registry) -> tuple[str, ...]:
    return (
        *(
            f"az network vnet show --ids {v} --query dhcpOptions.dnsServers -o tsv"
            for v in vnet_ids
        ),
        "az dns-resolver forwarding-rule list --ruleset-name <ruleset> -g <rg> -o table  "
        "# if the servers are an Azure DNS Private Resolver",
        f"kubectl run dnscheck --rm -it --restart=Never --image=busybox -- nslookup "
        f"{registry.login_server}  # expect the private endpoint's 10.x address",
    )


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _link_commands(zone: PrivateDnsZone, vnet_ids: list[str]) -> tuple[str, ...]:
    rg = ResourceId.parse(zone.id).resource_group
    return (
        f"az network private-dns link vnet list -g {rg} -z {zone.name} -o table",
        *(
            f"az network private-dns link vnet create -g {rg} -z {zone.name} "
            f"-n {_name(v)}-link -v {v} -e false"
            for v in vnet_ids
        ),
    )
