"""Cause 5: a Linux image scheduled on Windows nodes, or the reverse.

Decided from the image's OS list, the node pools' ``osType`` and the workloads running the image:
FAIL when no pool runs an OS the image has (nothing can run it; not fixable by a selector). When
the cluster mixes OSes and the image has only some, AKS does not taint Windows nodes, so a pod
without a ``kubernetes.io/os`` (or agent pool) selector can land on a node it cannot run on:
PASS when every workload running the image selects a fitting OS or pool, FAIL with
``needsNodeSelector: true`` naming those that do not (or when the workloads cannot be read).
"""

from __future__ import annotations

from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.checks.image_not_found import locate, names
from shared.errors import ReadError
from shared.ports import Estate
from shared.ports.kubernetes import OS_LABEL, Workload, image_registry_host, image_repository
from shared.ports.registry_data import IMAGE_READS

POOL_LABELS = ("agentpool", "kubernetes.azure.com/agentpool")


class OsMismatch(Check):
    meta = CheckMeta(
        id="os-mismatch",
        family="5",
        title="The image's OS matches the node pools it can be scheduled on",
        guide_section="Cause 5: Linux image on Windows nodes or Windows image on Linux nodes",
        severity="medium",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            *IMAGE_READS,
        ),
        action_id="set-os-node-selector",
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        ref, registry = locate(target, estate)
        info = estate.get_manifest_platforms(registry.login_server, ref.repository, ref.reference)
        cluster = target.cluster
        image_os = sorted(info.operating_systems)
        pool_os = {p.name: p.os_type.lower() for p in cluster.node_pools}
        others = sorted({p for p, os in pool_os.items() if os not in info.operating_systems})
        evidence: dict[str, Any] = {
            "image": str(ref),
            "digest": info.digest,
            "imageOs": image_os,
            "poolOs": pool_os,
            "poolsWithoutImage": others,
            "needsNodeSelector": False,
        }
        if not image_os:
            return self.finding(
                Status.UNKNOWN,
                f"{ref} names no platform (is it an artifact, not an image?).",
                target,
                evidence,
                fixable=False,
            )
        if not others:
            return self.finding(
                Status.PASS,
                f"{ref} has a {'/'.join(image_os)} image and every node pool of {cluster.name} "
                "runs that OS.",
                target,
                evidence,
            )
        if len(others) == len(pool_os):
            return self.finding(
                Status.FAIL,
                f"{ref} only has {'/'.join(image_os)} images, but every node pool of "
                f"{cluster.name} runs {'/'.join(sorted(set(pool_os.values())))}: no node can run it.",
                target,
                evidence,
                fixable=False,
            )
        selector = {"kubernetes.io/os": image_os[0]} if len(image_os) == 1 else {}
        try:
            running = [
                w
                for w in estate.list_workloads(cluster)
                if any(
                    image_registry_host(i) == registry.login_server.lower()
                    and image_repository(i) == ref.repository
                    for i in w.images
                )
            ]
        except ReadError as exc:
            running, evidence["workloadsUnreadable"] = [], exc.reason
        unpinned = [w.ref for w in running if not _fits(w, set(image_os), pool_os)]
        evidence.update(workloads=[w.ref for w in running], workloadsWithoutSelector=unpinned)
        if running and not unpinned:
            return self.finding(
                Status.PASS,
                f"{cluster.name} mixes {'/'.join(sorted(set(pool_os.values())))} node pools, and "
                f"every workload running {ref} selects a node that can run it.",
                target,
                evidence,
            )
        return self.finding(
            Status.FAIL,
            f"{ref} only has {'/'.join(image_os)} images and {cluster.name} also has "
            f"{'/'.join(sorted({pool_os[p] for p in others}))} node pools ({', '.join(others)}): "
            "without a kubernetes.io/os nodeSelector its pods can land there and fail to pull.",
            target,
            {**evidence, "needsNodeSelector": True, "suggestedNodeSelector": selector},
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        acr, repository, image = names(target)
        cluster = target.cluster
        return (
            f"docker manifest inspect {image}",
            f"az acr manifest list-metadata -r {acr} -n {repository} -o table",
            f"az aks nodepool list -g {cluster.resource.resource_group} --cluster-name {cluster.name} "
            '--query "[].{name:name, osType:osType, osSku:osSku}" -o table',
            "kubectl get nodes -L kubernetes.io/arch,kubernetes.io/os",
        )


def _fits(workload: Workload, image_os: set[str], pool_os: dict[str, str]) -> bool:
    """Whether the workload's nodeSelector keeps it on nodes whose OS the image has."""
    selector = workload.node_selector
    if selector.get(OS_LABEL, "").lower() in image_os:
        return True
    pools = {selector[label] for label in POOL_LABELS if label in selector}
    return bool(pools) and all(pool_os.get(pool) in image_os for pool in pools)
