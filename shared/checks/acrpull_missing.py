"""Cause 1a, solution 1: no role lets the cluster's pull identity pull from the registry."""

from __future__ import annotations

from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.ports import Estate
from shared.ports.rbac import RoleAssignment, RoleDefinition
from shared.ports.registries import Registry


def pull_grants(estate: Estate, registry: Registry) -> list[tuple[RoleAssignment, RoleDefinition]]:
    """Assignments at the registry, its resource group or subscription whose role can pull."""
    grants = []
    for assignment in estate.list_role_assignments_for_scope(registry.id):
        definition = estate.get_role_definition(assignment.role_definition_id)
        if definition.grants_pull(abac_mode=registry.abac_mode):
            grants.append((assignment, definition))
    return grants


def pull_identity(target: Target, estate: Estate) -> tuple[str, str]:
    """(object id, kind) of what pulls for the cluster: its kubelet identity or its SP."""
    cluster = target.cluster
    if cluster.kubelet_identity is not None:
        return cluster.kubelet_identity.object_id, "kubelet identity"
    sp = estate.get_service_principal(cluster.service_principal_client_id or "")
    return sp.id, "service principal"


def describe(
    assignment: RoleAssignment, definition: RoleDefinition, registry_id: str
) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "role": definition.role_name,
        "scope": assignment.scope,
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "inherited": assignment.inherited_by(registry_id),
        **({"condition": assignment.condition} if assignment.condition else {}),
    }


class AcrPullMissing(Check):
    meta = CheckMeta(
        id="acrpull-missing",
        family="1a",
        title="The cluster's pull identity has AcrPull (or an equivalent role) on the registry",
        guide_section="Cause 1a, Solution 1: Make sure AcrPull role assignment is created for identity",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.Authorization/roleAssignments/read",
            "Microsoft.Authorization/roleDefinitions/read",
        ),
        action_id="attach-acr",
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        if target.registry_id is None:
            return self.finding(
                Status.UNKNOWN, "No registry was given to check against.", target, {}, fixable=False
            )
        registry = estate.get_registry(target.registry_id)
        principal, kind = pull_identity(target, estate)
        mine = [(a, d) for a, d in pull_grants(estate, registry) if a.is_for(principal)]
        considered = [
            a for a in estate.list_role_assignments_for_scope(registry.id) if a.is_for(principal)
        ]
        evidence: dict[str, Any] = {
            "principalId": principal,
            "identity": kind,
            "registry": registry.id,
            "roleAssignmentMode": registry.role_assignment_mode,
            "requiredRole": "Container Registry Repository Reader"
            if registry.abac_mode
            else "AcrPull",
            "considered": [
                describe(a, estate.get_role_definition(a.role_definition_id), registry.id)
                for a in considered
            ],
            "granting": [describe(a, d, registry.id) for a, d in mine],
        }
        if mine:
            assignment, definition = mine[0]
            where = (
                "inherited from " + assignment.scope
                if assignment.inherited_by(registry.id)
                else "on the registry"
            )
            return self.finding(
                Status.PASS,
                f"The {kind} of {cluster.name} can pull from {registry.name}: {definition.role_name} {where}.",
                target,
                evidence,
            )
        if registry.abac_mode and considered:
            summary = (
                f"{registry.name} uses ABAC repository permissions, which ignore AcrPull and similar roles; "
                f"the {kind} of {cluster.name} needs Container Registry Repository Reader."
            )
        else:
            summary = (
                f"No role assignment on {registry.name}, its resource group or subscription lets the {kind} "
                f"of {cluster.name} pull images."
            )
        return self.finding(Status.FAIL, summary, target, evidence)

    def commands(self, target: Target) -> tuple[str, ...]:
        cluster = target.cluster
        rg = cluster.resource.resource_group
        registry = target.registry_id or "<acr-resource-id>"
        who = (
            f"az aks show -g {rg} -n {cluster.name} --query identityProfile.kubeletidentity.objectId -o tsv"
            if cluster.kubelet_identity is not None
            else f"az aks show -g {rg} -n {cluster.name} --query servicePrincipalProfile.clientId -o tsv"
        )
        return (
            who,
            f"az role assignment list --scope {registry} -o table",
            f"az aks update -n {cluster.name} -g {rg} --attach-acr {registry}",
        )
