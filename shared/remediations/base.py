"""What every remediation shares: a dry-run plan, declared permissions, an action record."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from shared.checks.base import Finding, Target
from shared.ports import Estate


@dataclass(frozen=True)
class Plan:
    action_id: str
    summary: str
    commands: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action_id,
            "summary": self.summary,
            "commands": list(self.commands),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ActionRecord:
    """What happened when a remediation ran: ``applied``, ``in-progress`` or ``failed``."""

    action_id: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action_id, "status": self.status, "detail": self.detail}


class Remediation(ABC):
    """One fix. The engine re-runs the check before ``apply`` and verifies with it afterwards.

    ``apply`` must be idempotent: running it twice, or after someone else fixed the problem,
    changes nothing more and still reports ``applied``.
    """

    id: str
    # The Azure RBAC actions the app's identity needs; infra/ grants exactly these.
    permissions: tuple[str, ...]
    # Microsoft Graph application permissions (app roles) it needs (shared.permissions).
    graph: tuple[str, ...] = ()

    @abstractmethod
    def plan(self, finding: Finding, target: Target) -> Plan:
        """What would change, in words and as the equivalent az / kubectl commands."""

    @abstractmethod
    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord: ...

    def blast_radius(self, finding: Finding, target: Target, estate: Estate) -> tuple[str, ...]:
        """What ``apply`` changes beyond the target cluster (resource ids, or Graph paths such as
        ``/servicePrincipals/{appId}``): the responder holds a lease on each while it runs.
        Most actions touch only the target cluster, whose lease the engine already holds."""
        return ()
