"""Outcome events: every decision and outcome published as a CloudEvent 1.0 to an Event Grid custom
topic, so other systems (dashboards, ITSM, chat-ops) can subscribe.

Enabled when the ``OUTCOME_TOPIC_ENDPOINT`` app setting is set (the topic's endpoint,
``https://<topic>.<region>-1.eventgrid.azure.net/api/events``). Auth: the topic access key in
``OUTCOME_TOPIC_KEY`` (a Key Vault reference in Azure), else Entra ID with the app's identity,
which needs the "EventGrid Data Sender" role on the topic. A publish failure never blocks a
remediation: the SDK retries it, then it is logged and returned as a :class:`PublishFailure`.

==================================================  ==========================================  ============================================================
type                                                when                                        data
==================================================  ==========================================  ============================================================
``com.acrpullremediator.finding``                   a check FAILed or could not tell (UNKNOWN)  finding: cause, status, summary, resource, action, evidence, commands
``com.acrpullremediator.action.planned``            a fix was planned (dry-run or before apply) plan: action, summary, commands, warnings
``com.acrpullremediator.action.applied``            a fix ran (or was started: in-progress)     action record: action, status, detail
``com.acrpullremediator.action.failed``             a fix failed                                action record: action, status, detail
``com.acrpullremediator.verification``              the re-check after a fix                    finding (as above); status PASS means fixed
``com.acrpullremediator.ticket.opened``             a ticket was opened                         ticket: provider, id, url, fingerprint, title, state, occurrences
``com.acrpullremediator.ticket.updated``            a recurrence was added to an open ticket    ticket (as above)
``com.acrpullremediator.ticket.closed``             a ticket was closed after recovery          ticket (as above)
==================================================  ==========================================  ============================================================

Every event has ``source`` = ``/acr-pull-remediator/<function or host>``, ``subject`` = the
resource id (the cluster), ``datacontenttype`` = ``application/json``, a ``correlationid``
extension (the signal being handled: one id ties a finding to its plan, action, verification and
ticket), and ``data`` with secrets redacted (:mod:`shared.tickets.redact`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.tickets.redact import redact

if TYPE_CHECKING:
    from shared.azure.factory import ClientFactory

log = logging.getLogger(__name__)

TYPE_PREFIX = "com.acrpullremediator."
SOURCE_PREFIX = "/acr-pull-remediator/"
# Event Grid accepts up to 1 MB per request; stay under it with room for the envelope.
MAX_BATCH_BYTES = 900_000


class EventKind(StrEnum):
    FINDING = "finding"
    ACTION_PLANNED = "action.planned"
    ACTION_APPLIED = "action.applied"
    ACTION_FAILED = "action.failed"
    VERIFICATION = "verification"
    TICKET_OPENED = "ticket.opened"
    TICKET_UPDATED = "ticket.updated"
    TICKET_CLOSED = "ticket.closed"

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.value


@dataclass(frozen=True)
class OutcomeEvent:
    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: Mapping[str, Any]
    correlation_id: str

    def size(self) -> int:
        return len(json.dumps(self.data, default=str)) + len(self.subject) + 300


@dataclass(frozen=True)
class PublishFailure:
    """Events that could not be published, and why (no secrets, no response bodies)."""

    event_ids: tuple[str, ...]
    types: tuple[str, ...]
    reason: str


class EventSender(Protocol):
    def send(self, events: Sequence[OutcomeEvent]) -> None: ...


class SupportsToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Publisher(Protocol):
    def publish(
        self,
        kind: EventKind | str,
        subject: str,
        data: Mapping[str, Any] | SupportsToDict,
        *,
        correlation_id: str,
    ) -> PublishFailure | None: ...

    def batch(self) -> Any: ...

    @property
    def failures(self) -> tuple[PublishFailure, ...]: ...


class OutcomePublisher:
    """Publishes outcome events through ``sender``; inside :meth:`batch` they go out together."""

    def __init__(
        self,
        sender: EventSender,
        *,
        source: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._sender = sender
        self.source = source if source.startswith("/") else SOURCE_PREFIX + source
        self._clock = clock
        self._new_id = new_id
        self._pending: list[OutcomeEvent] | None = None
        self._failures: list[PublishFailure] = []

    @property
    def failures(self) -> tuple[PublishFailure, ...]:
        return tuple(self._failures)

    def publish(
        self,
        kind: EventKind | str,
        subject: str,
        data: Mapping[str, Any] | SupportsToDict,
        *,
        correlation_id: str,
    ) -> PublishFailure | None:
        """Send one event (or queue it inside :meth:`batch`); never raises for the topic's sake."""
        event = OutcomeEvent(
            id=self._new_id(),
            type=EventKind(kind).type,
            source=self.source,
            subject=subject,
            time=self._clock(),
            data=_plain(data),
            correlation_id=correlation_id,
        )
        if self._pending is not None:
            self._pending.append(event)
            return None
        return self._send([event])

    @contextmanager
    def batch(self) -> Iterator[list[PublishFailure]]:
        """Queue events published inside the block and send them on exit (one request per ~1 MB)."""
        outer = self._pending is not None
        if not outer:
            self._pending = []
        failures: list[PublishFailure] = []
        try:
            yield failures
        finally:
            if not outer:
                pending, self._pending = self._pending or [], None
                for chunk in _chunks(pending):
                    failure = self._send(chunk)
                    if failure is not None:
                        failures.append(failure)

    def _send(self, events: list[OutcomeEvent]) -> PublishFailure | None:
        try:
            self._sender.send(events)
        except Exception as exc:  # a topic outage must never stop a remediation
            failure = PublishFailure(
                event_ids=tuple(e.id for e in events),
                types=tuple(e.type for e in events),
                reason=str(exc) or type(exc).__name__,
            )
            log.warning(
                "could not publish %d outcome event(s) (%s): %s",
                len(events),
                ", ".join(sorted(set(failure.types))),
                failure.reason,
            )
            self._failures.append(failure)
            return failure
        return None


