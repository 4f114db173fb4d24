"""What every check shares: its metadata, its findings, and the rule that reads never raise."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared import telemetry
from shared.errors import ReadError
from shared.models import Cluster
from shared.ports import Estate

log = logging.getLogger(__name__)


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a status, not a password)
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class CheckMeta:
    """Prowler-style metadata; ``id`` is shared by the cause, check, action and ticket template."""

    id: str
    family: str
    title: str
    guide_section: str
    severity: str
    reads: tuple[str, ...]
    action_id: str | None
    # Microsoft Graph application permissions (app roles) the check reads with.
    graph: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """What a diagnosis is about: a cluster, and optionally a registry and an image."""

    cluster: Cluster
    registry_id: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class Finding:
    cause_id: str
    status: Status
    summary: str
    resource_id: str
    action_id: str | None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause_id,
            "status": self.status.value,
            "summary": self.summary,
            "resource": self.resource_id,
            "action": self.action_id,
            "evidence": dict(self.evidence),
            "commands": list(self.commands),
        }


class Check(ABC):
    meta: CheckMeta

    def run(self, target: Target, estate: Estate) -> Finding:
        """Evaluate the check; a resource it cannot read makes it UNKNOWN, never an exception."""
        attributes = {"acrpull.cause": self.meta.id, "acrpull.cluster": target.cluster.name}
        with telemetry.span(f"check {self.meta.id}", **attributes) as span:
            finding = self._run(target, estate)
            if span is not None:
                span.set_attribute("acrpull.status", finding.status.value)
            return finding

    def _run(self, target: Target, estate: Estate) -> Finding:
        try:
            return self.evaluate(target, estate)
        except ReadError as exc:
            log.info("check %s is UNKNOWN: %s", self.meta.id, exc.reason)
            return self.finding(
                Status.UNKNOWN,
                f"Could not tell: {exc.reason}.",
                target,
                {"unreadable": exc.resource_id} if exc.resource_id else {},
            )

    @abstractmethod
    def evaluate(self, target: Target, estate: Estate) -> Finding: ...

    def commands(self, target: Target) -> tuple[str, ...]:
        """The az / kubectl commands a person would run, with the real names filled in."""
        return ()

    def finding(
        self,
        status: Status,
        summary: str,
        target: Target,
        evidence: Mapping[str, Any],
        *,
        action_id: str | None = None,
        fixable: bool = True,
    ) -> Finding:
        return Finding(
            cause_id=self.meta.id,
            status=status,
            summary=summary,
            resource_id=target.cluster.id,
            action_id=(action_id or self.meta.action_id)
            if status is Status.FAIL and fixable
            else None,
            evidence=evidence,
            commands=self.commands(target),
        )
