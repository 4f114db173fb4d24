"""The structured result of handling one signal: what was found, decided, done and verified."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.checks.base import Finding
from shared.remediations.base import ActionRecord, Plan


class Verdict(StrEnum):
    IGNORED = "ignored"
    HEALTHY = "healthy"
    UNKNOWN = "unknown"
    PLANNED = "planned"
    REMEDIATED = "remediated"
    IN_PROGRESS = "in-progress"
    REMEDIATION_FAILED = "remediation-failed"
    NEEDS_ATTENTION = "needs-attention"


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
        }
