"""The planners' clusters from the Resource Graph inventory, and each batch's slice of it.

The planner loads the inventory once per sweep (a few paged Resource Graph queries for the whole
scope: :func:`shared.azure.inventory.load_inventory`). Every batch message carries the part that
concerns its clusters (:func:`slice_of`), and the worker seeds its per-run read cache with it
(:func:`seed_slice`, through the inventory's own :func:`~shared.azure.inventory.seed`), so a
batch costs Resource Graph nothing and ARM only what Resource Graph does not hold, and a worker
holds one batch's share of the inventory, whatever the fleet's size.

A slice keeps, for its clusters: their node pool scale sets and VMs, which of their user-assigned
identities exist, and the role assignments of their kubelet identities; for everyone: the
registries and the subscriptions' management-group chains. It drops every other principal's role
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
from shared.azure.rbac import RbacReader
from shared.models import Cluster


class GraphClusters:
    """A :class:`~shared.cluster_source.ClusterSource` over a loaded inventory."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    def clusters(self, subscription_id: str) -> list[Cluster]:
        return sorted(self.inventory.clusters_in(subscription_id), key=lambda c: c.id.lower())

    def slice_for(self, clusters: list[Cluster]) -> Inventory:
        return slice_of(self.inventory, clusters)


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
    return replace(
        inventory,
        clusters=mine,
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
    for registry in piece.registries:
        # The slice holds only its own principals' assignments: ARM lists those at the scope.
        cache.discard(
            cache_key(RbacReader.list_role_assignments_for_scope.__name__, (registry.id,))
        )
