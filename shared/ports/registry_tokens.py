"""ACR repository-scoped tokens and scope maps: the third kind of pull credential.

A token signs in to the registry as ``<token name>`` with one of its two passwords
(``password1``/``password2``); what it may do is its scope map's actions, per repository
(``repositories/app/content/read`` lets it pull ``app``). ARM shows each password's creation
time and expiry but never its value: only ``generateCredentials`` returns values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

TOKEN_PASSWORD_SLOTS = ("password1", "password2")
PULL_ACTION = "content/read"
_ACTION = re.compile(r"^repositories/(?P<repo>.+)/(?P<verb>(?:content|metadata)/[a-z]+)$")


@dataclass(frozen=True)
class TokenPassword:
    """One password slot as ARM shows it: name, creation time, expiry; no value."""

    name: str
    created: datetime | None
    expiry: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expiry is not None and self.expiry <= now

    def days_left(self, now: datetime) -> float | None:
        return None if self.expiry is None else (self.expiry - now).total_seconds() / 86400


@dataclass(frozen=True)
class RegistryToken:
    id: str
    name: str
    status: str  # "enabled" or "disabled"
    scope_map_id: str
    passwords: tuple[TokenPassword, ...]

    @property
    def enabled(self) -> bool:
        return self.status.lower() == "enabled"

    def password(self, slot: str) -> TokenPassword | None:
        return next((p for p in self.passwords if p.name == slot), None)


@dataclass(frozen=True)
class ScopeMap:
    id: str
    name: str
    actions: tuple[str, ...]

    def allows(self, repository: str, verb: str = PULL_ACTION) -> bool:
        """Whether an action grants ``verb`` on ``repository``: named exactly, ``*`` for every
        repository, or ``team/*`` for those below ``team/`` (ACR's wildcard scope maps)."""
        for action in self.actions:
            match = _ACTION.match(action)
            if match is None or match["verb"] != verb:
                continue
            pattern = match["repo"]
            if pattern in ("*", repository):
                return True
            if pattern.endswith("/*") and repository.startswith(pattern[:-1]):
                return True
        return False


@dataclass(frozen=True)
class NewTokenPassword:
    """A value ``generateCredentials`` just issued (hidden from ``repr``)."""

    token_name: str
    slot: str
    value: str = field(repr=False)
    expiry: datetime | None = None


class RegistryTokenPort(Protocol):
    def list_registry_tokens(self, registry_id: str) -> list[RegistryToken]: ...

    def get_scope_map(self, scope_map_id: str) -> ScopeMap: ...

    def generate_token_password(
        self, registry_id: str, token_id: str, *, slot: str, expiry: datetime | None, timeout: float
    ) -> NewTokenPassword:
        """``generateCredentials`` for one slot (a long-running operation). Raises
        :class:`~shared.errors.TransientError` when it has not ended within ``timeout`` seconds
        (the value only comes with its result) and :class:`~shared.errors.WriteRejected` when ARM
        refuses it."""
        ...
