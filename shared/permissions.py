"""What the app's identity may do in each REMEDIATION_MODE, derived from what the code declares.

Checks declare their reads (``CheckMeta.reads``, ``CheckMeta.graph``), remediations what they
need (``Remediation.permissions``, ``Remediation.graph``), and the pull-failure sweep its reads
(:data:`SWEEP_READS`). From those, :func:`needs` gives per mode every permission and who needs
it, and :data:`ROLES` says which role carries each one at which scope. ``infra/`` grants exactly
that (tests/infra/test_permissions.py), and ``python -m scripts.permissions`` writes
``infra/PERMISSIONS.md`` from it.

Dry-run holds no credential-listing action: ``listClusterUserCredential`` is cluster-admin on
clusters with local accounts, and ``registries/listCredentials`` returns admin passwords that can
push. Without the user kubeconfig no Kubernetes API is reachable either, so the Kubernetes data
reads go too; the checks that need any of these are UNKNOWN in dry-run, saying so
(:func:`withheld`), and the adapters never call them (shared/azure/kubernetes.py, registries.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.ports.kubernetes import PULL_EVENT_READS, USER_CREDENTIAL

MODES = ("dry-run", "enforce")
REGISTRY_CREDENTIALS = "Microsoft.ContainerRegistry/registries/listCredentials/action"
CREDENTIAL_LISTING = (USER_CREDENTIAL, REGISTRY_CREDENTIALS)
# AKS Run Command (shared/azure/run_command.py): the Kubernetes transport of private clusters and
# the node pull probe. kubectl in the command pod runs as cluster admin on clusters with local
# accounts, so it is withheld in dry-run like the kubeconfig, and granted only with the Bicep
# parameter enableRunCommand.
RUN_COMMAND = (
    "Microsoft.ContainerService/managedClusters/runCommand/action",
    "Microsoft.ContainerService/managedClusters/commandResults/read",
)
TRANSPORT_NEEDS: Mapping[str, tuple[str, ...]] = {"kubernetes transport (Run Command)": RUN_COMMAND}
GRAPH_READ = "Application.Read.All"
GRAPH_WRITE_OWNED = "Application.ReadWrite.OwnedBy"

# The pull-failure sweep (shared/sweeps.py) lists every cluster's pods that cannot pull.
SWEEP_READS: Mapping[str, tuple[str, ...]] = {
    "pull-failure sweep": (USER_CREDENTIAL, PULL_EVENT_READS[0]),
}

# Data actions: Kubernetes objects behind AKS (Azure RBAC for Kubernetes: lower-case group and
# resource paths under managedClusters) and ACR repositories (ABAC repository permissions).
_KUBERNETES_DATA = re.compile(r"^Microsoft\.ContainerService/managedClusters/[a-z0-9.-]+/", re.I)
_AKS_CONTROL_CHILDREN = re.compile(
    r"^Microsoft\.ContainerService/managedClusters/([A-Za-z]*[A-Z][A-Za-z]*|detectors|"
    r"extensionaddons|eventGridFilters)/"
)
_ACR_DATA = re.compile(r"^Microsoft\.ContainerRegistry/registries/repositories/", re.I)


def is_kubernetes_data(operation: str) -> bool:
    return bool(_KUBERNETES_DATA.match(operation)) and not _AKS_CONTROL_CHILDREN.match(operation)


def is_data_action(operation: str) -> bool:
    return bool(_ACR_DATA.match(operation)) or is_kubernetes_data(operation)


def withheld(mode: str, permission: str) -> str | None:
    """Why ``mode`` does not grant ``permission``, or None when it may be granted."""
    if mode == "enforce":
        return None
    if permission.casefold() == RUN_COMMAND[0].casefold():  # commandResults/read is */read
        return (
            f"REMEDIATION_MODE={mode} runs no command in clusters (AKS Run Command runs kubectl "
            "as cluster admin on clusters with local accounts): infra/PERMISSIONS.md; "
            "CREDENTIAL_READS=on where the identity holds it"
        )
    if permission.casefold() in {p.casefold() for p in CREDENTIAL_LISTING}:
        return (
            f"REMEDIATION_MODE={mode} grants no credential-listing action ({permission.split('/')[-2]}"
            "): infra/PERMISSIONS.md; CREDENTIAL_READS=on where the identity holds it"
        )
    if is_kubernetes_data(permission):
        return (
            f"REMEDIATION_MODE={mode} reads no Kubernetes API: it needs the cluster user "
            "kubeconfig (listClusterUserCredential), a credential dry-run does not hold "
            "(infra/PERMISSIONS.md)"
        )
    return None


@dataclass(frozen=True)
class Role:
    """A role the identity holds: built-in (by GUID) or one of custom-roles.bicep's (by key)."""

    key: str
    name: str
    scope: str
    modes: tuple[str, ...]
    built_in: str | None = None
    graph: bool = False
    note: str = ""
    # Where infra/ assigns it: "subscription" (scope-roles.bicep), "cluster" (cluster-roles.bicep,
    # on the cluster resource), "node resource group" (node-group-roles.bicep), or "graph".
    at: str = "subscription"


