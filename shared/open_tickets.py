"""The open tickets of one invocation, read once: passing checks close only tickets in it.

Every passing finding used to cost a Table read (is its ticket open?). A sweep's batch checks
tens of pairs with 15 checks each, nearly all passing, so the open tickets are listed once,
when the first passing finding asks, and tickets this invocation opened are added as it goes.
A ticket opened by another instance after the list was read is closed by the next sweep.
"""

from __future__ import annotations

import threading

from shared.store import StateStore

# The Tickets table keeps fingerprints clipped to 1024 characters: longer ones are looked up.
_LONGEST = 1023


class OpenTickets:
    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._open: set[str] | None = None

    def may_be_open(self, fingerprint: str) -> bool:
        """False only when the ticket is certainly not open (no read of its own needed)."""
        if len(fingerprint) > _LONGEST:
            return True
        with self._lock:
            if self._open is None:
                self._open = set(self._store.list_open_tickets())
            return fingerprint in self._open

    def opened(self, fingerprint: str) -> None:
        with self._lock:
            if self._open is not None:
                self._open.add(fingerprint)
