"""Managed clusters, their node pool scale sets and the kubelet identity."""

from __future__ import annotations

from typing import Protocol

from shared.models import Cluster, NodeVm, OperationResult, ScaleSet


class ClusterPort(Protocol):
    def get_cluster(self, cluster_id: str) -> Cluster: ...

    def list_clusters(self, subscription_id: str) -> list[Cluster]: ...

    def cluster_for_node_resource_group(
        self, subscription_id: str, resource_group: str
    ) -> Cluster | None: ...

    def list_node_pool_scale_sets(self, cluster: Cluster) -> list[ScaleSet]: ...

    def list_node_vms(self, cluster: Cluster) -> list[NodeVm]:
        """Node VMs of the cluster's pools that are not scale sets (VirtualMachines pools)."""
        ...

    def identity_exists(self, identity_id: str) -> bool: ...

    def reconcile_cluster(self, cluster_id: str, *, timeout: float) -> OperationResult: ...

    def reset_service_principal_profile(
        self, cluster_id: str, *, client_id: str, secret: str, timeout: float
    ) -> OperationResult:
        """Give a service principal cluster new credentials (``az aks update-credentials
        --reset-service-principal``); waits up to ``timeout`` for the operation, then reports
        ``InProgress``. AKS reimages the nodes to apply them. ``secret`` never appears in a log,
        a result or an exception."""
        ...
