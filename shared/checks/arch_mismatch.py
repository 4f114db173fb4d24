"""Cause 1b: the image has no manifest for the CPU architecture of some node pool.

A node pool's architecture comes from its VM size (``Standard_D4ps_v5`` is Arm64); only pools
of an OS the image supports are compared (an image with no Windows manifest is os-mismatch).
"""

from __future__ import annotations

from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.checks.image_not_found import locate, names
from shared.ports import Estate
from shared.ports.registry_data import IMAGE_READS
from shared.vm_sizes import vm_size_architecture


class ArchMismatch(Check):
    meta = CheckMeta(
        id="arch-mismatch",
        family="1b",
        title="The image has a manifest for every node pool architecture (amd64/arm64)",
        guide_section="Cause 1b: 401 Unauthorized error due to incompatible architecture",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
            *IMAGE_READS,
        ),
        action_id=None,
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        ref, registry = locate(target, estate)
        info = estate.get_manifest_platforms(registry.login_server, ref.repository, ref.reference)
        cluster = target.cluster
        pools = [p for p in cluster.node_pools if p.os_type.lower() in info.operating_systems]
        evidence: dict[str, Any] = {
            "image": str(ref),
            "digest": info.digest,
            "platformsFound": sorted(str(p) for p in info.platforms),
            "platformsNeeded": sorted(
                {
                    f"{p.os_type.lower()}/{vm_size_architecture(p.vm_size) or 'unknown'}"
                    for p in pools
                }
            ),
        }
        if not pools:
            return self.finding(
                Status.PASS,
                f"No node pool of {cluster.name} runs an OS {ref} has an image for, so the "
                "architecture is not what fails (see os-mismatch).",
                target,
                evidence,
            )
        affected = [
            {"pool": p.name, "vmSize": p.vm_size, "os": p.os_type, "architecture": arch}
            for p in pools
            if (arch := vm_size_architecture(p.vm_size))
            and arch not in info.architectures(p.os_type)
        ]
        evidence["poolsAffected"] = affected
        if not affected:
            return self.finding(
                Status.PASS,
                f"{ref} has an image for the architecture of every node pool of {cluster.name} "
                f"that can run it ({', '.join(evidence['platformsNeeded'])}).",
                target,
                evidence,
            )
        architectures = sorted({a["architecture"] for a in affected})
        pool_names = ", ".join(f"{a['pool']} ({a['vmSize']})" for a in affected)
        return self.finding(
            Status.FAIL,
            f"{ref} has no {'/'.join(architectures)} image, but node pools {pool_names} of "
            f"{cluster.name} run {'/'.join(architectures)}: pods there fail with "
            "'no match for platform in manifest'.",
            target,
            evidence,
            fixable=False,
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        acr, repository, image = names(target)
        cluster = target.cluster
        return (
            f"docker manifest inspect {image}",
            f"az acr manifest list-metadata -r {acr} -n {repository} -o table",
            f"az aks nodepool list -g {cluster.resource.resource_group} --cluster-name {cluster.name} "
            '--query "[].{name:name, vmSize:vmSize, osType:osType}" -o table',
            "kubectl get nodes -L kubernetes.io/arch,kubernetes.io/os",
        )