ROLES = (
    Role(
        "reader",
        "Reader",
        "each scope subscription",
        MODES,
        built_in="acdd72a7-3385-48ef-bd42-f606fba81ae7",
        note="`*/read`: every control-plane read",
    ),
    Role(
        "repositoryReader",
        "Container Registry Repository Reader",
        "each scope subscription",
        MODES,
        built_in="b93aa761-3e63-49ed-ac28-beffa264f7ac",
        note="manifests and tags of registries in ABAC repository-permissions mode",
    ),
    Role(
        "kubernetesReader",
        "ACR Pull Remediator Kubernetes reader",
        "each scope subscription",
        ("enforce",),
    ),
    Role(
        "clusterOperator",
        "ACR Pull Remediator cluster operator",
        "each `enforceClusters` cluster, on the cluster resource itself",
        ("enforce",),
        at="cluster",
    ),
    Role(
        "identityAssigner",
        "ACR Pull Remediator identity assigner",
        "each `enforceClusters` cluster's node resource group (its kubelet identity) and the entry's optional `identityResourceGroup`",
        ("enforce",),
        at="node resource group",
    ),
    Role(
        "networkOperator",
        "ACR Pull Remediator network operator",
        "each scope subscription",
        ("enforce",),
    ),
    Role(
        "pullRoleAssigner",
        "ACR Pull Remediator pull role assigner",
        "each scope subscription, with an ABAC condition: AcrPull and Repository Reader for service principals only",
        ("enforce",),
    ),
    Role(
        "commandRunner",
        "ACR Pull Remediator command runner",
        "each scope subscription, only with the Bicep parameter enableRunCommand",
        ("enforce",),
        note="AKS Run Command: private clusters' Kubernetes reads and the node pull probe",
    ),
    Role(GRAPH_READ, GRAPH_READ, "Microsoft Graph", MODES, graph=True, at="graph"),
    Role(
        GRAPH_WRITE_OWNED,
        GRAPH_WRITE_OWNED,
        "Microsoft Graph, applications the identity owns",
        ("enforce",),
        graph=True,
        at="graph",
    ),
)
ROLE_BY_KEY = {role.key: role for role in ROLES}

