"""What the fleet report shows: per cluster its findings, the credentials that expire, the actions.

Plain data built from either source (a fresh diagnosis or the state store), so the renderer does
not care where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.checks import Finding, Status

DIAGNOSIS, STORE = "diagnosis", "state store"


@dataclass(frozen=True)
class PairFindings:
    registry_id: str
    image: str | None
    findings: tuple[Finding, ...]

    @property
    def registry_name(self) -> str:
        return self.registry_id.rsplit("/", 1)[-1] if self.registry_id else "(no registry)"

    @property
    def problems(self) -> tuple[Finding, ...]:
        """What needs a look: failed checks first, then the ones that could not tell."""
        failed = [f for f in self.findings if f.status is Status.FAIL]
        return (*failed, *(f for f in self.findings if f.status is Status.UNKNOWN))


@dataclass(frozen=True)
class ClusterSummary:
    cluster_id: str
    name: str
    pairs: tuple[PairFindings, ...]

    def count(self, status: Status) -> int:
        return sum(1 for p in self.pairs for f in p.findings if f.status is status)

    @property
    def state(self) -> str:
        """``failing`` (a check failed), ``unknown`` (some could not tell) or ``healthy``."""
        if self.count(Status.FAIL):
            return "failing"
        return "unknown" if self.count(Status.UNKNOWN) else "healthy"

    @property
    def resource_group(self) -> str:
        parts = self.cluster_id.split("/")
        return parts[4] if len(parts) > 4 else ""


@dataclass(frozen=True)
class Credential:
    """A secret or password with an end date: a service principal secret, a token password."""

    kind: str
    owner: str  # the appId or token that holds it
    name: str  # its display name or key id
    expires: datetime | None
    clusters: tuple[str, ...]

    def days_left(self, now: datetime) -> float | None:
        return None if self.expires is None else (self.expires - now).total_seconds() / 86400


@dataclass(frozen=True)
class ActionTaken:
    """One decision from the audit log and what came of it."""

    when: datetime
    cluster: str
    cause: str
    action: str | None
    decision: str
    reason: str
    result: str
    correlation_id: str


@dataclass(frozen=True)
class FleetReport:
    generated_at: datetime
    source: str
    clusters: tuple[ClusterSummary, ...]
    credentials: tuple[Credential, ...] = ()
    actions: tuple[ActionTaken, ...] = ()
    notes: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def by_cause(self) -> dict[str, int]:
        """Failed checks per cause across the fleet, most frequent first."""
        counts: dict[str, int] = {}
        for cluster in self.clusters:
            for pair in cluster.pairs:
                for finding in pair.findings:
                    if finding.status is Status.FAIL:
                        counts[finding.cause_id] = counts.get(finding.cause_id, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
