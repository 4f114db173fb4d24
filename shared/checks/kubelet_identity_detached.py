"""Cause 1a, solution 4: the kubelet identity is missing from a node pool scale set or node VM.

Pools of type VirtualMachineScaleSets carry the identity on their scale set; pools of type
VirtualMachines (and node auto-provisioning) have no scale set and carry it on each node VM."""

from __future__ import annotations

from dataclasses import replace

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.ports import Estate


class KubeletIdentityDetached(Check):
    meta = CheckMeta(
        id="kubelet-identity-detached",
        family="1a",
        title="Kubelet identity is attached to every node pool scale set",
        guide_section="Cause 1a, Solution 4: Make sure the kubelet identity is referenced in the AKS VMSS",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.Compute/virtualMachineScaleSets/read",
            "Microsoft.Compute/virtualMachines/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        ),
        action_id="reconcile-cluster",
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        kubelet = cluster.kubelet_identity
        if kubelet is None:
            return self.finding(
                Status.PASS,
                f"{cluster.name} authenticates with a service principal, so no kubelet identity "
                "has to be on its scale sets.",
                target,
                {"servicePrincipal": cluster.service_principal_client_id},
            )
        scale_sets = estate.list_node_pool_scale_sets(cluster)
        vms = estate.list_node_vms(cluster)
        hosts = [*scale_sets, *vms]
        missing = [h.id for h in hosts if not h.has_identity(kubelet.resource_id)]
        evidence = {
            "kubeletIdentity": kubelet.resource_id,
            "scaleSets": [s.id for s in scale_sets],
            "virtualMachines": [v.id for v in vms],
            "missingOn": missing,
        }
        if not missing:
            what = f"{len(scale_sets)} node pool scale sets"
            if vms:
                what += f" and {len(vms)} node VMs"
            return self.finding(
                Status.PASS,
                f"The kubelet identity of {cluster.name} is attached to all {what}.",
                target,
                evidence,
            )
        names = ", ".join(m.rsplit("/", 1)[-1] for m in missing)
        if not estate.identity_exists(kubelet.resource_id):
            # replace-kubelet-identity needs a user-assigned control plane (AKS's rule).
            replaceable = cluster.control_plane_identity_type == "UserAssigned"
            finding = self.finding(
                Status.FAIL,
                f"The kubelet identity of {cluster.name} was deleted, so it is missing from "
                f"{names}; a reconcile cannot bring a deleted identity back. What works: create "
                "a new user-assigned identity, give the cluster's control-plane identity Managed "
                "Identity Operator on it, run az aks update --assign-kubelet-identity with it, "
                "and grant it the pull role on the registry (commands below).",
                target,
                {
                    **evidence,
                    "identityDeleted": True,
                    "controlPlaneIdentity": cluster.control_plane_identity_type or None,
                },
                action_id="replace-kubelet-identity",
                fixable=replaceable,
            )
            return replace(finding, commands=replacement_commands(target))
        return self.finding(
            Status.FAIL,
            f"The kubelet identity of {cluster.name} is missing from {names}, so nodes there "
            "cannot get a token to pull from ACR.",
            target,
            {**evidence, "identityDeleted": False},
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        cluster = target.cluster
        rg = cluster.resource.resource_group
        return (
            f"az aks show -g {rg} -n {cluster.name} --query identityProfile.kubeletidentity",
            f'az vmss list -g {cluster.node_resource_group} --query "[].{{name:name, identity:identity}}"',
            # VirtualMachines pools (and node auto-provisioning) carry the identity per node VM.
            f'az vm list -g {cluster.node_resource_group} --query "[].{{name:name, identity:identity}}"',
            f"az aks update -g {rg} -n {cluster.name}",
        )


def replacement_commands(target: Target) -> tuple[str, ...]:
    """The way out when the kubelet identity itself was deleted (a reconcile cannot help).

    ``--assign-kubelet-identity`` needs a user-assigned control-plane identity, which must be
    able to assign the new kubelet identity (Managed Identity Operator on it); a cluster whose
    control plane is system-assigned gets one in the same update."""
    cluster = target.cluster
    rg = cluster.resource.resource_group
    registry = target.registry_id or "<acr-resource-id>"
    commands = [
        f"KUBELET_ID=$(az identity create -g {rg} -n {cluster.name}-kubelet --query id -o tsv)",
    ]
    if cluster.control_plane_identity_type == "UserAssigned" and cluster.control_plane_identity_id:
        control_plane = cluster.control_plane_identity_id
        update = f"az aks update -g {rg} -n {cluster.name} --assign-kubelet-identity $KUBELET_ID"
    else:
        commands.append(
            f"CONTROL_PLANE_ID=$(az identity create -g {rg} -n {cluster.name}-control-plane "
            "--query id -o tsv)"
        )
        control_plane = "$CONTROL_PLANE_ID"
        update = (
            f"az aks update -g {rg} -n {cluster.name} --assign-identity $CONTROL_PLANE_ID "
            "--assign-kubelet-identity $KUBELET_ID"
        )
    commands += [
        f"az role assignment create --assignee-object-id $(az identity show --ids {control_plane} "
        "--query principalId -o tsv) --assignee-principal-type ServicePrincipal "
        '--role "Managed Identity Operator" --scope $KUBELET_ID',
        update,
        "az role assignment create --assignee-object-id $(az identity show --ids $KUBELET_ID "
        "--query principalId -o tsv) --assignee-principal-type ServicePrincipal "
        f'--role "AcrPull" --scope {registry}',
    ]
    return tuple(commands)
