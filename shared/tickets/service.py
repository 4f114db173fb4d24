"""One ticket per fingerprint: open it, comment when the cause recurs, close it on recovery.

The index (the Table store in production) remembers which ticket is open for a fingerprint. The
engine holds the cluster's lease while it calls this, so two instances never race for the same
fingerprint. A ticket a person closed by hand is not reopened: a recurrence opens a new one that
links the old.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from shared.config import Settings
from shared.errors import TransientError
from shared.tickets.azure_devops import AzureDevOpsWorkItems
from shared.tickets.github import GitHubIssues
from shared.tickets.model import Ticket, TicketRef, TicketRoute
from shared.tickets.webhook import WebhookNotifier

log = logging.getLogger(__name__)


class TicketProvider(Protocol):
    name: str

    def create(self, ticket: Ticket) -> TicketRef: ...

    def find(self, ticket: Ticket) -> TicketRef | None:
        """The open ticket the system itself holds for ``ticket.fingerprint`` (None if it cannot
        tell: webhooks deliver at least once)."""
        ...

    def get(self, ref: TicketRef) -> TicketRef: ...

    def comment(self, ref: TicketRef, note: str, ticket: Ticket | None = None) -> None: ...

    def close(self, ref: TicketRef, note: str) -> TicketRef: ...


class TicketIndex(Protocol):
    """Which ticket is open for a fingerprint (the Table store implements it)."""

    def get_ticket(self, fingerprint: str) -> TicketRef | None: ...

    def put_ticket(self, fingerprint: str, ref: TicketRef) -> None: ...

    def close_ticket(self, fingerprint: str) -> object: ...


class TicketService:
    def __init__(
        self,
        provider: TicketProvider,
        index: TicketIndex,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.provider = provider
        self.index = index
        self._clock = clock

    def open_or_update(self, ticket: Ticket) -> TicketRef:
        """Open a ticket for ``ticket.fingerprint``, or comment on the one already open.

        The returned ref's ``is_new`` tells which happened (``ticket.opened`` vs ``ticket.updated``).
        """
        known = self.index.get_ticket(ticket.fingerprint)
        if known is not None and known.is_open and known.provider == self.provider.name:
            current = self.provider.get(known)
            if current.is_open:
                occurrences = known.occurrences + 1
                self.provider.comment(
                    current,
                    f"Recurred at {self._now()} (occurrence {occurrences}).",
                    ticket,
                )
                ref = replace(current, occurrences=occurrences)
                self.index.put_ticket(ticket.fingerprint, ref)
                log.info("ticket %s %s: recurrence %d", ref.provider, ref.id, occurrences)
                return ref
            log.info("ticket %s %s was closed by hand; opening a new one", known.provider, known.id)
        ref = self._create_once(ticket)
        if known is not None and known.provider == self.provider.name and known.url:
            self.provider.comment(ref, f"Previously tracked in {known.url}.")
        self.index.put_ticket(ticket.fingerprint, ref)
        log.info("ticket %s %s opened for %s", ref.provider, ref.id, ticket.cause_id)
        return ref

    def _create_once(self, ticket: Ticket) -> TicketRef:
        """Create unless the ticket system already holds an open one for the fingerprint: the
        index misses one whose creation's response was lost (or an index that was reset)."""
        found = self.provider.find(ticket)
        if found is not None and found.is_open:
            log.info(
                "ticket %s %s found by its fingerprint; not opening another",
                found.provider,
                found.id,
            )
            return found
        try:
            return self.provider.create(ticket)
        except TransientError:
            found = self.provider.find(ticket)  # the write may have committed
            if found is not None and found.is_open:
                return found
            raise

    def resolve(self, fingerprint: str, comment: str) -> TicketRef | None:
        """Close the open ticket for ``fingerprint`` with ``comment``; None when none is open."""
        known = self.index.get_ticket(fingerprint)
        if known is None or not known.is_open:
            return None
        if known.provider != self.provider.name:
            log.warning(
                "ticket %s %s is in another system than %s; close it there",
                known.provider,
                known.id,
                self.provider.name,
            )
            return None
        ref = self.provider.close(known, f"{comment} (resolved at {self._now()})")
        self.index.close_ticket(fingerprint)
        log.info("ticket %s %s closed", ref.provider, ref.id)
        return ref

    def _now(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def provider_for(route: TicketRoute, settings: Settings) -> TicketProvider:
    """The provider a route names, with credentials from the app settings."""
    if route.provider == "github":
        return GitHubIssues.from_settings(settings, route.repository or "", labels=route.labels)
    if route.provider == "azure-devops":
        return AzureDevOpsWorkItems.from_settings(
            settings,
            route.organization or "",
            route.project or "",
            work_item_type=route.work_item_type,
            closed_state=route.closed_state,
            tags=route.labels,
        )
    return WebhookNotifier.from_settings(
        settings, url=route.webhook_url, message_format=route.webhook_format
    )
