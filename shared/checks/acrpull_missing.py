"""Cause 1a, solution 1: no role lets the cluster's pull identity pull from the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.checks.repository_conditions import allows_repository
from shared.errors import ReadError
from shared.permissions import GRAPH_READ
from shared.ports import Estate
from shared.ports.kubernetes import image_repository
from shared.ports.rbac import DenyAssignment, RoleAssignment, RoleDefinition
from shared.ports.registries import Registry


@dataclass
class RegistryRoles:
    """What the registry's role assignments say, read once per check.

    ``assignments`` apply at the registry: made at it or inherited from its resource group,
    subscription, management groups or the root scope. A role that cannot be read is kept in
    ``unreadable`` with the reason instead of failing the whole check."""

    assignments: list[RoleAssignment]
    definitions: dict[str, RoleDefinition] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def definition(self, assignment: RoleAssignment) -> RoleDefinition | None:
        return self.definitions.get(assignment.id)


def read_roles(estate: Estate, registry: Registry, principal: str | None = None) -> RegistryRoles:
    """Every assignment that applies at the registry, or only ``principal``'s."""
    if principal is None:
        roles = RegistryRoles(estate.list_role_assignments_for_scope(registry.id))
    else:
        roles = RegistryRoles(estate.list_role_assignments_applying_to(registry.id, principal))
    for assignment in roles.assignments:
        try:
            roles.definitions[assignment.id] = estate.get_role_definition(
                assignment.role_definition_id
            )
        except ReadError as exc:
            roles.unreadable[assignment.id] = exc.reason
    return roles


def pull_grants(estate: Estate, registry: Registry) -> list[tuple[RoleAssignment, RoleDefinition]]:
    """Assignments that apply at the registry whose role can pull (roles that can be read)."""
    roles = read_roles(estate, registry)
    return [
        (a, d)
        for a in roles.assignments
        if (d := roles.definition(a)) is not None and d.grants_pull(abac_mode=registry.abac_mode)
    ]


