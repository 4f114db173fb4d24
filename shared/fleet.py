"""Diagnose many (cluster, registry) pairs: the command line's fleet run and the fleet report.

Read-only: every check for every pair, no policy, no remediation. A callback hears about each
pair as it finishes, so a long run can say how far it got (the command line prints to stderr).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.checks import Finding, Status, Target
from shared.engine import Engine
from shared.pairs import Pair


@dataclass(frozen=True)
class PairReport:
    """The findings of one pair, in path order (root causes first)."""

    cluster_id: str
    cluster_name: str
    registry_id: str
    image: str | None
    findings: tuple[Finding, ...]
    seconds: float = 0.0

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is Status.FAIL)

    @property
    def unknown(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is Status.UNKNOWN)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster_id,
            "registry": self.registry_id,
            "image": self.image,
            "findings": [f.to_dict() for f in self.findings],
        }


# (done, total, the pair just diagnosed)
Progress = Callable[[int, int, PairReport], None]


def diagnose_pair(
    engine: Engine, target: Target, clock: Callable[[], float] = time.monotonic
) -> PairReport:
    started = clock()
    findings = tuple(engine.diagnose(target))
    return PairReport(
        cluster_id=target.cluster.id,
        cluster_name=target.cluster.name,
        registry_id=target.registry_id or "",
        image=target.image,
        findings=findings,
        seconds=clock() - started,
    )


def diagnose_fleet(
    engine: Engine, pairs: Sequence[Pair] | None = None, *, progress: Progress | None = None
) -> list[PairReport]:
    """Every check for every pair in scope (discovered when ``pairs`` is not given)."""
    found = list(engine.pairs().pairs() if pairs is None else pairs)
    reports = []
    for done, pair in enumerate(found, start=1):
        report = diagnose_pair(engine, Target(pair.cluster, pair.registry.id, pair.image))
        reports.append(report)
        if progress is not None:
            progress(done, len(found), report)
    return reports
