"""What a ticket says (:class:`Ticket`), where it goes (:class:`TicketRoute`) and where it lives
(:class:`TicketRef`). Plain frozen data: the store persists refs with :meth:`TicketRef.to_dict`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import ConfigurationError

PROVIDERS = ("github", "azure-devops", "webhook")
WEBHOOK_FORMATS = ("teams", "slack")
OPEN, CLOSED = "open", "closed"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.\-]{1,100}/[A-Za-z0-9_.\-]{1,100}$")


def fingerprint(cause_id: str, resource_id: str) -> str:
    """One ticket per (cause, resource): ``"acrpull-missing:/subscriptions/.../managedclusters/x"``."""
    return f"{cause_id.strip().lower()}:{resource_id.strip().rstrip('/').lower()}"


def short_hash(fingerprint_: str) -> str:
    """Ten hex characters of the fingerprint, for titles, labels and tags."""
    return hashlib.sha256(fingerprint_.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Ticket:
    """A ticket's content; build it with :func:`shared.tickets.render.build_ticket`."""

    fingerprint: str
    cause_id: str
    resource_id: str
    resource_name: str
    status: str
    title: str
    summary: str
    reason: str
    evidence: Mapping[str, Any]
    commands: tuple[str, ...]
    portal_url: str
    labels: tuple[str, ...]

    @property
    def short_id(self) -> str:
        return short_hash(self.fingerprint)


@dataclass(frozen=True)
class TicketRef:
    """A ticket in a provider: an issue number, a work item id, or a webhook thread."""

    provider: str
    id: str
    url: str
    fingerprint: str
    title: str
    state: str = OPEN
    occurrences: int = 1

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    @property
    def is_new(self) -> bool:
        """True when :meth:`TicketService.open_or_update` created it (not a recurrence)."""
        return self.occurrences == 1

    def closed(self) -> TicketRef:
        return replace(self, state=CLOSED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "id": self.id,
            "url": self.url,
            "fingerprint": self.fingerprint,
            "title": self.title,
            "state": self.state,
            "occurrences": self.occurrences,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketRef:
        return cls(
            provider=str(data["provider"]),
            id=str(data["id"]),
            url=str(data.get("url") or ""),
            fingerprint=str(data["fingerprint"]),
            title=str(data.get("title") or ""),
            state=str(data.get("state") or OPEN),
            occurrences=int(data.get("occurrences") or 1),
        )


@dataclass(frozen=True)
class TicketRoute:
    """Where tickets for a scope go. The policy builds it from YAML with :meth:`from_mapping`.

    ``webhook_url`` may be left out (and should be: the URL is a credential) to use the
    ``TICKET_WEBHOOK_URL`` app setting.
    """

    provider: str
    repository: str | None = None  # github: "owner/repo"
    organization: str | None = None  # azure-devops
    project: str | None = None  # azure-devops
    work_item_type: str = "Issue"  # azure-devops
    closed_state: str = "Done"  # azure-devops: "Done" (Basic, Scrum) or "Closed" (Agile, CMMI)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_format: str = "teams"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigurationError("ticket route: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        if self.provider not in PROVIDERS:
            return [f"provider={self.provider!r} is not one of: {', '.join(PROVIDERS)}"]
        problems = []
        if self.provider == "github" and not _REPOSITORY.match(self.repository or ""):
            problems.append(f"github needs repository as 'owner/name', got {self.repository!r}")
        if self.provider == "azure-devops":
            for name in ("organization", "project", "work_item_type", "closed_state"):
                if not getattr(self, name):
                    problems.append(f"azure-devops needs {name}")
        if self.provider == "webhook":
            if self.webhook_format not in WEBHOOK_FORMATS:
                problems.append(
                    f"webhook_format={self.webhook_format!r} is not one of: "
                    + ", ".join(WEBHOOK_FORMATS)
                )
            if self.webhook_url is not None and not self.webhook_url.startswith("https://"):
                problems.append("webhook_url must be an https URL")
        return problems

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TicketRoute:
        known = {
            "provider",
            "repository",
            "organization",
            "project",
            "work_item_type",
            "closed_state",
            "webhook_url",
            "webhook_format",
            "labels",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(
                f"ticket route: unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )
        values = dict(data)
        values["labels"] = tuple(str(label) for label in values.get("labels") or ())
        return cls(**values)
