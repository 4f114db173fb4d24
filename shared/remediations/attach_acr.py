"""attach-acr: let the cluster's pull identity pull from the registry, as ``az aks update --attach-acr``.

One role assignment at the REGISTRY scope (never its resource group or subscription): AcrPull, or
Container Registry Repository Reader on registries in ABAC repository-permissions mode, which
ignore AcrPull. On those the grant carries an ABAC condition limiting it to the repositories the
cluster runs from the registry (its workloads' images and the image being diagnosed), as least
privilege asks; a later run for another repository rewrites the same assignment with the wider
set. The pull identity is the kubelet identity of a managed-identity cluster, or the
service principal of the cluster's current ``servicePrincipalProfile.clientId`` (looked up in
Graph). That also fixes sp-mismatch; the old service principal's assignment is left alone.

The assignment's name is a uuid5 of (registry id lower-cased, role GUID, principal id lower-cased),
so a retry or a concurrent worker PUTs the same name (a no-op for ARM), and a ``409
RoleAssignmentExists`` (the same grant under another name) counts as success.

ARM answers ``400 PrincipalNotFound`` both for a principal that is gone (a deleted kubelet
identity or service principal) and for one Entra ID has not replicated yet (an identity created
seconds to minutes ago). The pull identity is looked up again to tell which: gone is a failed
action with the reason (ticketed; reconcile cannot bring an identity back), replicating is
retried with backoff within the operation timeout and then deferred to a later delivery.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from shared.checks.base import Finding, Target
from shared.checks.repository_conditions import repositories_condition
from shared.errors import NotFound, PrincipalNotFoundError, ReadError, Replicating, WriteRejected
from shared.models import Cluster
from shared.permissions import GRAPH_READ
from shared.ports import Estate
from shared.ports.kubernetes import image_registry_host, image_repository
from shared.ports.rbac import ACR_PULL_ROLE_ID, REPOSITORY_READER_ROLE_ID, RoleAssignment
from shared.remediations.base import ActionRecord, Plan, Remediation

log = logging.getLogger(__name__)

ROLE_NAMES = {
    ACR_PULL_ROLE_ID: "AcrPull",
    REPOSITORY_READER_ROLE_ID: "Container Registry Repository Reader",
}


def assignment_name(registry_id: str, role_guid: str, principal_id: str) -> str:
    """The role assignment's GUID: the same for every run that grants the same thing."""
    key = "/".join((registry_id.lower().rstrip("/"), role_guid.lower(), principal_id.lower()))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def cluster_repositories(
    estate: Estate, cluster: Cluster, login_server: str, image: str | None
) -> tuple[list[str], str]:
    """(repositories the cluster runs from the registry, a note when the list may be short)."""
    host = login_server.lower()
    found = {image_repository(image)} if image and image_registry_host(image) == host else set()
    try:
        workloads = estate.list_workloads(cluster)
    except ReadError as exc:
        return sorted(found), f"the cluster's workloads could not be read ({exc.reason})"
    found |= {
        image_repository(i) for w in workloads for i in w.images if image_registry_host(i) == host
    }
    return sorted(found), ""


def role_definition_id(registry_id: str, role_guid: str) -> str:
    subscription_id = registry_id.strip("/").split("/")[1]
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{role_guid}"
    )


# Entra ID replication usually completes within a minute or two; past this (or the operation
# timeout, if shorter) the action is deferred rather than holding the function.
REPLICATION_WAIT_SECONDS = 120.0


