"""link-private-dns-zone: link the cluster's VNet to the registry's ``privatelink.azurecr.io`` zone,
as ``az network private-dns link vnet create ... -e false`` does.

The zone is found as the check finds it (the private endpoint's DNS zone group, else a zone of that
name in the endpoint's or the cluster's subscription) and the VNets are read again from the
estate. Each link gets a deterministic name (:func:`link_name`), so a retry PUTs the same link; a
VNet the zone already links (under any name) is left alone, and a 409 Conflict for a VNet the
zone turns out to link is success.
"""

from __future__ import annotations

import hashlib
import time

from shared.checks.base import Finding, Target
from shared.errors import ReadError, WriteRejected
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.network import REGISTRY_ZONE, PrivateDnsZone, VnetLink
from shared.remediations.base import ActionRecord, Plan, Remediation
from shared.resource_id import ResourceId

# Link names: 1-80 characters; a VNet name is at most 64, so "<vnet>-<8 hex>" always fits.
MAX_LINK_NAME = 80
HASH_CHARS = 8
BUSY_STATES = ("creating", "updating", "deleting", "accepted")
BROKEN_STATES = ("failed", "canceled")


def link_name(vnet_id: str) -> str:
    """``<vnet name>-<first 8 hex of sha256(lower-case vnet id)>``: stable across retries and
    instances, distinct for same-named VNets in different resource groups or subscriptions."""
    normalized = vnet_id.strip().rstrip("/").lower()
    digest = hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:HASH_CHARS]
    vnet = vnet_id.strip().rstrip("/").rsplit("/", 1)[-1]
    return f"{vnet[: MAX_LINK_NAME - HASH_CHARS - 1]}-{digest}"


