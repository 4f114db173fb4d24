"""The inventory: a first answer to a sweep's discovery reads, from Azure Resource Graph."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class InventoryPort(Protocol):
    def use_inventory(self, subscription_ids: Iterable[str]) -> bool:
        """Answer this run's discovery reads (clusters, registries, node scale sets and VMs,
        role assignments) from the inventory; False (logged) when it is unavailable, and the
        reads go to ARM as before."""
        ...

    def seed_inventory(self, piece: Any) -> None:
        """Answer this run's reads from a batch's slice of the inventory (the planner loaded it:
        shared.graph_clusters), except what a slice cannot answer."""
        ...

    def forget_inventory(self, cluster_id: str) -> bool:
        """Forget what the inventory answered for one cluster, so it is read again from ARM;
        True if it had answered anything."""
        ...
