"""replace-kubelet-identity: a deleted kubelet identity's way out, as the guide's commands do it.

A reconcile cannot bring a deleted identity back. What works (``az aks update
--assign-kubelet-identity``): a new user-assigned identity, Managed Identity Operator on it for the
cluster's control-plane identity (AKS refuses the identity otherwise, 400
``CustomKubeletIdentityMissingPermissionError``), the pull role on the registry for it, then the
cluster update; AKS puts the new identity on every node pool when the operation completes. Only
for clusters whose control plane identity is user-assigned (AKS refuses a system-assigned one,
``CustomKubeletIdentityOnlySupportedOnUserAssignedMSICluster``; switching it is a bigger change,
left to a person). ``off`` by default in the policy: it replaces an identity other grants may
have named.

Idempotent: the identity's name is ``<cluster>-kubelet`` in the cluster's node resource group,
beside the identity AKS made (an existing one is reused; the app may create and assign identities
only there, infra/modules/custom-roles.bicep; a node resource group locked down by AKS refuses it,
and the action fails with the reason), the role assignments have deterministic names, and a run after the
cluster already uses the new identity changes nothing. The pull role is granted before the
cluster update, so an update that outlives the timeout (verified by a later run) leaves nothing
to do afterwards.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from shared.checks.base import Finding, Target
from shared.checks.kubelet_identity_detached import replacement_commands
from shared.errors import ReadError, Replicating, WriteRejected
from shared.models import KubeletIdentity
from shared.ports import Estate
from shared.ports.identities import UserIdentity
from shared.ports.rbac import ACR_PULL_ROLE_ID, REPOSITORY_READER_ROLE_ID
from shared.remediations.attach_acr import AttachAcr
from shared.remediations.base import ActionRecord, Plan, Remediation

log = logging.getLogger(__name__)

ACTION_ID = "replace-kubelet-identity"
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"
PULL_ROLES = (ACR_PULL_ROLE_ID, REPOSITORY_READER_ROLE_ID)


def new_identity_id(target: Target) -> str:
    cluster = target.cluster
    return (
        f"{cluster.node_resource_group_id}/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{cluster.name}-kubelet"
    )


class ReplaceKubeletIdentity(Remediation):
    id = ACTION_ID
    permissions = (
        "Microsoft.ContainerService/managedClusters/read",
        "Microsoft.ContainerService/managedClusters/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        # ARM checks it for the identity named in the cluster PUT.
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        # Managed Identity Operator on the new identity, and the pull role on the registry.
        "Microsoft.Authorization/roleAssignments/write",
        # The deleted identity's pull-role assignments name the registries it pulled from.
        "Microsoft.Authorization/roleAssignments/read",
        "Microsoft.ContainerRegistry/registries/read",
    )

    def __init__(self, *, attach: AttachAcr | None = None) -> None:
        self.attach = attach or AttachAcr()

    def plan(self, finding: Finding, target: Target) -> Plan:
        cluster = target.cluster
        registry = (target.registry_id or "<registry>").rsplit("/", 1)[-1]
        return Plan(
            self.id,
            f"Give {cluster.name} a new kubelet identity ({cluster.name}-kubelet in its node "
            f"resource group {cluster.node_resource_group}): Managed Identity Operator on it for the "
            f"control-plane identity, the pull role on {registry}, then az aks update "
            "--assign-kubelet-identity; AKS puts it on every node pool.",
            replacement_commands(target),
            (
                "Grants other than the pull role that named the deleted identity (Key Vault, "
                "storage, ...) are not recreated: grant them to the new identity by hand.",
                "AKS updates every node pool to the new identity; the cluster shows "
                "provisioningState Updating for some minutes.",
            ),
        )

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        cluster = target.cluster
        if cluster.control_plane_identity_type != "UserAssigned" or not (
            cluster.control_plane_identity_id
        ):
            return ActionRecord(
                self.id,
                "failed",
                f"{cluster.name}'s control plane identity is "
                f"{cluster.control_plane_identity_type or 'a service principal'}, not "
                "user-assigned: AKS takes a new kubelet identity only then (see the commands)",
            )
        if cluster.kubelet_identity and estate.identity_exists(
            cluster.kubelet_identity.resource_id
        ):
            return ActionRecord(
                self.id,
                "applied",
                f"{cluster.name}'s kubelet identity {cluster.kubelet_identity.resource_id} exists",
            )
        try:
            control_plane = estate.get_user_assigned_identity(cluster.control_plane_identity_id)
            identity = estate.create_user_assigned_identity(
                new_identity_id(target),
                location=cluster.location,
                tags={"acr-pull-remediator": f"kubelet identity of {cluster.name}"},
            )
            self._grant_operator(estate, identity, control_plane)
            pull = self._grant_pull(finding, target, estate, identity, timeout)
            result = estate.assign_kubelet_identity(cluster.id, identity, timeout=timeout)
        except Replicating:
            raise  # a deferral: the next delivery finds the identity and goes on
        except (ReadError, WriteRejected) as exc:
            return ActionRecord(self.id, "failed", f"could not replace the kubelet identity: {exc}")
        done = f"gave {cluster.name} the kubelet identity {identity.id}; {pull}"
        log.info("replace-kubelet-identity: %s (%s)", done, result.status)
        if result.succeeded:
            return ActionRecord(self.id, "applied", done)
        if result.status == "InProgress":
            return ActionRecord(self.id, "in-progress", f"{done}; the update is still running")
        return ActionRecord(
            self.id, "failed", f"{done}; the cluster update ended {result.status}: {result.detail}"
        )

    def _grant_operator(
        self, estate: Estate, identity: UserIdentity, control_plane: UserIdentity
    ) -> None:
        key = f"{identity.id.lower()}/{MANAGED_IDENTITY_OPERATOR}/{control_plane.principal_id}"
        subscription_id = identity.id.strip("/").split("/")[1]
        estate.create_role_assignment(
            identity.id,
            str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
            role_definition_id=(
                f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{MANAGED_IDENTITY_OPERATOR}"
            ),
            principal_id=control_plane.principal_id,
            description="acr-pull-remediator replace-kubelet-identity: the control plane "
            "assigns this kubelet identity",
        )

    def _grant_pull(
        self,
        finding: Finding,
        target: Target,
        estate: Estate,
        identity: UserIdentity,
        timeout: float,
    ) -> str:
        """The pull role for the new identity, as attach-acr grants it (ABAC registries too), on
        the registry diagnosed or else on each registry the deleted identity could pull from
        (its role assignments outlive it: ARM keeps them, naming the old object id)."""
        registries = self._registries(target, estate)
        if not registries:
            return "no registry it pulled from is known: grant the pull role by hand"
        kubelet = KubeletIdentity(identity.id, identity.client_id, identity.principal_id)
        cluster = replace(target.cluster, kubelet_identity=kubelet)
        done = []
        for registry_id in registries:
            new_target = replace(target, cluster=cluster, registry_id=registry_id)
            record = self.attach.apply(finding, new_target, estate, timeout=timeout)
            if record.status != "applied":
                raise WriteRejected(f"the pull role was not granted: {record.detail}")
            done.append(record.detail)
        return "; ".join(done)

    def _registries(self, target: Target, estate: Estate) -> list[str]:
        if target.registry_id:
            return [target.registry_id]
        old = target.cluster.kubelet_identity
        if old is None:
            return []
        held = estate.list_role_assignments_for_principal(
            target.cluster.resource.subscription_id, old.object_id
        )
        return sorted(
            {
                a.scope
                for a in held
                if a.role_definition_name in PULL_ROLES
                and a.scope.lower().rstrip("/").rsplit("/", 2)[-2] == "registries"
            }
        )