@dataclass
class PullGrants:
    """The principal's assignments on the registry, sorted by what they mean for one pull."""

    granting: list[tuple[RoleAssignment, RoleDefinition]] = field(default_factory=list)
    # A condition that does not allow the image's repository (ABAC mode).
    limited: list[tuple[RoleAssignment, RoleDefinition]] = field(default_factory=list)
    # A condition that could not be evaluated, with the reason.
    undecided: list[tuple[RoleAssignment, RoleDefinition, str]] = field(default_factory=list)
    # A role that could not be read, with the reason.
    unreadable: list[tuple[RoleAssignment, str]] = field(default_factory=list)

    def evidence(self, registry_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.limited:
            found["limitedByCondition"] = [describe(a, d, registry_id) for a, d in self.limited]
        if self.undecided:
            found["conditionNotEvaluable"] = [
                {**describe(a, d, registry_id), "reason": reason} for a, d, reason in self.undecided
            ]
        if self.unreadable:
            found["unreadableRoles"] = [
                {"id": a.id, "roleDefinitionId": a.role_definition_id, "reason": reason}
                for a, reason in self.unreadable
            ]
        return found


def classify(
    roles: RegistryRoles,
    assignments: list[RoleAssignment],
    registry: Registry,
    repository: str | None,
) -> PullGrants:
    """Which assignments let their holder pull ``repository`` (None: no image known)?

    On an ABAC-mode registry a grant with a condition counts only if the condition allows the
    repository; outside ABAC mode ACR does not evaluate repository conditions."""
    grants = PullGrants()
    for assignment in assignments:
        definition = roles.definition(assignment)
        if definition is None:
            grants.unreadable.append((assignment, roles.unreadable.get(assignment.id, "")))
            continue
        if not definition.grants_pull(abac_mode=registry.abac_mode):
            continue
        if not (registry.abac_mode and assignment.condition):
            grants.granting.append((assignment, definition))
            continue
        verdict = allows_repository(assignment.condition, repository)
        if verdict.allowed:
            grants.granting.append((assignment, definition))
        elif verdict.allowed is False:
            grants.limited.append((assignment, definition))
        else:
            grants.undecided.append((assignment, definition, verdict.reason))
    return grants


def pull_denials(
    estate: Estate, registry: Registry, principal: str
) -> tuple[list[DenyAssignment], str | None]:
    """(deny assignments that take pulling away from ``principal``, why they could not be read)."""
    try:
        denies = estate.list_deny_assignments_for_scope(registry.id)
    except ReadError as exc:
        return [], exc.reason
    return [d for d in denies if d.denies_pull(principal, abac_mode=registry.abac_mode)], None


def pull_identity(target: Target, estate: Estate) -> tuple[str, str]:
    """(object id, kind) of what pulls for the cluster: its kubelet identity or its SP."""
    cluster = target.cluster
    if cluster.kubelet_identity is not None:
        return cluster.kubelet_identity.object_id, "kubelet identity"
    sp = estate.get_service_principal(cluster.service_principal_client_id or "")
    return sp.id, "service principal"


def describe(
    assignment: RoleAssignment, definition: RoleDefinition | None, registry_id: str
) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "role": definition.role_name if definition else None,
        "roleDefinitionId": assignment.role_definition_id,
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
            "Microsoft.Authorization/denyAssignments/read",
        ),
        action_id="attach-acr",
        graph=(GRAPH_READ,),
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        if target.registry_id is None:
            return self.finding(
                Status.UNKNOWN, "No registry was given to check against.", target, {}, fixable=False
            )
        registry = estate.get_registry(target.registry_id)
        principal, kind = pull_identity(target, estate)
        roles = read_roles(estate, registry, principal)
        considered = roles.assignments
        repository = image_repository(target.image) if target.image else None
        grants = classify(roles, considered, registry, repository)
        denied, deny_unreadable = pull_denials(estate, registry, principal)
        evidence: dict[str, Any] = {
            "principalId": principal,
            "identity": kind,
            "registry": registry.id,
            "roleAssignmentMode": registry.role_assignment_mode,
            "requiredRole": "Container Registry Repository Reader"
            if registry.abac_mode
            else "AcrPull",
            "considered": [describe(a, roles.definition(a), registry.id) for a in considered],
            "granting": [describe(a, d, registry.id) for a, d in grants.granting],
            **grants.evidence(registry.id),
        }
        if registry.abac_mode and repository:
            evidence["repository"] = repository
        if denied:
            evidence["denyAssignments"] = [
                {"id": d.id, "name": d.name, "scope": d.scope} for d in denied
            ]
        elif deny_unreadable:
            evidence["denyAssignmentsUnreadable"] = deny_unreadable
        if grants.granting and denied:
            return self.finding(
                Status.FAIL,
                f"The {kind} of {cluster.name} holds {grants.granting[0][1].role_name} on "
                f"{registry.name}, but the deny assignment {denied[0].id} takes pulling away "
                "from it.",
                target,
                evidence,
                fixable=False,  # a role assignment cannot lift a deny assignment
            )
        if grants.granting:
            assignment, definition = grants.granting[0]
            where = (
                "inherited from " + assignment.scope
                if assignment.inherited_by(registry.id)
                else "on the registry"
            )
            allowed = (
                f", whose condition allows repository {repository!r}"
                if assignment.condition and registry.abac_mode
                else ""
            )
            return self.finding(
                Status.PASS,
                f"The {kind} of {cluster.name} can pull from {registry.name}: "
                f"{definition.role_name} {where}{allowed}.",
                target,
                evidence,
            )
        if grants.undecided:
            assignment, _, reason = grants.undecided[0]
            return self.finding(
                Status.UNKNOWN,
                f"Could not tell whether the {kind} of {cluster.name} can pull "
                f"{repository or 'images'} from {registry.name}: {reason}; condition: "
                f"{assignment.condition}",
                target,
                evidence,
                fixable=False,
            )
        if grants.unreadable:
            _, why = grants.unreadable[0]
            return self.finding(
                Status.UNKNOWN,
                f"Could not tell whether the {kind} of {cluster.name} can pull from "
                f"{registry.name}: {why}.",
                target,
                evidence,
                fixable=False,
            )
        if grants.limited:
            assignment, definition = grants.limited[0]
            summary = (
                f"The {definition.role_name} assignment of the {kind} of {cluster.name} on "
                f"{registry.name} has a condition that does not allow repository {repository!r}: "
                f"{assignment.condition}"
            )
        elif registry.abac_mode and considered:
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