class NullPublisher:
    """What :func:`outcome_publisher` returns when no topic is configured."""

    source = ""
    failures: tuple[PublishFailure, ...] = ()

    def publish(
        self,
        kind: EventKind | str,
        subject: str,
        data: Mapping[str, Any] | SupportsToDict,
        *,
        correlation_id: str,
    ) -> PublishFailure | None:
        EventKind(kind)  # a wrong kind is a bug whether or not a topic is configured
        return None

    @contextmanager
    def batch(self) -> Iterator[list[PublishFailure]]:
        yield []


def outcome_publisher(factory: ClientFactory, *, source: str) -> OutcomePublisher | NullPublisher:
    """An :class:`OutcomePublisher` when ``OUTCOME_TOPIC_ENDPOINT`` is set, else a :class:`NullPublisher`."""
    settings = factory.settings
    if not settings.outcome_topic_endpoint:
        return NullPublisher()
    from shared.azure.eventgrid_publisher import EventGridSender

    sender = EventGridSender(
        settings.outcome_topic_endpoint,
        settings,
        key=settings.outcome_topic_key,
        credential=None if settings.outcome_topic_key else factory.credential,
    )
    return OutcomePublisher(sender, source=source)


def _plain(data: Mapping[str, Any] | SupportsToDict) -> dict[str, Any]:
    raw = data if isinstance(data, Mapping) else data.to_dict()
    # JSON round trip: enums, dates and tuples become what a subscriber will read.
    plain: dict[str, Any] = json.loads(json.dumps(redact(raw), default=str))
    return plain


def _chunks(events: list[OutcomeEvent]) -> Iterator[list[OutcomeEvent]]:
    chunk: list[OutcomeEvent] = []
    size = 0
    for event in events:
        if chunk and size + event.size() > MAX_BATCH_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(event)
        size += event.size()
    if chunk:
        yield chunk