class AttachAcr(Remediation):
    id = "attach-acr"
    permissions = (
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.Authorization/roleAssignments/write",
    )
    graph = (GRAPH_READ,)
    # Not Azure RBAC: the service principal lookup reads Microsoft Graph (Application.Read.All).

    def __init__(
        self,
        *,
        poll: float = 5.0,
        replication_wait: float = REPLICATION_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poll = poll
        self.replication_wait = replication_wait
        self.sleep = sleep
        self.clock = clock

    def plan(self, finding: Finding, target: Target) -> Plan:
        cluster = target.cluster
        rg = cluster.resource.resource_group
        registry = target.registry_id or "<acr-resource-id>"
        evidence = finding.evidence
        role = str(evidence.get("requiredRole") or "AcrPull")
        sp = cluster.service_principal_client_id
        principal = str(
            evidence.get("servicePrincipalObjectId")
            or evidence.get("principalId")
            or (
                f"$(az ad sp show --id {sp} --query id -o tsv)"
                if sp
                else f"$(az aks show -g {rg} -n {cluster.name} "
                "--query identityProfile.kubeletidentity.objectId -o tsv)"
            )
        )
        who = f"service principal {sp}" if sp else "kubelet identity"
        summary = (
            f"Assign {role} on {registry.rsplit('/', 1)[-1]} to the {who} of {cluster.name} "
            f"(object id {principal}), at the registry scope."
        )
        warnings: tuple[str, ...] = ()
        if sp:
            warnings = (
                "Role assignments of any previous service principal on the registry are left in "
                "place; remove them by hand once nothing uses that principal.",
            )
        repository = evidence.get("repository")
        condition = ""
        if role != "AcrPull":
            warnings += (
                "On this ABAC registry the grant is limited by a condition to the repositories "
                f"{cluster.name} runs from it (read from its workloads when applied).",
            )
            if repository:
                condition = (
                    f' --condition "{repositories_condition([str(repository)])}"'
                    " --condition-version 2.0"
                )
        if role == "AcrPull":
            warnings += (
                "If the registry is in ABAC repository-permissions mode, Container Registry "
                "Repository Reader is assigned instead (AcrPull does not apply there).",
            )
        return Plan(
            action_id=self.id,
            summary=summary,
            commands=(
                f"az aks update -n {cluster.name} -g {rg} --attach-acr {registry}",
                f"az role assignment create --assignee-object-id {principal} "
                f'--assignee-principal-type ServicePrincipal --role "{role}" --scope {registry}'
                f"{condition}",
            ),
            warnings=warnings,
        )

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        cluster = target.cluster
        if target.registry_id is None:
            return ActionRecord(self.id, "failed", "no registry was given to attach")
        try:
            registry = estate.get_registry(target.registry_id)
            if cluster.kubelet_identity is not None:
                principal, who = cluster.kubelet_identity.object_id, "kubelet identity"
            elif cluster.service_principal_client_id:
                sp = estate.get_service_principal(cluster.service_principal_client_id)
                principal, who = sp.id, f"service principal {sp.app_id}"
            else:
                return ActionRecord(
                    self.id, "failed", f"{cluster.name} has neither a kubelet identity nor an SP"
                )
            role = REPOSITORY_READER_ROLE_ID if registry.abac_mode else ACR_PULL_ROLE_ID
            condition, scope_note = None, ""
            if registry.abac_mode:
                repositories, short = cluster_repositories(
                    estate, cluster, registry.login_server, target.image
                )
                if repositories:
                    condition = repositories_condition(repositories)
                    scope_note = f" for repositories {', '.join(repositories)}"
                else:
                    scope_note = " for every repository (no image of the cluster names one)"
                if short:
                    scope_note += f"; {short}"
            name = assignment_name(registry.id, role, principal)
            created = self._create(
                estate,
                target,
                who,
                timeout,
                scope=registry.id,
                name=name,
                role_definition_id=role_definition_id(registry.id, role),
                principal_id=principal,
                description=f"acr-pull-remediator attach-acr: {cluster.name} pulls from "
                f"{registry.name}",
                condition=condition,
            )
        except (ReadError, WriteRejected) as exc:
            return ActionRecord(self.id, "failed", f"could not assign the pull role: {exc}")
        grant = f"{ROLE_NAMES[role]} on {registry.name}{scope_note} for the {who} of {cluster.name}"
        if created is None and finding.evidence.get("limitedByCondition"):
            # The same role is held under another name with a condition that leaves the image's
            # repository out; widening someone else's condition is a person's decision.
            held = finding.evidence["limitedByCondition"][0]["id"]
            return ActionRecord(
                self.id,
                "failed",
                f"{ROLE_NAMES[role]} on {registry.name} is already assigned ({held}) with a "
                "condition that leaves the repository out; widen that condition",
            )
        if created is None:
            log.info("attach-acr: %s already existed under another name", grant)
            return ActionRecord(self.id, "applied", f"{grant} already existed")
        log.info("attach-acr: assigned %s (%s)", grant, created.id)
        return ActionRecord(self.id, "applied", f"assigned {grant} ({created.name})")

    def _create(
        self,
        estate: Estate,
        target: Target,
        who: str,
        timeout: float,
        *,
        scope: str,
        name: str,
        role_definition_id: str,
        principal_id: str,
        description: str,
        condition: str | None,
    ) -> RoleAssignment | None:
        """PUT the assignment; wait out Entra ID's replication of a principal that exists."""
        deadline = self.clock() + max(0.0, min(timeout, self.replication_wait))
        delay = self.poll
        while True:
            try:
                return estate.create_role_assignment(
                    scope,
                    name,
                    role_definition_id=role_definition_id,
                    principal_id=principal_id,
                    principal_type="ServicePrincipal",
                    description=description,
                    condition=condition,
                )
            except PrincipalNotFoundError as exc:
                gone = _principal_gone(target, estate, principal_id, who)
                if gone is not None:
                    raise WriteRejected(gone, resource_id=scope, code=exc.code) from None
                if self.clock() + delay > deadline:
                    raise Replicating(
                        f"the {who} of {target.cluster.name} ({principal_id}) exists but ARM does "
                        "not know it yet (Entra ID replication); retried on a later delivery",
                        resource_id=scope,
                        code=exc.code,
                    ) from None
                log.info(
                    "attach-acr: %s %s not replicated yet; retrying in %.1fs",
                    who,
                    principal_id,
                    delay,
                )
                self.sleep(delay)
                delay = min(delay * 2, 30.0)


def _principal_gone(target: Target, estate: Estate, principal: str, who: str) -> str | None:
    """Why the pull identity no longer exists, or None when it does (so it is replicating)."""
    cluster = target.cluster
    kubelet = cluster.kubelet_identity
    if kubelet is not None:
        if estate.identity_exists(kubelet.resource_id):
            return None
        return (
            f"the kubelet identity {kubelet.resource_id} of {cluster.name} was deleted: ARM "
            f"answers PrincipalNotFound for its object id {principal}, and a reconcile cannot "
            "bring it back; give the cluster a kubelet identity again "
            "(az aks update --assign-kubelet-identity <identity id>)"
        )
    try:
        estate.get_service_principal_by_id(principal)
    except NotFound:
        return (
            f"the {who} of {cluster.name} ({principal}) does not exist in the directory: ARM "
            "answers PrincipalNotFound; reset the cluster's service principal "
            "(az aks update-credentials --reset-service-principal)"
        )
    return None
