"""The validated policy as frozen, typed values (built by :mod:`shared.policy.loader`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from types import MappingProxyType

from shared.models import Cluster
from shared.policy.schema import (
    DEFAULT_ACTIONS,
    DEFAULT_COOLDOWN_MINUTES,
    DEFAULT_EXPIRY_WINDOWS,
    DEFAULT_PAIR_RETENTION_DAYS,
    DEFAULT_RATE_LIMIT,
    RESERVED_SCOPE,
)
from shared.policy.windows import MaintenanceWindow

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Match:
    """All given criteria must hold; within one list, any entry may match.

    Subscriptions and resource groups compare case-insensitively (resource groups as globs:
    ``rg-prod-*``); tag names compare case-insensitively, as Azure does, and tag values are
    case-sensitive globs (``"*"`` = the tag is present).
    """

    subscriptions: frozenset[str] = frozenset()
    resource_groups: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def matches(self, cluster: Cluster) -> bool:
        resource = cluster.resource
        if self.subscriptions and resource.subscription_id.lower() not in self.subscriptions:
            return False
        group = resource.resource_group.lower()
        if self.resource_groups and not any(fnmatchcase(group, g) for g in self.resource_groups):
            return False
        tags = {key.lower(): value for key, value in cluster.tags.items()}
        return all(key in tags and fnmatchcase(tags[key], pattern) for key, pattern in self.tags)


@dataclass(frozen=True)
class TicketRoute:
    """Where tickets go: ``provider`` and its ``route`` keys as written in the policy."""

    provider: str
    route: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    name: str
    match: Match | None = None  # None: the default scope (the policy's top level)
    mode: str = "dry-run"
    actions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(DEFAULT_ACTIONS))
    rate_limit_per_hour: int = DEFAULT_RATE_LIMIT
    cooldown: timedelta = timedelta(minutes=DEFAULT_COOLDOWN_MINUTES)
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    expiry_windows: tuple[int, ...] = DEFAULT_EXPIRY_WINDOWS  # days, largest first
    tickets: TicketRoute | None = None
    probe: str = "off"  # "auto": run the node pull probe in full diagnoses of this scope

    def expiry_window(self, days_left: float) -> int | None:
        """The smallest warning window (days) that ``days_left`` falls in, or None if outside all."""
        inside = [w for w in self.expiry_windows if days_left <= w]
        return min(inside) if inside else None


@dataclass(frozen=True)
class KnownPair:
    """A (cluster, registry) pair the operator names: checked by every drift sweep."""

    cluster_id: str
    registry_id: str


@dataclass(frozen=True)
class Policy:
    """Scopes in file order; the first whose ``match`` holds wins, else the default scope."""

    default: Scope = field(default_factory=lambda: Scope(RESERVED_SCOPE))
    scopes: tuple[Scope, ...] = ()
    known_pairs: tuple[KnownPair, ...] = ()
    pair_retention: timedelta = timedelta(days=DEFAULT_PAIR_RETENTION_DAYS)
    source: str = "<built-in>"

    def scope_for(self, cluster: Cluster) -> Scope:
        for scope in self.scopes:
            if scope.match is not None and scope.match.matches(cluster):
                return scope
        return self.default
