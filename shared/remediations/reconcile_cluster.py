"""reconcile-cluster: PUT the current managed cluster so AKS re-applies its own configuration.

This is what ``az aks update`` with no arguments does; among other things it puts the kubelet
identity back on node pool scale sets it was removed from.
"""

from __future__ import annotations

from shared.checks.base import Finding, Target
from shared.ports import Estate
from shared.remediations.base import ActionRecord, Plan, Remediation


class ReconcileCluster(Remediation):
    id = "reconcile-cluster"
    permissions = (
        "Microsoft.ContainerService/managedClusters/read",
        "Microsoft.ContainerService/managedClusters/write",
        # ARM checks it for every user-assigned identity named in the PUT body (kubelet identity).
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    )

    def plan(self, finding: Finding, target: Target) -> Plan:
        cluster = target.cluster
        return Plan(
            action_id=self.id,
            summary=f"Reconcile {cluster.name} (PUT the current cluster) so AKS re-attaches the "
            "kubelet identity to its node pool scale sets.",
            commands=(f"az aks update -g {cluster.resource.resource_group} -n {cluster.name}",),
            warnings=("The cluster shows provisioningState Updating for a few minutes.",),
        )

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        result = estate.reconcile_cluster(target.cluster.id, timeout=timeout)
        if result.succeeded:
            return ActionRecord(self.id, "applied", "the reconcile operation succeeded")
        if result.status == "InProgress":
            return ActionRecord(self.id, "in-progress", result.detail)
        return ActionRecord(
            self.id, "failed", f"the reconcile operation ended {result.status}: {result.detail}"
        )
