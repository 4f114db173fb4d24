"""allow-egress-ip: add the cluster's egress IPs to the registry firewall, as
``az acr network-rule add`` does.

Read-modify-write: the registry's current IP rules are kept, the egress addresses they do not
cover (by themselves or by a wider CIDR rule) are appended, and the whole ``networkRuleSet`` is
PATCHed. The addresses are read again from the estate, not taken from the finding. After the write
the registry is read again: if a concurrent writer replaced the rules in between, the merge is
redone (at most :data:`MAX_WRITES` writes).
"""

from __future__ import annotations

import time

from shared.checks.base import Finding, Target
from shared.errors import ReadError, WriteRejected
from shared.ports import Estate
from shared.ports.network import covered
from shared.ports.registries import IpRule, Registry
from shared.remediations.base import ActionRecord, Plan, Remediation
from shared.resource_id import ResourceId

MAX_WRITES = 3


class AllowEgressIp(Remediation):
    id = "allow-egress-ip"
    permissions = (
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/write",
        "Microsoft.ContainerRegistry/registries/operationStatuses/read",
        "Microsoft.ContainerService/managedClusters/read",
        "Microsoft.Network/virtualNetworks/read",
        "Microsoft.Network/loadBalancers/read",
        "Microsoft.Network/natGateways/read",
        "Microsoft.Network/publicIPAddresses/read",
        "Microsoft.Network/publicIPPrefixes/read",
    )

    def plan(self, finding: Finding, target: Target) -> Plan:
        registry_id = str(finding.evidence.get("registry") or target.registry_id or "")
        acr = ResourceId.parse(registry_id).name if registry_id else "<acr>"
        missing = [str(ip) for ip in finding.evidence.get("missingIps", ())]
        cluster = target.cluster.name
        if not missing:
            summary = (
                f"No egress IP of {cluster} is known to be missing from the firewall of {acr}."
            )
        else:
            summary = (
                f"Allow the egress IP {', '.join(missing)} of {cluster} in the firewall of {acr} "
                "(existing rules are kept)."
            )
        return Plan(
            action_id=self.id,
            summary=summary,
            commands=tuple(
                f"az acr network-rule add --name {acr} --ip-address {ip}" for ip in missing
            ),
            warnings=(
                f"The firewall of {acr} is widened to these addresses: anything else behind them "
                "(other workloads sharing the load balancer or NAT gateway) can reach the "
                "registry's public endpoint too, still subject to authentication.",
            ),
        )

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        if target.registry_id is None:
            return self._record(
                "failed", "no registry was given, so there is no firewall to change"
            )
        try:
            return self._apply(target, target.registry_id, estate, time.monotonic() + timeout)
        except ReadError as exc:
            return self._record("failed", exc.reason)

    def _apply(
        self, target: Target, registry_id: str, estate: Estate, deadline: float
    ) -> ActionRecord:
        cluster = target.cluster
        added: list[str] = []
        writes = 0
        while True:
            registry = estate.get_registry(registry_id)
            if registry.public_network_access.lower() == "disabled":
                return self._record(
                    "failed",
                    f"{registry.name} has public network access Disabled: allowing an IP does "
                    "not open it, and choosing between 'Selected networks' and a private "
                    "endpoint is a person's decision; nothing was changed",
                )
            if registry.network_default_action.lower() == "allow":
                return self._record(
                    "applied",
                    f"{registry.name} accepts pulls from all networks; no IP rule is needed",
                )
            egress = estate.get_cluster_egress(cluster)
            if not egress.known:
                return self._record(
                    "failed",
                    f"the egress IPs of {cluster.name} are unknown ({egress.unknown_reason}), so "
                    "there is nothing safe to allow",
                )
            allowed = [r.value for r in registry.ip_rules if r.action.lower() == "allow"]
            missing = list(dict.fromkeys(a for a in egress.addresses if not covered(a, allowed)))
            if not missing:
                done = (
                    f"allowed {', '.join(added)} in the firewall of {registry.name}; all"
                    if added
                    else f"nothing was changed: the firewall of {registry.name} already allows all"
                )
                return self._record(
                    "applied", f"{done} {len(egress.addresses)} egress IPs of {cluster.name}"
                )
            if writes == MAX_WRITES:
                return self._record(
                    "failed",
                    f"the IP rules of {registry.name} kept changing under concurrent updates; "
                    f"{', '.join(missing)} still missing after {writes} writes",
                )
            rejected = self._write(registry, missing, estate, deadline)
            writes += 1
            if rejected is not None:
                return rejected
            added += [a for a in missing if a not in added]

    def _write(
        self, registry: Registry, missing: list[str], estate: Estate, deadline: float
    ) -> ActionRecord | None:
        """PATCH the current rules plus ``missing``; None when it succeeded."""
        ips = ", ".join(missing)
        try:
            result = estate.update_registry_network_rules(
                registry.id,
                default_action=registry.network_default_action,
                ip_rules=(*registry.ip_rules, *(IpRule(value=a, action="Allow") for a in missing)),
                timeout=max(deadline - time.monotonic(), 0.0),
            )
        except WriteRejected as exc:
            sku = (
                f" (IP rules need the Premium SKU; {registry.name} is {registry.sku})"
                if registry.sku.lower() != "premium"
                else ""
            )
            return self._record("failed", f"allowing {ips}: {exc.reason}{sku}; nothing was changed")
        if result.status == "InProgress":
            return self._record(
                "in-progress", f"the update of {registry.name} allowing {ips} is {result.detail}"
            )
        if not result.succeeded:
            return self._record(
                "failed",
                f"the update of {registry.name} allowing {ips} ended {result.status} "
                f"({result.detail})",
            )
        return None

    def _record(self, status: str, detail: str) -> ActionRecord:
        return ActionRecord(self.id, status, detail)
