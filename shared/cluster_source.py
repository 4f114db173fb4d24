"""Where the planners' clusters come from: the managed clusters of one subscription.

Today's discovery is :class:`ArmClusters` (ARM's paged list of managed clusters, 50 a page: a few
reads per subscription). A Resource Graph inventory can stand behind the same method, and give
each batch its slice of what it knows (``slice_for``), so a worker needs no read per cluster.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.models import Cluster
from shared.ports import Estate


class ClusterSource(Protocol):
    def clusters(self, subscription_id: str) -> list[Cluster]:
        """Every managed cluster of the subscription, by id; ReadError/TransientError as the
        estate raises them."""
        ...

    def slice_for(self, clusters: list[Cluster]) -> Any | None:
        """What a batch of these clusters may seed its reads with (None: nothing)."""
        ...


class ArmClusters:
    """The clusters from ARM's list of managed clusters (one paged list per subscription)."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate

    def clusters(self, subscription_id: str) -> list[Cluster]:
        return sorted(self.estate.list_clusters(subscription_id), key=lambda c: c.id.lower())

    def slice_for(self, clusters: list[Cluster]) -> Any | None:
        return None
