"""The structured result of handling one signal for one cluster: found, decided, done, verified."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.checks.base import Finding, Status
from shared.remediations.base import ActionRecord, Plan

if TYPE_CHECKING:
    from shared.responder import Handled


class Verdict(StrEnum):
    IGNORED = "ignored"
    HEALTHY = "healthy"
    UNKNOWN = "unknown"
    REMEDIATED = "remediated"
    PLANNED = "planned"
    NEEDS_ATTENTION = "needs-attention"
    DEFERRED = "deferred"
    IN_PROGRESS = "in-progress"
    REMEDIATION_FAILED = "remediation-failed"


# When one signal leads to several findings, the outcome takes the most serious verdict.
SEVERITY = (
    Verdict.REMEDIATED,
    Verdict.PLANNED,
    Verdict.NEEDS_ATTENTION,
    Verdict.IN_PROGRESS,
    Verdict.REMEDIATION_FAILED,
    Verdict.DEFERRED,  # worst: the signal must be delivered again
)


@dataclass(frozen=True)
class Outcome:
    signal_id: str
    verdict: Verdict
    reason: str
    cluster_id: str | None = None
    findings: tuple[Finding, ...] = ()
    plans: tuple[Plan, ...] = ()
    actions: tuple[ActionRecord, ...] = ()
    verification: tuple[Finding, ...] = ()
    handled: tuple[Handled, ...] = ()

    @classmethod
    def of(
        cls,
        signal_id: str,
        cluster_id: str,
        findings: Sequence[Finding],
        handled: Sequence[Handled],
    ) -> Outcome:
        failed = [h for h in handled if h.finding.status is Status.FAIL or h.action is not None]
        if not failed:
            return cls(
                signal_id,
                verdict_of(findings),
                "nothing failed",
                cluster_id,
                tuple(findings),
                handled=tuple(handled),
            )
        # The headline names a root cause: consequences ride in its ticket. Findings come in
        # path order, so among equally serious roots the earliest on the path is named.
        roots = [h for h in failed if not h.consequence_of] or failed
        worst = max(roots, key=lambda h: SEVERITY.index(_verdict(h)))
        return cls(
            signal_id,
            _verdict(worst),
            _reason(worst),
            cluster_id,
            tuple(findings),
            plans=tuple(h.plan for h in handled if h.plan is not None),
            actions=tuple(h.action for h in handled if h.action is not None),
            verification=tuple(h.verification for h in handled if h.verification is not None),
            handled=tuple(handled),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal_id,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "cluster": self.cluster_id,
            "findings": [f.to_dict() for f in self.findings],
            "plans": [p.to_dict() for p in self.plans],
            "actions": [a.to_dict() for a in self.actions],
            "verification": [f.to_dict() for f in self.verification],
            "decisions": [h.to_dict() for h in self.handled if h.decision or h.ticket or h.note],
        }


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    """The verdict of a diagnosis nobody responded to."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return Verdict.NEEDS_ATTENTION
    return Verdict.UNKNOWN if Status.UNKNOWN in statuses else Verdict.HEALTHY


def _verdict(handled: Handled) -> Verdict:
    action, verification = handled.action, handled.verification
    if action is not None:
        unfinished = {"in-progress": Verdict.IN_PROGRESS, "deferred": Verdict.DEFERRED}
        if action.status != "applied":
            return unfinished.get(action.status, Verdict.REMEDIATION_FAILED)
        ok = verification is not None and verification.status is Status.PASS
        return Verdict.REMEDIATED if ok else Verdict.REMEDIATION_FAILED
    if verification is not None and verification.status is Status.PASS:
        return Verdict.REMEDIATED  # fixed before we acted
    if handled.decision is not None and handled.decision.kind.value == "plan":
        return Verdict.PLANNED
    return Verdict.NEEDS_ATTENTION


def _reason(handled: Handled) -> str:
    # The headline starts with the cause it is about (the root cause, see Outcome.of).
    said = handled.decision.reason if handled.decision else handled.finding.summary
    parts = [f"{handled.finding.cause_id}: {said}"]
    if handled.action is not None:
        parts.append(f"{handled.action.action_id} {handled.action.status}: {handled.action.detail}")
    if handled.verification is not None:
        parts.append(f"verification: {handled.verification.summary}")
    if handled.note:
        parts.append(handled.note)
    return "; ".join(parts)
