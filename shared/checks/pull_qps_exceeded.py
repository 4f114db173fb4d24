"""Cause 6: kubelets reject image pulls because they exceed ``registryPullQPS``."""

from __future__ import annotations

import json
from dataclasses import replace

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.ports import Estate
from shared.ports.kubernetes import (
    PULL_EVENT_READS,
    USER_CREDENTIAL,
    WORKLOAD_READS,
    KubeEvent,
    Workload,
)

QPS = "pull qps exceeded"
LIST_EVENTS = 'kubectl get events -A --field-selector reason=Failed | grep "pull QPS exceeded"'
KUBECTL_KINDS = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset"}


class PullQpsExceeded(Check):
    meta = CheckMeta(
        id="pull-qps-exceeded",
        family="6",
        title="Kubelets do not reject image pulls for exceeding their pull rate limit",
        guide_section="Cause 6: Kubelet exceeded the default pull rate limit for image",
        severity="medium",
        reads=(USER_CREDENTIAL, *PULL_EVENT_READS, *WORKLOAD_READS),
        action_id="set-pull-policy-if-not-present",
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        events = [e for e in estate.list_pull_events(cluster) if QPS in e.message.lower()]
        if not events:
            return self.finding(
                Status.PASS,
                f"No pod in {cluster.name} has a `pull QPS exceeded` event, so its kubelets pull "
                "within registryPullQPS.",
                target,
                {"pods": [], "images": []},
            )
        images = sorted({e.image for e in events if e.image})
        always = [
            (w, [c for c, i, p in _containers(w) if i in images and p == "Always"])
            for w in estate.list_workloads(cluster)
        ]
        always = [(w, containers) for w, containers in always if containers]
        evidence = {
            "pods": sorted({f"{e.namespace}/{e.involved_name}" for e in events}),
            "images": images,
            "nodes": sorted({e.node for e in events if e.node}),
            "rejectedPulls": sum(e.count for e in events),
            "workloadsPullingAlways": [
                {"kind": w.kind, "namespace": w.namespace, "name": w.name, "containers": containers}
                for w, containers in always
            ],
        }
        workloads = ", ".join(w.ref for w, _ in always) or "no workload in the cluster"
        finding = self.finding(
            Status.FAIL,
            f"Kubelets of {cluster.name} refused {evidence['rejectedPulls']} pull(s) of "
            f"{', '.join(images) or 'images'} with `pull QPS exceeded`; {workloads} pull(s) them "
            "with imagePullPolicy Always.",
            target,
            evidence,
            fixable=bool(always),
        )
        return replace(finding, commands=self._commands(events, always))

    def commands(self, target: Target) -> tuple[str, ...]:
        return (LIST_EVENTS, "kubectl describe pod <pod> -n <namespace>")

    def _commands(
        self, events: list[KubeEvent], always: list[tuple[Workload, list[str]]]
    ) -> tuple[str, ...]:
        commands = [LIST_EVENTS]
        for namespace, pod in sorted({(e.namespace, e.involved_name) for e in events})[:5]:
            commands.append(f"kubectl describe pod {pod} -n {namespace}")
        for workload, containers in always:
            commands.append(_patch_command(workload, containers))
        return tuple(commands)


def _containers(workload: Workload) -> list[tuple[str, str, str]]:
    return list(zip(workload.containers, workload.images, workload.image_pull_policy, strict=False))


def _patch_command(workload: Workload, containers: list[str]) -> str:
    def group(names: list[str]) -> list[dict[str, str]]:
        return [{"name": n, "imagePullPolicy": "IfNotPresent"} for n in names]

    init = [c for c in containers if c in workload.init_containers]
    main = [c for c in containers if c not in workload.init_containers]
    pod: dict[str, object] = {}
    if main:
        pod["containers"] = group(main)
    if init:
        pod["initContainers"] = group(init)
    template: dict[str, object] = {"template": {"spec": pod}}
    spec = {"jobTemplate": {"spec": template}} if workload.kind == "CronJob" else template
    kind = KUBECTL_KINDS.get(workload.kind, workload.kind.lower())
    patch = json.dumps({"spec": spec}, separators=(",", ":"))
    return f"kubectl patch {kind} {workload.name} -n {workload.namespace} -p '{patch}'"
