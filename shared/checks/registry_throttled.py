"""Beyond the guide (family 6): the registry throttles pulls beyond its SKU's ReadOps limit.

A deployment of hundreds of pods, a node pool scale-out or a cluster upgrade pulls faster than the
registry's service tier allows (read operations per minute: Basic 1,000, Standard 3,000, Premium
10,000; a pull costs several). Kubelets then get ``429 Too Many Requests`` / ``toomanyrequests``,
which people read as an authentication or network problem. Evidence: the registry's SKU and its
limit, its pull metrics (Azure Monitor: total and successful pulls per minute), and the cluster's
burst (pods whose pulls were answered 429, pods waiting on pulls now). No automatic fix: the
options (a higher SKU, slower rollouts, ``IfNotPresent``, artifact streaming) are trade-offs for a
person; the ticket carries their commands.
"""

from __future__ import annotations

import json
from dataclasses import replace

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.checks.pull_qps_exceeded import KUBECTL_KINDS, _patch_command
from shared.errors import ReadError
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.kubernetes import (
    PULL_EVENT_READS,
    USER_CREDENTIAL,
    WORKLOAD_READS,
    KubeEvent,
    Workload,
)
from shared.ports.registries import READ_OPS_PER_MINUTE, Registry, RegistryPullMetrics
from shared.pullerror import read, unwrap
from shared.resource_id import ResourceId

WINDOW_MINUTES = 60
METRICS_READ = "Microsoft.Insights/metrics/read"
SKUS_DOC = "https://aka.ms/acr/skus"


