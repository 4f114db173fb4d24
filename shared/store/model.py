"""The state store's records: plain frozen values (no SDK types, never secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.tickets.model import TicketRef

__all__ = ["AuditRecord", "Lease", "PendingOperation", "TicketRef"]


@dataclass(frozen=True)
class Lease:
    """The right to act on one cluster until ``expires_at``; ``etag`` proves we still hold it."""

    cluster_id: str
    owner: str
    expires_at: datetime
    etag: str


@dataclass(frozen=True)
class PendingOperation:
    """A long operation (reconcile, SP reset) that outlived its function; verified later."""

    cluster_id: str
    action_id: str
    started_at: datetime
    correlation_id: str = ""
    signal_id: str = ""
    operation_url: str = ""  # ARM Azure-AsyncOperation / Location URL to poll, if any
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """One decision and what came of it; appended, never changed."""

    when: datetime
    correlation_id: str
    signal_id: str
    cluster_id: str
    cause_id: str
    action_id: str | None
    decision: str  # auto | plan | ticket | off (shared.policy.DecisionKind)
    reason: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    result: str = ""
