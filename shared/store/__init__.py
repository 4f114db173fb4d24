"""Durable state (DESIGN.md section 7): event dedup, cluster leases, action counters, the ticket
index, pending long operations and the audit trail.

:class:`StateStore` is the port; ``shared.azure.tables.TableStateStore`` implements it on Azure
Table Storage (Azurite locally). Settings: see ``shared.azure.tables``.
"""

from shared.store.model import (
    AuditRecord,
    ClaimState,
    EventClaim,
    Lease,
    PendingOperation,
    RememberedPair,
    TicketRef,
)
from shared.store.protocol import StateStore

__all__ = [
    "AuditRecord",
    "ClaimState",
    "EventClaim",
    "Lease",
    "PendingOperation",
    "RememberedPair",
    "StateStore",
    "TicketRef",
]
