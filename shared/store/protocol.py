"""What the engine needs from durable state (DESIGN.md section 7); Table Storage implements it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.store.model import AuditRecord, Lease, PendingOperation, TicketRef


class StateStore(Protocol):
    # Event dedup: Event Grid delivers at least once.
    def claim_event(self, event_id: str) -> bool:
        """True the first time ``event_id`` is claimed, False on every later delivery."""
        ...

    def forget_event(self, event_id: str) -> None:
        """Drop a claim so a retried delivery is processed again (after a transient failure)."""
        ...

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

    # Finding fingerprint -> ticket.
    def get_ticket(self, fingerprint: str) -> TicketRef | None: ...

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