class LinkPrivateDnsZone(Remediation):
    id = "link-private-dns-zone"
    permissions = (
        "Microsoft.ContainerService/managedClusters/read",
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.Network/privateEndpoints/read",
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
        "Microsoft.Network/privateDnsZones/read",
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks/read",
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks/write",
        "Microsoft.Network/privateDnsOperationStatuses/read",
        "Microsoft.Network/privateDnsOperationResults/read",
        "Microsoft.Network/virtualNetworks/read",
        # Linking a VNet to a zone is a join on the VNet, checked on the VNet's scope.
        "Microsoft.Network/virtualNetworks/join/action",
    )

    def plan(self, finding: Finding, target: Target) -> Plan:
        zones = [str(z) for z in finding.evidence.get("zones", ())]
        vnets = [str(v) for v in finding.evidence.get("unlinkedVnets", ())]
        cluster = target.cluster.name
        zone_id = zones[0] if zones else None
        if zone_id is None or not vnets:
            return Plan(
                self.id,
                f"No unlinked VNet of {cluster} and {REGISTRY_ZONE} zone are known yet; the "
                "fix re-reads them before linking.",
                (),
            )
        zone = ResourceId.parse(zone_id)
        names = ", ".join(_name(v) for v in vnets)
        return Plan(
            action_id=self.id,
            summary=f"Link the VNet {names} of {cluster} to the {zone.name} zone in "
            f"{zone.resource_group} (registration off), so the registry resolves to its private "
            "endpoint.",
            commands=tuple(
                f"az network private-dns link vnet create -g {zone.resource_group} "
                f"-z {zone.name} -n {link_name(v)} -v {v} -e false"
                for v in vnets
            ),
            warnings=(
                f"From {names}, every name in {zone.name} resolves to its private IP, including "
                "other registries' endpoints in that zone: they must be reachable from the VNet.",
                f"A VNet can be linked to only one zone named {zone.name}.",
            ),
        )

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        if target.registry_id is None:
            return self._record("failed", "no registry was given, so there is no zone to link")
        try:
            return self._apply(target.cluster, target.registry_id, estate, timeout)
        except WriteRejected as exc:
            return self._record("failed", f"{exc.reason}; the VNet was not linked")
        except ReadError as exc:
            return self._record("failed", exc.reason)

    def _apply(
        self, cluster: Cluster, registry_id: str, estate: Estate, timeout: float
    ) -> ActionRecord:
        deadline = time.monotonic() + timeout
        registry = estate.get_registry(registry_id)
        if not registry.private_endpoint_ids:
            return self._record(
                "applied",
                f"{registry.name} has no private endpoint, so no {REGISTRY_ZONE} link is needed; "
                "nothing was changed",
            )
        zones = _zones(cluster, estate, registry.private_endpoint_ids)
        if len(zones) != 1:
            found = ", ".join(z.id for z in zones) or "none"
            return self._record(
                "failed",
                f"expected one {REGISTRY_ZONE} zone for the private endpoints of "
                f"{registry.name}, found {found}; which zone to link is a person's decision",
            )
        zone = zones[0]
        linked: list[str] = []
        for vnet_id in estate.get_cluster_network(cluster).vnet_ids:
            outcome = self._link(zone, vnet_id, estate, deadline)
            if isinstance(outcome, ActionRecord):
                return outcome
            if outcome:
                linked.append(outcome)
        return self._record(
            "applied",
            f"linked {', '.join(linked)} to {zone.name} ({zone.id})"
            if linked
            else f"every VNet of {cluster.name} is already linked to {zone.name} ({zone.id}); "
            "nothing was changed",
        )

    def _link(
        self, zone: PrivateDnsZone, vnet_id: str, estate: Estate, deadline: float
    ) -> ActionRecord | str | None:
        """Link one VNet: None if it already was, what was linked, or a record to stop with."""
        existing = zone.link_for(vnet_id)
        if existing is not None and _state(existing) in BUSY_STATES:
            return self._record(
                "in-progress",
                f"the link {existing.name} of {zone.name} to {_name(vnet_id)} is "
                f"{existing.provisioning_state}",
            )
        if existing is not None and _state(existing) not in BROKEN_STATES:
            return None
        # A link that failed to provision is PUT again under its own name.
        name = existing.name if existing is not None else link_name(vnet_id)
        result = estate.create_private_dns_zone_link(
            zone.id,
            name,
            vnet_id=vnet_id,
            registration_enabled=False,
            timeout=max(deadline - time.monotonic(), 0.0),
        )
        where = f"the link {name} of {zone.name} ({zone.id}) to {_name(vnet_id)}"
        if result.status == "Conflict":
            # 409: the zone already links this VNet under another name (a race with a person).
            if estate.get_private_dns_zone(zone.id).link_for(vnet_id) is None:
                return self._record(
                    "failed", f"ARM answered 409 {result.detail} for {where}, and no link exists"
                )
        elif result.status == "InProgress":
            return self._record("in-progress", f"{where} is {result.detail}")
        elif not result.succeeded:
            return self._record("failed", f"{where} ended {result.status} ({result.detail})")
        return f"{_name(vnet_id)} (as {name})"

    def _record(self, status: str, detail: str) -> ActionRecord:
        return ActionRecord(self.id, status, detail)


def _zones(cluster: Cluster, estate: Estate, endpoint_ids: tuple[str, ...]) -> list[PrivateDnsZone]:
    """The endpoints' zone-group zones, else zones named privatelink.azurecr.io (as the check)."""
    endpoints = [estate.get_private_endpoint(e) for e in endpoint_ids]
    zone_ids = dict.fromkeys(z for e in endpoints for z in e.dns_zone_ids)
    if zone_ids:
        zones = [estate.get_private_dns_zone(z) for z in zone_ids]
    else:
        subscriptions = tuple(
            dict.fromkeys(
                [ResourceId.parse(e.id).subscription_id.lower() for e in endpoints]
                + [cluster.resource.subscription_id.lower()]
            )
        )
        zones = estate.find_private_dns_zones(REGISTRY_ZONE, subscription_ids=subscriptions)
    return list({z.id.lower(): z for z in zones}.values())


def _state(link: VnetLink) -> str:
    return link.provisioning_state.lower()


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]
