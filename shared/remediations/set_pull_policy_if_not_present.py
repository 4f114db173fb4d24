"""set-pull-policy-if-not-present: stop pulling images on every pod start (cause 6, pull QPS).

For the workloads the pull-qps-exceeded finding names, the containers that pull one of the
rejected images with ``imagePullPolicy: Always`` get ``IfNotPresent``: a node that already has
the image starts the pod without a registry request, which keeps kubelets under
``registryPullQPS``. Only those containers change (a strategic merge patch by container name);
the rest of the pod template is untouched. Deployments, StatefulSets and DaemonSets are patched
in place (the change rolls out new pods); Jobs and CronJobs are reported for a person to change
in their manifests. Containers already off ``Always`` are not patched again.

``off`` by default in the policy: with a mutable tag (``:latest``) ``IfNotPresent`` keeps running
whatever copy a node pulled first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.checks.base import Finding, Target
from shared.errors import ReadError, WriteRejected
from shared.ports import Estate
from shared.ports.kubernetes import (
    PATCHABLE_KINDS,
    USER_CREDENTIAL,
    WORKLOAD_READS,
    WORKLOAD_WRITES,
    Workload,
    kubectl_patch_command,
    pull_policy_patch,
)
from shared.remediations.base import ActionRecord, Plan, Remediation

log = logging.getLogger(__name__)

ALWAYS, IF_NOT_PRESENT = "Always", "IfNotPresent"


def _rows(finding: Finding) -> list[Mapping[str, Any]]:
    rows = finding.evidence.get("workloadsPullingAlways") or ()
    return [r for r in rows if isinstance(r, Mapping) and r.get("name") and r.get("kind")]


def _mutable_tag(image: str) -> bool:
    last = image.rsplit("/", 1)[-1]
    return "@" not in last and (":" not in last or last.endswith(":latest"))


def containers_to_change(workload: Workload, images: set[str], named: set[str]) -> tuple[str, ...]:
    """Containers of ``workload`` pulling an affected image (or named, without images) Always."""
    return tuple(
        name
        for name, image, policy in zip(
            workload.containers, workload.images, workload.image_pull_policy, strict=False
        )
        if policy == ALWAYS and (image in images if images else name in named)
    )


class SetPullPolicyIfNotPresent(Remediation):
    id = "set-pull-policy-if-not-present"
    permissions = (USER_CREDENTIAL, *WORKLOAD_READS, *WORKLOAD_WRITES)

    def plan(self, finding: Finding, target: Target) -> Plan:
        rows = _rows(finding)
        images = [str(i) for i in finding.evidence.get("images") or ()]
        commands: list[str] = []
        for row in (r for r in rows if r["kind"] in PATCHABLE_KINDS):
            workload = Workload(
                namespace=str(row.get("namespace")),
                name=str(row["name"]),
                kind=str(row["kind"]),
                images=(),
                image_pull_policy=(),
                node_selector={},
                image_pull_secrets=(),
            )
            patch = pull_policy_patch(workload, tuple(row.get("containers") or ()), IF_NOT_PRESENT)
            kind = str(row["kind"]).lower()
            commands.append(kubectl_patch_command(kind, workload.name, workload.namespace, patch))
            commands.append(
                f"kubectl rollout status {kind}/{workload.name} -n {workload.namespace}"
            )
        names = ", ".join(f"{r['kind']}/{r.get('namespace')}/{r['name']}" for r in rows)
        summary = (
            f"Set imagePullPolicy IfNotPresent (from Always) on the containers of {names or 'no workload'} "
            f"in {target.cluster.name} that pull {', '.join(images) or 'the rejected images'}, "
            "so nodes that have the image stop asking the registry for it."
        )
        warnings = [
            "Patching the pod template rolls out new pods (a rolling restart of each workload).",
            "If the workload is deployed by Helm, Flux or Argo CD, change its manifest too, or "
            "the next sync puts imagePullPolicy Always back.",
        ]
        mutable = [i for i in images if _mutable_tag(i)]
        if mutable:
            warnings.append(
                f"{', '.join(mutable)} use(s) a mutable tag: with IfNotPresent a node keeps running "
                "the copy it pulled first, even after the tag moves; pin a version tag or digest."
            )
        fixed_by_hand = [r for r in rows if r["kind"] not in PATCHABLE_KINDS]
        if fixed_by_hand:
            warnings.append(
                f"{', '.join(str(r['kind']) + '/' + str(r['name']) for r in fixed_by_hand)}: "
                "not patched by this action (change the manifest)."
            )
        return Plan(self.id, summary, tuple(commands), tuple(warnings))

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        cluster = target.cluster
        rows = _rows(finding)
        if not rows:
            return ActionRecord(
                self.id, "failed", "the finding names no workload that pulls with Always"
            )
        images = {str(i) for i in finding.evidence.get("images") or ()}
        try:
            current = {(w.kind, w.namespace, w.name): w for w in estate.list_workloads(cluster)}
        except ReadError as exc:
            return ActionRecord(self.id, "failed", f"nothing changed: {exc.reason}")
        patched: dict[str, tuple[str, ...]] = {}
        done: list[str] = []
        problems: list[str] = []
        for row in rows:
            workload = current.get((str(row["kind"]), str(row.get("namespace")), str(row["name"])))
            ref = f"{row['kind']}/{row.get('namespace')}/{row['name']}"
            if workload is None:
                done.append(f"{ref} (gone)")
                continue
            containers = containers_to_change(workload, images, set(row.get("containers") or ()))
            if not containers:
                done.append(ref)
                continue
            if workload.kind not in PATCHABLE_KINDS:
                problems.append(
                    f"{ref} is a {workload.kind}: change imagePullPolicy in its manifest"
                )
                continue
            try:
                estate.set_image_pull_policy(cluster, workload, containers, policy=IF_NOT_PRESENT)
            except (ReadError, WriteRejected) as exc:
                problems.append(f"could not patch {ref}: {exc}")
                continue
            log.info("set-pull-policy-if-not-present: patched %s (%s)", ref, ", ".join(containers))
            patched[ref] = containers
        problems += _verify(estate, target, patched, images)
        parts = [f"set IfNotPresent on {ref} ({', '.join(c)})" for ref, c in patched.items()]
        if done:
            parts.append(f"already not pulling Always: {', '.join(done)}")
        parts += problems
        return ActionRecord(self.id, "failed" if problems else "applied", "; ".join(parts))


def _verify(
    estate: Estate, target: Target, patched: dict[str, tuple[str, ...]], images: set[str]
) -> list[str]:
    """Read the patched workloads back: their containers must no longer pull Always."""
    if not patched:
        return []
    try:
        workloads = {w.ref: w for w in estate.list_workloads(target.cluster)}
    except ReadError as exc:
        return [f"could not read the workloads back to verify: {exc.reason}"]
    problems = []
    for ref, containers in patched.items():
        workload = workloads.get(ref)
        if workload is None:
            continue
        still = set(containers_to_change(workload, images, set(containers))) & set(containers)
        if still:
            problems.append(
                f"{ref} still pulls Always in {', '.join(sorted(still))} after the patch"
            )
    return problems