# Which custom role carries each action that is not a plain read (a new one must be placed here).
_PLACED = {
    USER_CREDENTIAL: "kubernetesReader",
    REGISTRY_CREDENTIALS: "kubernetesReader",
    "Microsoft.ContainerService/managedClusters/write": "clusterOperator",
    "Microsoft.ContainerService/managedClusters/resetServicePrincipalProfile/action": "clusterOperator",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action": "identityAssigner",
    # replace-kubelet-identity creates the new kubelet identity in the node resource group.
    "Microsoft.ManagedIdentity/userAssignedIdentities/write": "identityAssigner",
    "Microsoft.ContainerRegistry/registries/write": "networkOperator",
    # refresh-pull-secret: a new token password (the registry, at subscription scope).
    "Microsoft.ContainerRegistry/registries/generateCredentials/action": "networkOperator",
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks/write": "networkOperator",
    "Microsoft.Network/virtualNetworks/join/action": "networkOperator",
    "Microsoft.Authorization/roleAssignments/write": "pullRoleAssigner",
    **dict.fromkeys(RUN_COMMAND, "commandRunner"),
}


class Unplaced(ValueError):
    """A declared permission no role carries: say where it goes in shared/permissions.py."""


def role_of(permission: str) -> Role:
    """The role that carries ``permission``."""
    if permission in (GRAPH_READ, GRAPH_WRITE_OWNED):
        return ROLE_BY_KEY[permission]
    placed = {k.casefold(): v for k, v in _PLACED.items()}.get(permission.casefold())
    if placed:
        return ROLE_BY_KEY[placed]
    if _ACR_DATA.match(permission):
        return ROLE_BY_KEY["repositoryReader"]
    if is_kubernetes_data(permission):
        return ROLE_BY_KEY[
            "kubernetesReader" if permission.endswith("/read") else "clusterOperator"
        ]
    if permission.endswith("/read"):
        return ROLE_BY_KEY["reader"]
    raise Unplaced(
        f"{permission}: add it to shared.permissions._PLACED with the role that carries it"
    )


def declarations() -> dict[str, dict[str, tuple[str, ...]]]:
    """Who declares what: {"check": {id: permissions}, "remediation": {...}, "sweep": {...}}."""
    from shared.checks import CHECKS
    from shared.remediations import REMEDIATIONS

    return {
        "check": {c.meta.id: (*c.meta.reads, *c.meta.graph) for c in CHECKS.values()},
        "remediation": {r.id: (*r.permissions, *r.graph) for r in REMEDIATIONS.values()},
        "sweep": dict(SWEEP_READS),
        "transport": dict(TRANSPORT_NEEDS),
    }


def needs(mode: str) -> dict[str, tuple[str, ...]]:
    """Every permission ``mode`` grants -> who needs it (check, remediation and sweep ids)."""
    found: dict[str, set[str]] = {}
    kinds = (
        ("check", "sweep") if mode != "enforce" else ("check", "sweep", "remediation", "transport")
    )
    for kind, declared in declarations().items():
        if kind not in kinds:
            continue
        for who, permissions in declared.items():
            for permission in permissions:
                if withheld(mode, permission) is None:
                    found.setdefault(permission, set()).add(who)
    return {p: tuple(sorted(found[p])) for p in sorted(found)}


def unknown_in(mode: str) -> dict[str, str]:
    """Checks that are UNKNOWN in ``mode`` -> the reason (the first permission it withholds)."""
    result = {}
    for who, permissions in declarations()["check"].items():
        for permission in permissions:
            reason = withheld(mode, permission)
            if reason:
                result[who] = reason
                break
    return result


def by_role(mode: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """role key -> {permission -> who needs it}, for the roles ``mode`` assigns."""
    layout: dict[str, dict[str, tuple[str, ...]]] = {}
    for permission, who in needs(mode).items():
        role = role_of(permission)
        if mode not in role.modes:
            raise Unplaced(f"{permission} is needed in {mode} but {role.key} is not assigned then")
        layout.setdefault(role.key, {})[permission] = who
    return layout


def custom_actions(mode: str) -> dict[str, tuple[str, ...]]:
    """What each custom role must list for ``mode`` (what infra/ custom-roles.bicep grants)."""
    return {
        key: tuple(sorted(permissions))
        for key, permissions in by_role(mode).items()
        if ROLE_BY_KEY[key].built_in is None and not ROLE_BY_KEY[key].graph
    }
