"""Signal -> affected cluster -> checks -> decision -> remediation -> verification.

The engine is pure orchestration: it reads and writes Azure only through the :class:`Estate`
port, so tests drive it against the emulator through the real SDK adapters.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from shared.azure.event_names import event_types
from shared.checks import CHECKS, Finding, Status, Target, get_check
from shared.config import Settings
from shared.outcome import Outcome, Verdict
from shared.ports import Estate
from shared.remediations import REMEDIATIONS
from shared.resource_id import ResourceId
from shared.signals import ResourceEvent

log = logging.getLogger(__name__)

VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"

# ARM operation names the engine acts on; infra/ filters the Event Grid subscription to these.
HANDLED_OPERATIONS = (VMSS_WRITE,)


class Engine:
    def __init__(self, settings: Settings, estate: Estate) -> None:
        self.settings = settings
        self.estate = estate

    def handle_resource_event(self, event: ResourceEvent) -> Outcome:
        names = event_types()
        ignore = self._ignore_reason(event, names.failures, names.write_success)
        if ignore:
            return Outcome(event.id, Verdict.IGNORED, ignore)
        if event.is_operation(VMSS_WRITE):
            return self._scale_set_written(event)
        return Outcome(
            event.id, Verdict.IGNORED, f"operation {event.operation_name} is not handled"
        )

    def _ignore_reason(
        self, event: ResourceEvent, failures: frozenset[str], write: str
    ) -> str | None:
        if event.event_type in failures or event.status.lower() not in ("succeeded", ""):
            return f"the operation did not succeed ({event.event_type}, status {event.status or 'none'})"
        if event.event_type != write:
            return f"event type {event.event_type} is not handled"
        if not self.settings.in_scope(event.subscription_id):
            return f"subscription {event.subscription_id} is outside the configured scope"
        if self.settings.tenant_id and event.tenant_id.lower() != self.settings.tenant_id:
            return f"tenant {event.tenant_id} is not the configured tenant"
        return None

    def _scale_set_written(self, event: ResourceEvent) -> Outcome:
        try:
            vmss = ResourceId.parse(event.resource_id)
        except ValueError:
            return Outcome(
                event.id, Verdict.IGNORED, "the event's resourceUri is not a resource id"
            )
        if vmss.subscription_id.lower() != event.subscription_id.lower():
            return Outcome(event.id, Verdict.IGNORED, "resourceUri and subscriptionId disagree")
        # The event carries no diff: read the current state instead of trusting the event.
        cluster = self.estate.cluster_for_node_resource_group(
            vmss.subscription_id, vmss.resource_group
        )
        if cluster is None:
            return Outcome(
                event.id,
                Verdict.IGNORED,
                f"scale set {vmss.name} is not in the node resource group of an AKS cluster",
            )
        return self.diagnose_and_fix(event.id, Target(cluster), ("kubelet-identity-detached",))

    def diagnose(self, target: Target, cause_ids: tuple[str, ...] | None = None) -> list[Finding]:
        """Run checks concurrently (bounded); the estate's run cache makes shared reads happen once."""
        causes = cause_ids or tuple(CHECKS)
        workers = max(1, min(self.settings.max_concurrency, len(causes)))
        with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
            return list(pool.map(lambda cause: get_check(cause).run(target, self.estate), causes))

    def diagnose_and_fix(
        self, signal_id: str, target: Target, cause_ids: tuple[str, ...]
    ) -> Outcome:
        findings = tuple(self.diagnose(target, cause_ids))
        failed = [f for f in findings if f.status is Status.FAIL]
        cluster_id = target.cluster.id
        if not failed:
            unknown = [f for f in findings if f.status is Status.UNKNOWN]
            if unknown:
                return Outcome(signal_id, Verdict.UNKNOWN, unknown[0].summary, cluster_id, findings)
            return Outcome(signal_id, Verdict.HEALTHY, findings[0].summary, cluster_id, findings)
        finding = failed[0]
        if finding.action_id is None:
            return Outcome(
                signal_id, Verdict.NEEDS_ATTENTION, finding.summary, cluster_id, findings
            )
        remediation = REMEDIATIONS[finding.action_id]
        plan = remediation.plan(finding, target)
        if self.settings.mode != "enforce":
            reason = f"dry-run: would run {remediation.id}"
            return Outcome(signal_id, Verdict.PLANNED, reason, cluster_id, findings, (plan,))
        action = remediation.apply(target, self.estate, timeout=self.settings.operation_timeout)
        if action.status != "applied":
            verdict = (
                Verdict.IN_PROGRESS
                if action.status == "in-progress"
                else Verdict.REMEDIATION_FAILED
            )
            return Outcome(
                signal_id, verdict, action.detail, cluster_id, findings, (plan,), (action,)
            )
        verification = self._verify(finding, target)
        verdict = (
            Verdict.REMEDIATED if verification.status is Status.PASS else Verdict.REMEDIATION_FAILED
        )
        reason = f"{remediation.id} applied; verification: {verification.summary}"
        return Outcome(
            signal_id, verdict, reason, cluster_id, findings, (plan,), (action,), (verification,)
        )

    def _verify(self, finding: Finding, target: Target) -> Finding:
        fresh = Target(self.estate.get_cluster(target.cluster.id), target.registry_id, target.image)
        return get_check(finding.cause_id).run(fresh, self.estate)
