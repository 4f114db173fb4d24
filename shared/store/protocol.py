"""What the engine needs from durable state (DESIGN.md section 7); Table Storage implements it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from shared.store.model import (
    AuditRecord,
    EventClaim,
    Lease,
    PendingOperation,
    RememberedPair,
    TicketRef,
)


class StateStore(Protocol):
    # Events: Event Grid, queues and webhooks deliver at least once.
    def start_event(self, event_id: str, ttl_seconds: float) -> EventClaim:
        """CLAIMED for the first delivery, or a later one whose earlier claim expired unfinished;
        DONE once an earlier delivery finished it; BUSY while another delivery's claim holds."""
        ...

    def finish_event(self, claim: EventClaim) -> None:
        """Mark the event done: every later delivery is a duplicate."""
        ...

    def abandon_event(self, claim: EventClaim) -> None:
        """Drop a claim so the next delivery runs the event again (a transient failure, a
        deferral). Nothing happens if the claim was already taken over."""
        ...

    def prune_events(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` finished or expired claims older than ``before``."""
        ...

    # Pairs the product has seen (the drift sweep checks them even when discovery misses them).
    def remember_pairs(self, pairs: Sequence[RememberedPair], *, merged: bool = False) -> None:
        """Upsert: sources are merged with what is already known, ``first_seen`` kept;
        ``merged``: the caller did that with what it read of these clusters in this run."""
        ...

    def list_pairs(self, cluster_ids: Collection[str] | None = None) -> Sequence[RememberedPair]:
        """Every remembered pair, or only those of ``cluster_ids`` (a batch reads its own)."""
        ...

    def forget_pair(self, cluster_id: str, registry_id: str) -> None: ...

    # One actor per cluster.
    def acquire_lease(self, cluster_id: str, owner: str, ttl_seconds: float) -> Lease | None:
        """The lease if free, expired or already ours; None if someone else holds it."""
        ...

    def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None: ...

    def release(self, lease: Lease) -> bool:
        """False if the lease had expired and was taken over (nothing is deleted then)."""
        ...

    # Cooldowns and rate limits (shared.policy.Counters).
    def record_action(self, cluster_id: str, action_id: str, now: datetime) -> None: ...

    def actions_since(self, cluster_id: str, since: datetime) -> int: ...

    def last_action(self, cluster_id: str, action_id: str) -> datetime | None: ...

    def prune_actions(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` action records older than ``before``."""
        ...

    # Finding fingerprint -> ticket.
    def get_ticket(self, fingerprint: str) -> TicketRef | None: ...

    def list_open_tickets(self) -> frozenset[str]:
        """Fingerprints of the open tickets (the one read a batch makes for its passing checks)."""
        ...

    def put_ticket(self, fingerprint: str, ref: TicketRef) -> None: ...

    def close_ticket(self, fingerprint: str) -> bool: ...

    # Long operations verified on a later run.
    def put_pending_operation(self, operation: PendingOperation) -> None: ...

    def list_pending_operations(self) -> Sequence[PendingOperation]: ...

    def remove_pending_operation(self, cluster_id: str, action_id: str) -> None: ...

    # Audit: append-only.
    def append_audit(self, record: AuditRecord) -> None: ...

    def list_audit(
        self, since: datetime, *, until: datetime | None = None, limit: int | None = None
    ) -> Sequence[AuditRecord]:
        """Newest first."""
        ...

    def prune_audit(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` audit records older than ``before`` (retention, never edits)."""
        ...
