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


def unfinished_summary(app_id: str, started: datetime) -> str:
    """What a finding says of an application that carries the mark."""
    return (
        f"A rotation of the secret of service principal {app_id} started at "
        f"{started.isoformat()} and has not finished (it is running now, or its worker died): "
        "the clusters using it may hold different secrets, or still the old one."
    )