class RegistryThrottled(Check):
    meta = CheckMeta(
        id="registry-throttled",
        family="6",
        title="The registry does not throttle the cluster's pulls",
        guide_section="Beyond the guide: registry throttling (ReadOps per minute by service "
        f"tier, {SKUS_DOC})",
        severity="high",
        reads=(
            "Microsoft.ContainerRegistry/registries/read",
            METRICS_READ,
            USER_CREDENTIAL,
            *PULL_EVENT_READS,
            *WORKLOAD_READS,
        ),
        action_id=None,
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        if target.registry_id is None:
            return self.finding(Status.UNKNOWN, "No registry was given to check.", target, {})
        registry = estate.get_registry(target.registry_id)
        host = registry.login_server.lower()
        events = [e for e in estate.list_pull_events(cluster) if _throttled(e, host)]
        waiting = [f for f in estate.list_pull_failures(cluster) if _host(f.image) == host]
        pods = sorted({f"{e.namespace}/{e.involved_name}" for e in events})
        images = sorted({e.image for e in events if e.image})
        evidence: dict[str, object] = {
            "registry": registry.id,
            "sku": registry.sku,
            "readOpsPerMinuteLimit": READ_OPS_PER_MINUTE.get(registry.sku.lower()),
            **self._metrics(estate, registry),
            "throttledPods": pods,
            "throttledPulls": sum(e.count for e in events),
            "images": images,
            "nodes": sorted({e.node for e in events if e.node}),
            "podsWaitingOnPulls": len({(f.namespace, f.pod) for f in waiting}),
        }
        if not events:
            return self.finding(
                Status.PASS,
                f"No pod in {cluster.name} has a pull from {registry.name} answered 429 "
                "toomanyrequests, so the registry does not throttle the cluster's pulls.",
                target,
                evidence,
            )
        workloads = [w for w in estate.list_workloads(cluster) if set(images) & set(w.images)]
        peak = evidence.get("peakPullsPerMinute")
        burst = f", peaking at {peak} pulls a minute" if peak else ""
        finding = self.finding(
            Status.FAIL,
            f"{registry.name} ({registry.sku}, {evidence['readOpsPerMinuteLimit'] or '?'} read "
            f"operations a minute) answered {evidence['throttledPulls']} pull(s) by "
            f"{len(pods)} pod(s) of {cluster.name} with 429 "
            f"toomanyrequests{burst}: the registry throttles a pull burst, not an "
            "authentication or network problem.",
            target,
            evidence,
        )
        return replace(finding, commands=_options(registry, cluster, events, workloads))

    def commands(self, target: Target) -> tuple[str, ...]:
        registry = target.registry_id or "<registry resource id>"
        return (_events_command(), _metrics_command(registry))

    @staticmethod
    def _metrics(estate: Estate, registry: Registry) -> dict[str, object]:
        """Pull metrics when readable; the events alone still decide (a metrics 403 is noted)."""
        try:
            metrics = estate.get_registry_pull_metrics(registry.id, minutes=WINDOW_MINUTES)
        except ReadError as exc:
            return {"pullMetrics": f"unreadable: {exc.reason}"}
        return _metrics_evidence(metrics)


def _metrics_evidence(metrics: RegistryPullMetrics) -> dict[str, object]:
    peak = metrics.peak
    return {
        "windowMinutes": metrics.window_minutes,
        "totalPulls": metrics.total,
        "successfulPulls": metrics.successful,
        "failedPulls": metrics.failed,
        "peakPullsPerMinute": peak.total if peak else 0,
        "peakMinute": peak.at if peak and peak.total else None,
    }


def _throttled(event: KubeEvent, host: str) -> bool:
    if event.image is None or _host(event.image) != host:
        return False
    anatomy = read(unwrap(event.message))
    return 429 in anatomy.http_statuses or "TOOMANYREQUESTS" in anatomy.registry_codes


def _host(image: str) -> str:
    first, slash, _ = image.partition("/")
    return first.lower() if slash else "docker.io"


def _events_command() -> str:
    return 'kubectl get events -A --field-selector reason=Failed | grep -i "toomanyrequests"'


def _metrics_command(registry_id: str) -> str:
    return (
        f"az monitor metrics list --resource {registry_id} --metrics TotalPullCount "
        "SuccessfulPullCount --interval PT1M --aggregation Total --offset 1h"
    )


def _options(
    registry: Registry, cluster: Cluster, events: list[KubeEvent], workloads: list[Workload]
) -> tuple[str, ...]:
    """Evidence commands first, then each option a person may choose, with real names."""
    commands = [_events_command(), _metrics_command(registry.id)]
    # 1. A higher service tier: more read operations a minute.
    if registry.sku.lower() != "premium":
        commands.append(f"az acr update --name {registry.name} --sku Premium")
    # 2. Fewer pods pulling at once: roll out in smaller steps.
    strategy = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}
    patch = json.dumps(strategy, separators=(",", ":"))
    for workload in workloads:
        if workload.kind == "Deployment":
            kind = KUBECTL_KINDS[workload.kind]
            commands.append(
                f"kubectl patch {kind} {workload.name} -n {workload.namespace} -p '{patch}'"
            )
    # 3. Do not pull what the node already has.
    for workload in workloads:
        always = [
            c
            for c, p in zip(workload.containers, workload.image_pull_policy, strict=False)
            if p == "Always"
        ]
        if always:
            commands.append(_patch_command(workload, always))
    # 4. Pull less: artifact streaming (Premium) lets nodes start containers before the whole
    # image is downloaded.
    for image in sorted({e.image for e in events if e.image})[:3]:
        repository = image.split("/", 1)[1].split("@", 1)[0].split(":", 1)[0]
        commands.append(
            f"az acr artifact-streaming update --name {registry.name} --repository {repository} "
            "--enable-streaming true"
        )
    for pool in _streaming_pools(cluster, events):
        commands.append(
            f"az aks nodepool update --cluster-name {cluster.name} --resource-group "
            f"{ResourceId.parse(cluster.id).resource_group} --name {pool} "
            "--enable-artifact-streaming"
        )
    return tuple(commands)


def _streaming_pools(cluster: Cluster, events: list[KubeEvent]) -> list[str]:
    """The Linux node pools (artifact streaming is Linux only) whose nodes were throttled, told
    from AKS node names (``aks-<pool>-<id>-vmss<n>``); every Linux pool when none can be told."""
    linux = [p.name for p in cluster.node_pools if p.os_type.lower() != "windows"]
    nodes = {e.node.lower() for e in events if e.node}
    hit = [p for p in linux if any(n.startswith(f"aks-{p.lower()}-") for n in nodes)]
    return hit or linux
