"""Cause 1a, solution 3: the registry's pull role names an old service principal, not the current one."""

from __future__ import annotations

from typing import Any

from shared.checks.acrpull_missing import describe, pull_grants
from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.errors import NotFound
from shared.permissions import GRAPH_READ
from shared.ports import Estate


class SpMismatch(Check):
    meta = CheckMeta(
        id="sp-mismatch",
        family="1a",
        title="The registry's pull role is assigned to the cluster's current service principal",
        guide_section="Cause 1a, Solution 3: Make sure AcrPull role is assigned to correct service principal",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.Authorization/roleAssignments/read",
            "Microsoft.Authorization/roleDefinitions/read",
        ),
        action_id="attach-acr",
        graph=(GRAPH_READ,),
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        client_id = cluster.service_principal_client_id
        if client_id is None:
            return self.finding(
                Status.PASS,
                f"Not applicable: {cluster.name} pulls with its kubelet managed identity, not a "
                "service principal.",
                target,
                {
                    "kubeletIdentity": cluster.kubelet_identity.resource_id
                    if cluster.kubelet_identity
                    else None
                },
            )
        if target.registry_id is None:
            return self.finding(
                Status.UNKNOWN, "No registry was given to check against.", target, {}, fixable=False
            )
        registry = estate.get_registry(target.registry_id)
        current = estate.get_service_principal(client_id)
        grants = pull_grants(estate, registry)
        evidence: dict[str, Any] = {
            "clientId": client_id,
            "servicePrincipalObjectId": current.id,
            "registry": registry.id,
        }
        if any(a.is_for(current.id) for a, _ in grants):
            return self.finding(
                Status.PASS,
                f"The pull role on {registry.name} is assigned to the current service principal of "
                f"{cluster.name} ({client_id}).",
                target,
                evidence,
            )
        stale = []
        for assignment, definition in grants:
            if assignment.principal_type != "ServicePrincipal":
                continue
            entry = describe(assignment, definition, registry.id)
            try:
                other = estate.get_service_principal_by_id(assignment.principal_id)
            except NotFound:
                stale.append({**entry, "appId": None, "deleted": True})
                continue
            if other.service_principal_type == "Application":
                stale.append({**entry, "appId": other.app_id, "displayName": other.display_name})
        evidence["otherServicePrincipals"] = stale
        if not stale:
            return self.finding(
                Status.PASS,
                f"No other service principal holds the pull role on {registry.name}, so there is no "
                "old assignment to move (acrpull-missing tells whether one is needed).",
                target,
                evidence,
            )
        old = ", ".join(str(s["appId"] or s["principalId"]) for s in stale)
        return self.finding(
            Status.FAIL,
            f"The pull role on {registry.name} is assigned to {old}, not to the current service "
            f"principal of {cluster.name} ({client_id}).",
            target,
            evidence,
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        cluster = target.cluster
        rg = cluster.resource.resource_group
        registry = target.registry_id or "<acr-resource-id>"
        return (
            f"az aks show --resource-group {rg} --name {cluster.name} "
            "--query servicePrincipalProfile.clientId --output tsv",
            f"az role assignment list --scope {registry} -o table",
            f"az aks update -n {cluster.name} -g {rg} --attach-acr {registry}",
        )
