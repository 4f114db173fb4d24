"""Finding -> decision: run the fix (``auto``), plan it (dry-run), open a ticket, or do nothing.

Order: no safe fix -> ticket; the scope's setting for the action (``off``/``ticket``);
for ``auto``: maintenance windows, then cooldown, then the hourly rate limit (each blocks to a
ticket with ``retry_after`` when known); finally dry-run plans and enforce runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.models import Cluster
from shared.policy.model import Policy, Scope, TicketRoute
from shared.policy.schema import ACTION_IDS


class Counters(Protocol):
    """What the policy needs to know about past actions (the state store provides it)."""

    def actions_since(self, cluster_id: str, since: datetime) -> int: ...

    def last_action(self, cluster_id: str, action_id: str) -> datetime | None: ...


class DecisionKind(StrEnum):
    AUTO = "auto"
    PLAN = "plan"
    TICKET = "ticket"
    OFF = "off"


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str
    scope: str
    ticket_route: TicketRoute | None = None
    action_id: str | None = None
    retry_after: datetime | None = None  # when a blocked ``auto`` could run

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "scope": self.scope,
            "action": self.action_id,
            "retryAfter": self.retry_after.isoformat() if self.retry_after else None,
        }


def decide(
    policy: Policy,
    *,
    action_id: str | None,
    cause_id: str,
    cluster: Cluster,
    fixable: bool,
    now: datetime,
    counters: Counters,
) -> Decision:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    scope = policy.scope_for(cluster)

    def made(kind: DecisionKind, reason: str, retry_after: datetime | None = None) -> Decision:
        return Decision(
            kind, f"{kind.value}: {reason}", scope.name, scope.tickets, action_id, retry_after
        )

    if action_id is None or not fixable:
        return made(DecisionKind.TICKET, f"no safe automatic fix for {cause_id}")
    setting = scope.actions.get(action_id)
    if setting is None:
        raise ValueError(f"unknown action {action_id!r}; valid actions: {', '.join(ACTION_IDS)}")
    if setting != "auto":
        return made(DecisionKind(setting), f"{action_id} is `{setting}` in scope {scope.name}")
    blocked = _blocked(scope, action_id, cluster, now, counters)
    if blocked is not None:
        return made(DecisionKind.TICKET, *blocked)
    if scope.mode != "enforce":
        return made(DecisionKind.PLAN, f"dry-run mode in scope {scope.name} would run {action_id}")
    return made(DecisionKind.AUTO, f"{action_id} is `auto` in scope {scope.name} (enforce)")


def _blocked(
    scope: Scope, action_id: str, cluster: Cluster, now: datetime, counters: Counters
) -> tuple[str, datetime | None] | None:
    windows = scope.maintenance_windows
    if windows and not any(w.contains(now) for w in windows):
        opens = min(w.next_start(now) for w in windows)
        return f"outside the maintenance windows of scope {scope.name}", opens
    if scope.cooldown > timedelta(0):
        last = counters.last_action(cluster.id, action_id)
        if last is not None and now - last < scope.cooldown:
            minutes, ago = _minutes(scope.cooldown), _minutes(now - last)
            reason = f"cooldown of {minutes} min for {action_id} on {cluster.name} (last run {ago} min ago)"
            return reason, last + scope.cooldown
    limit = scope.rate_limit_per_hour
    if counters.actions_since(cluster.id, now - timedelta(hours=1)) >= limit:
        noun = "action" if limit == 1 else "actions"
        return f"rate limit of {limit} {noun} per hour reached for {cluster.name}", None
    return None


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))
