"""set-os-node-selector: keep an image's pods on nodes of the OS it is built for (cause 5).

AKS does not taint Windows nodes, so on a cluster with Linux and Windows pools a pod without a
``kubernetes.io/os`` nodeSelector can land on a node whose OS the image does not have. For every
Deployment, StatefulSet and DaemonSet running the finding's image this sets
``nodeSelector: {kubernetes.io/os: <os>}`` in the pod template (a strategic merge patch: its other
selector labels stay), where ``<os>`` is the one OS both the image (the finding's ``imageOs``,
re-read from the registry when missing) and the cluster's node pools have. It refuses when they
share none (no selector helps: the image must be rebuilt or a pool added), and leaves workloads
pinned to a pool of another OS to a person. Workloads already selecting the OS are not patched.

``off`` by default in the policy: it changes how workloads schedule.
"""

from __future__ import annotations

import logging

from shared.checks.base import Finding, Target
from shared.checks.image_not_found import locate
from shared.errors import ReadError, WriteRejected
from shared.images import InvalidImageReference, parse_image
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.kubernetes import (
    OS_LABEL,
    PATCHABLE_KINDS,
    USER_CREDENTIAL,
    WORKLOAD_READS,
    WORKLOAD_WRITES,
    Workload,
    kubectl_patch_command,
    node_selector_patch,
)
from shared.remediations.base import ActionRecord, Plan, Remediation

log = logging.getLogger(__name__)

POOL_LABELS = ("kubernetes.azure.com/agentpool", "agentpool")


def _normalized(image: str) -> str:
    try:
        return str(parse_image(image))
    except InvalidImageReference:
        return image


def runs_image(workload: Workload, image: str) -> bool:
    wanted = _normalized(image)
    return any(_normalized(candidate) == wanted for candidate in workload.images)


def _pool_conflict(workload: Workload, cluster: Cluster, os: str) -> str | None:
    """The pool a workload is pinned to by its nodeSelector, if that pool runs another OS."""
    pools = {p.name: p.os_type.lower() for p in cluster.node_pools}
    for label in POOL_LABELS:
        pool = workload.node_selector.get(label)
        if pool is not None and pools.get(pool, os) != os:
            return pool
    return None


class SetOsNodeSelector(Remediation):
    id = "set-os-node-selector"
    permissions = (
        USER_CREDENTIAL,
        *WORKLOAD_READS,
        *WORKLOAD_WRITES,
        # Only to re-read the image's platforms when the finding does not carry them.
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/pull/read",
    )

    def plan(self, finding: Finding, target: Target) -> Plan:
        cluster = target.cluster
        image = target.image or str(finding.evidence.get("image") or "<image>")
        usable = _usable(finding, cluster)
        os = usable[0] if len(usable) == 1 else "<linux|windows>"
        patch = node_selector_patch({OS_LABEL: os})
        commands = (
            f"az aks get-credentials -g {cluster.resource.resource_group} -n {cluster.name}",
            f"kubectl get deployments,statefulsets,daemonsets -A -o wide | grep -F '{image}'",
            kubectl_patch_command("deployment", "<name>", "<namespace>", patch),
            "kubectl rollout status deployment/<name> -n <namespace>",
        )
        summary = (
            f"Set nodeSelector {OS_LABEL}: {os} in the pod template of every Deployment, "
            f"StatefulSet and DaemonSet of {cluster.name} that runs {image}, so its pods only "
            f"land on {os} nodes."
        )
        warnings = [
            "Patching the pod template rolls out new pods (a rolling restart of each workload).",
            "If the workload is deployed by Helm, Flux or Argo CD, add the nodeSelector to its "
            "manifest too, or the next sync removes it.",
        ]
        if not usable:
            warnings.append(
                f"No node pool of {cluster.name} runs an OS {image} has: a nodeSelector cannot "
                "help, so this action refuses; rebuild the image or add a node pool."
            )
        return Plan(self.id, summary, commands, tuple(warnings))

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        cluster = target.cluster
        image = target.image or str(finding.evidence.get("image") or "")
        if not image:
            return ActionRecord(self.id, "failed", "the finding names no image")
        try:
            image_os = _image_os(finding, Target(cluster, target.registry_id, image), estate)
            usable = sorted(image_os & {p.os_type.lower() for p in cluster.node_pools})
            if not usable:
                return ActionRecord(
                    self.id,
                    "failed",
                    f"{image} has only {'/'.join(sorted(image_os)) or 'no'} images and no node "
                    f"pool of {cluster.name} runs that OS: a nodeSelector cannot help",
                )
            if len(usable) > 1:
                return ActionRecord(
                    self.id,
                    "applied",
                    f"{image} has images for every OS of {cluster.name}: no selector needed",
                )
            workloads = [w for w in estate.list_workloads(cluster) if runs_image(w, image)]
        except ReadError as exc:
            return ActionRecord(self.id, "failed", f"nothing changed: {exc.reason}")
        os = usable[0]
        if not workloads:
            return ActionRecord(
                self.id, "failed", f"no workload in {cluster.name} runs {image}: nothing to select"
            )
        return self._select(cluster, workloads, os, estate)

    def _select(
        self, cluster: Cluster, workloads: list[Workload], os: str, estate: Estate
    ) -> ActionRecord:
        patched: list[str] = []
        done: list[str] = []
        problems: list[str] = []
        for workload in workloads:
            ref = workload.ref
            pool = _pool_conflict(workload, cluster, os)
            if workload.node_selector.get(OS_LABEL) == os and pool is None:
                done.append(ref)
            elif pool is not None:
                problems.append(f"{ref} is pinned to node pool {pool}, which does not run {os}")
            elif workload.kind not in PATCHABLE_KINDS:
                problems.append(f"{ref} is a {workload.kind}: set the nodeSelector in its manifest")
            else:
                try:
                    estate.set_node_selector(cluster, workload, {OS_LABEL: os})
                except (ReadError, WriteRejected) as exc:
                    problems.append(f"could not patch {ref}: {exc}")
                    continue
                log.info("set-os-node-selector: %s now selects %s nodes", ref, os)
                patched.append(ref)
        problems += _verify(estate, cluster, patched, os)
        parts = [f"set {OS_LABEL}={os} on {', '.join(patched)}"] if patched else []
        if done:
            parts.append(f"already selecting {os}: {', '.join(done)}")
        parts += problems
        return ActionRecord(self.id, "failed" if problems else "applied", "; ".join(parts))


def _usable(finding: Finding, cluster: Cluster) -> list[str]:
    image_os = {str(o).lower() for o in finding.evidence.get("imageOs") or ()}
    return sorted(image_os & {p.os_type.lower() for p in cluster.node_pools})


def _image_os(finding: Finding, target: Target, estate: Estate) -> set[str]:
    """The image's OSes from the finding, else from its manifest in the registry."""
    listed = finding.evidence.get("imageOs")
    if listed:
        return {str(o).lower() for o in listed}
    ref, registry = locate(target, estate)
    info = estate.get_manifest_platforms(registry.login_server, ref.repository, ref.reference)
    return {o.lower() for o in info.operating_systems}


def _verify(estate: Estate, cluster: Cluster, patched: list[str], os: str) -> list[str]:
    """Read the patched workloads back: each must now select ``os``."""
    if not patched:
        return []
    try:
        workloads = {w.ref: w for w in estate.list_workloads(cluster)}
    except ReadError as exc:
        return [f"could not read the workloads back to verify: {exc.reason}"]
    return [
        f"{ref} does not select {os} after the patch"
        for ref in patched
        if ref in workloads and workloads[ref].node_selector.get(OS_LABEL) != os
    ]
