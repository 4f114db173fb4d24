"""What the engine, checks and remediations need from the outside world, as protocols.

``shared.azure`` implements them with the real SDKs; nothing else in ``shared/`` imports an SDK.
"""

from __future__ import annotations

from typing import Protocol

from shared.models import Cluster, OperationResult, ScaleSet


class Estate(Protocol):
    def get_cluster(self, cluster_id: str) -> Cluster: ...

    def list_clusters(self, subscription_id: str) -> list[Cluster]: ...

    def cluster_for_node_resource_group(
        self, subscription_id: str, resource_group: str
    ) -> Cluster | None: ...

    def list_node_pool_scale_sets(self, cluster: Cluster) -> list[ScaleSet]: ...

    def identity_exists(self, identity_id: str) -> bool: ...

    def reconcile_cluster(self, cluster_id: str, *, timeout: float) -> OperationResult: ...
