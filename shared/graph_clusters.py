"""The planners' clusters from the Resource Graph inventory, and each batch's slice of it.

The planner loads the inventory once per sweep (a few paged Resource Graph queries for the whole
scope: :func:`shared.azure.inventory.load_inventory`). Every batch message carries the part that
concerns its clusters (:func:`slice_of`), and the worker seeds its per-run read cache with it
(:func:`seed_slice`, through the inventory's own :func:`~shared.azure.inventory.seed`), so a
batch costs Resource Graph nothing and ARM only what Resource Graph does not hold, and a worker
holds one batch's share of the inventory, whatever the fleet's size.

A slice keeps, for its clusters: their node pool scale sets and VMs, which of their user-assigned
identities exist, the role assignments of their kubelet identities, their networks and the
virtual networks and outbound public IPs those name; for everyone: the registries, the
subscriptions' management-group chains, and route tables and private DNS zones while there are
at most :data:`MAX_SHARED` of each. It drops every other principal's role
assignments (a registry shared by 300 clusters holds 300 of them: no message would carry that),
so the role assignments *at a registry's scope* are not answered from a slice: they are read
from ARM, once per registry per batch. Seeded answers are tagged with their cluster: a failure
seen in them is confirmed from ARM (:meth:`shared.engine.Engine.diagnose`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from shared.azure.cache import RunCache, cache_key
from shared.azure.inventory import Inventory, seed
from shared.azure.network import NetworkReader
from shared.azure.rbac import RbacReader
from shared.cluster_source import ClusterSource
from shared.models import Cluster
from shared.resource_id import ResourceId

# What every batch shares (virtual networks, route tables, private DNS zones) is carried whole
# while it is small; beyond that only what the batch's clusters name, and ARM answers the rest.
MAX_SHARED = 100


def _group(resource_id: str) -> tuple[str, str]:
    rid = ResourceId.parse(resource_id)
    return rid.subscription_id.lower(), rid.resource_group.lower()


class GraphClusters:
    """A :class:`~shared.cluster_source.ClusterSource` over a loaded inventory."""

    def __init__(self, inventory: Inventory, unseen: ClusterSource) -> None:
        self.inventory = inventory
        self.unseen = unseen

    def clusters(self, subscription_id: str) -> list[Cluster]:
        if not self._visible(subscription_id):
            # Resource Graph shows nothing of a subscription the app cannot read, one that does
            # not exist, or one too new to be indexed: ARM lists it, or says why it cannot.
            return self.unseen.clusters(subscription_id)
        return sorted(self.inventory.clusters_in(subscription_id), key=lambda c: c.id.lower())

    def slice_for(self, clusters: list[Cluster]) -> Inventory | None:
        if not all(self._visible(c.resource.subscription_id) for c in clusters):
            return None  # an empty slice would answer "none" where the inventory never looked
        return slice_of(self.inventory, clusters)

    def _visible(self, subscription_id: str) -> bool:
        return subscription_id.lower() in self.inventory.subscriptions


def slice_of(inventory: Inventory, clusters: Iterable[Cluster]) -> Inventory:
    mine = tuple(clusters)
    keys = {c.id.lower() for c in mine}
    principals = {
        c.kubelet_identity.object_id.lower()
        for c in mine
        if c.kubelet_identity and c.kubelet_identity.object_id
    }
    hosts = [h for k in keys for h in (*inventory.scale_sets.get(k, ()), *inventory.vms.get(k, ()))]
    used = {c.kubelet_identity.resource_id.lower() for c in mine if c.kubelet_identity} | {
        i.lower() for h in hosts for i in h.user_assigned_identities
    }
    networks = {k: v for k, v in inventory.networks.items() if k in keys}
    groups = {(c.resource.subscription_id.lower(), c.node_resource_group.lower()) for c in mine}
    vnet_ids = {v.lower() for n in networks.values() for v in n.vnet_ids}
    addresses = {
        i.lower()
        for n in networks.values()
        for i in (*n.lb_outbound_ip_ids, *n.nat_outbound_ip_ids)
    }
    small = len(inventory.vnets) <= MAX_SHARED
    return replace(
        inventory,
        clusters=mine,
        networks=networks,
        vnets=tuple(
            v
            for v in inventory.vnets
            if small or v.id.lower() in vnet_ids or _group(v.id) in groups
        ),
        route_tables=inventory.route_tables if len(inventory.route_tables) <= MAX_SHARED else (),
        public_ips=tuple(p for p in inventory.public_ips if p.id.lower() in addresses),
        dns_zones=inventory.dns_zones if len(inventory.dns_zones) <= MAX_SHARED else (),
        scale_sets={k: v for k, v in inventory.scale_sets.items() if k in keys},
        vms={k: v for k, v in inventory.vms.items() if k in keys},
        role_assignments=tuple(
            a for a in inventory.role_assignments if a.principal_id.lower() in principals
        ),
        identities=frozenset(i for i in inventory.identities if i in used),
        requests=0,
    )


def seed_slice(cache: RunCache, piece: Inventory) -> None:
    """Answer a batch's discovery reads from its slice, except what a slice cannot answer."""
    seed(cache, piece, sorted(piece.subscriptions))
    if not piece.dns_zones:
        # Left out of the slice (too many) rather than absent: ARM lists them.
        for sub in piece.subscriptions:
            cache.discard(cache_key(NetworkReader.list_private_dns_zone_ids.__name__, (sub,)))
    for registry in piece.registries:
        # The slice holds only its own principals' assignments: ARM lists those at the scope.
        cache.discard(
            cache_key(RbacReader.list_role_assignments_for_scope.__name__, (registry.id,))
        )
        # ... but it holds all of theirs: what applies at each registry, per principal.
        applying = piece.assignments_at(registry.id)
        for cluster in piece.clusters:
            principal = cluster.kubelet_identity.object_id if cluster.kubelet_identity else ""
            if principal:
                cache.seed(
                    RbacReader.list_role_assignments_applying_to,
                    registry.id,
                    principal,
                    value=[a for a in applying if a.is_for(principal)],
                    tags=frozenset({cluster.id}),
                )
