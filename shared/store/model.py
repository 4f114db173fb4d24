"""The state store's records: plain frozen values (no SDK types, never secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.tickets.model import TicketRef

__all__ = [
    "AuditRecord",
    "ClaimState",
    "EventClaim",
    "Lease",
    "PendingOperation",
    "RememberedPair",
    "TicketRef",
]


class ClaimState(StrEnum):
    CLAIMED = "claimed"  # ours to run now
    DONE = "done"  # an earlier delivery finished it
    BUSY = "busy"  # another invocation runs it; its claim has not expired


@dataclass(frozen=True)
class EventClaim:
    """A delivery's claim on an event: a lease while the work runs, a tombstone once it is done.

    An invocation that dies holds its claim only until ``expires_at``; a redelivery after that
    runs the event again, so no event is marked done without its work.
    """

    event_id: str
    state: ClaimState
    expires_at: datetime | None = None
    etag: str = ""
    attempt: int = 1


@dataclass(frozen=True)
class RememberedPair:
    """A (cluster, registry) pair the product has seen, and how: the drift sweep's memory."""

    cluster_id: str
    registry_id: str
    sources: frozenset[str]  # role-assignment | workload-image | event | policy
    first_seen: datetime
    last_seen: datetime


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
