"""Leases on everything one action changes: one actor per blast radius (DESIGN.md section 7).

A rotation of a shared service principal resets every cluster that uses it. Holding only the
target cluster's lease would let a second instance, acting on another of those clusters, reset
it at the same time with a different secret. So an action names what else it touches, and the
responder holds a lease on each before it starts; if any is held elsewhere it takes none and the
action is deferred, like a busy cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from shared.store.model import Lease
from shared.store.protocol import StateStore


@contextmanager
def holding(
    store: StateStore, keys: Iterable[str], owner: str, ttl_seconds: float
) -> Iterator[str | None]:
    """Acquire a lease on each key; yield None while all are held, else the first refused key
    (nothing is held then). Every lease taken here is released on exit."""
    held: list[Lease] = []
    refused: str | None = None
    try:
        # A stable order: two instances racing for overlapping sets meet at the same first key.
        for key in sorted(dict.fromkeys(k.lower() for k in keys)):
            lease = store.acquire_lease(key, owner, ttl_seconds)
            if lease is None:
                refused = key
                break
            held.append(lease)
        if refused is not None:
            for lease in reversed(held):
                store.release(lease)
            held.clear()
        yield refused
    finally:
        for lease in reversed(held):
            store.release(lease)
