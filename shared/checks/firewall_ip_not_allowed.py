"""Cause 3, solution 2: the registry's firewall does not allow the cluster's egress IPs."""

from __future__ import annotations

from dataclasses import replace

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.network import Egress, covered, peered
from shared.ports.registries import Registry
from shared.resource_id import ResourceId, same_id


class FirewallIpNotAllowed(Check):
    meta = CheckMeta(
        id="firewall-ip-not-allowed",
        family="3",
        title="The registry firewall allows the cluster's egress IPs",
        guide_section="Cause 3, Solution 2: Add AKS Load Balancer's public IP address to allowed "
        "IP address range of the container registry",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.Network/privateEndpoints/read",
            "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/loadBalancers/read",
            "Microsoft.Network/natGateways/read",
            "Microsoft.Network/publicIPAddresses/read",
            "Microsoft.Network/publicIPPrefixes/read",
        ),
        action_id="allow-egress-ip",
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        if target.registry_id is None:
            return self.finding(Status.UNKNOWN, "No registry was given to check.", target, {})
        registry = estate.get_registry(target.registry_id)
        allowed = [r.value for r in registry.ip_rules if r.action.lower() == "allow"]
        evidence: dict[str, object] = {
            "registry": registry.id,
            "publicNetworkAccess": registry.public_network_access,
            "defaultAction": registry.network_default_action,
            "allowedRules": allowed,
        }
        disabled = registry.public_network_access.lower() == "disabled"
        if not disabled and registry.network_default_action.lower() == "allow":
            return self.finding(
                Status.PASS, f"{registry.name} accepts pulls from all networks.", target, evidence
            )
        endpoint = _private_path(target, estate, registry)
        if endpoint:
            return self.finding(
                Status.PASS,
                f"{cluster.name} reaches {registry.name} through the private endpoint "
                f"{endpoint.rsplit('/', 1)[-1]} in or peered with its VNet, so the public "
                "firewall does not apply.",
                target,
                {**evidence, "privateEndpoint": endpoint},
            )
        if disabled:
            return self.finding(
                Status.FAIL,
                f"{registry.name} has public network access Disabled and {cluster.name} has no "
                "private endpoint in or peered with its VNet, so pulls get 403; allowing an IP "
                "does not help until public access is 'Selected networks' or an endpoint is "
                "added, which a person must decide.",
                target,
                evidence,
                fixable=False,
            )
        return self._compare_egress(target, estate, registry, evidence)

    def _compare_egress(
        self, target: Target, estate: Estate, registry: Registry, evidence: dict[str, object]
    ) -> Finding:
        cluster = target.cluster
        allowed = [r.value for r in registry.ip_rules if r.action.lower() == "allow"]
        egress = estate.get_cluster_egress(cluster)
        missing = [a for a in egress.addresses if not covered(a, allowed)]
        evidence |= {
            "egressSource": egress.source,
            "egressIps": list(egress.addresses),
            "egressResources": list(egress.resource_ids),
            "missingIps": missing,
        }
        commands = (self.commands(target)[0], *egress_commands(cluster, egress))
        if not egress.known:
            finding = self.finding(
                Status.UNKNOWN,
                f"{registry.name} only allows selected networks, and the egress IP of "
                f"{cluster.name} is unknown: {egress.unknown_reason}",
                target,
                evidence,
            )
            return replace(finding, commands=commands)
        if not missing:
            return self.finding(
                Status.PASS,
                f"All {len(egress.addresses)} egress IPs of {cluster.name} ({egress.source}) "
                f"are allowed by the firewall of {registry.name}.",
                target,
                evidence,
            )
        finding = self.finding(
            Status.FAIL,
            f"The egress IP {', '.join(missing)} of {cluster.name} ({egress.source}) is not in "
            f"the allowed IP rules of {registry.name}, so pulls get 403.",
            target,
            evidence,
        )
        return replace(
            finding,
            commands=(
                *commands,
                *(
                    f"az acr network-rule add --name {registry.name} --ip-address {ip}"
                    for ip in missing
                ),
            ),
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        acr = ResourceId.parse(target.registry_id).name if target.registry_id else "<acr>"
        cluster = target.cluster
        return (
            f'az acr show -n {acr} --query "{{publicNetworkAccess:publicNetworkAccess, '
            f'networkRuleSet:networkRuleSet}}"',
            f"az aks show -g {cluster.resource.resource_group} -n {cluster.name} --query "
            '"networkProfile.{outboundType:outboundType, '
            "lb:loadBalancerProfile.effectiveOutboundIPs[].id, "
            'nat:natGatewayProfile.effectiveOutboundIPs[].id}"',
        )


def egress_commands(cluster: Cluster, egress: Egress) -> tuple[str, ...]:
    """Where a person finds the egress addresses, for the outbound type the cluster has: the
    load balancer's IPs and prefixes, the NAT gateway's (in whatever resource group it is), or
    the firewall a user-defined route sends traffic to."""
    show = f"az aks show -g {cluster.resource.resource_group} -n {cluster.name} --query"
    by_type = {
        "microsoft.network/publicipaddresses": "az network public-ip show --ids {id} --query ipAddress -o tsv",
        "microsoft.network/publicipprefixes": "az network public-ip prefix show --ids {id} --query ipPrefix -o tsv",
        "microsoft.network/natgateways": (
            "az network nat gateway show --ids {id} --query "
            '"{{ips:publicIpAddresses[].id, prefixes:publicIpPrefixes[].id}}"'
        ),
    }
    shown = []
    for resource_id in egress.resource_ids:
        try:
            kind = ResourceId.parse(resource_id).full_type.lower()
        except ValueError:
            continue
        if kind in by_type:
            shown.append(by_type[kind].format(id=resource_id))
    if egress.source == "loadBalancer":
        lead = f"{show} networkProfile.loadBalancerProfile.effectiveOutboundIPs[].id -o tsv"
    elif egress.source == "managedNATGateway":
        lead = f"{show} networkProfile.natGatewayProfile.effectiveOutboundIPs[].id -o tsv"
    elif egress.source == "userAssignedNATGateway":
        lead = (
            f'{show} "agentPoolProfiles[].vnetSubnetID" -o tsv | xargs -I{{}} '
            "az network vnet subnet show --ids {} --query natGateway.id -o tsv"
        )
    elif egress.source == "userDefinedRouting":
        # The egress IP belongs to the firewall or appliance the default route points at.
        tables = [i for i in egress.resource_ids if "/routetables/" in i.lower()]
        return (
            *(
                f"az network route-table route list --ids {t} --query "
                "\"[?addressPrefix=='0.0.0.0/0'].{name:name, nextHop:nextHopIpAddress}\" -o table"
                for t in tables or ["<route table of the node subnets>"]
            ),
            'az network firewall list --query "[].{name:name, privateIp:ipConfigurations[0].'
            'privateIPAddress, publicIps:ipConfigurations[].publicIPAddress.id}" -o json',
        )
    else:
        lead = f"{show} networkProfile.outboundType -o tsv"
    return (lead, *shown)


def _private_path(target: Target, estate: Estate, registry: Registry) -> str | None:
    """An approved private endpoint of the registry in the cluster's VNet or one peered with it."""
    if not registry.private_endpoint_ids:
        return None
    cluster_vnets = estate.get_cluster_network(target.cluster).vnet_ids
    for endpoint_id in registry.private_endpoint_ids:
        endpoint = estate.get_private_endpoint(endpoint_id)
        if endpoint.connection_status.lower() != "approved":
            continue
        for vnet_id in cluster_vnets:
            if same_id(vnet_id, endpoint.vnet_id) or peered(
                estate.get_virtual_network(vnet_id), estate.get_virtual_network(endpoint.vnet_id)
            ):
                return endpoint.id
    return None
