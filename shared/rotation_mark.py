"""The mark a service principal rotation leaves on the application while it runs.

A rotation in flight marks the application (Graph ``tags``) before it adds a password and
unmarks it when it ends, however it ends. A mark left behind means a worker died half-way: some
clusters may hold a secret no other holder knows, others still the old one. The mark lives on
the application itself, so every instance, and a person in the Entra admin center, can see it;
the sp-secret-expired check fails on it and the next rotation starts over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

MARKER = "acr-pull-remediator:rotating:"


def rotation_started(tags: Iterable[str]) -> datetime | None:
    """When an unfinished rotation started, from the application's tags (None if none)."""
    for tag in tags:
        if tag.startswith(MARKER):
            try:
                started = datetime.fromisoformat(tag[len(MARKER) :])
            except ValueError:
                return datetime.min.replace(tzinfo=UTC)  # a garbled mark is still a mark
            return started if started.tzinfo else started.replace(tzinfo=UTC)
    return None
