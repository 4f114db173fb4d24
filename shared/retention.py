"""Retention: processed event claims, action records and the audit log are pruned by age.

The state store would otherwise grow with every delivery. Each table is pruned in pages (one
query and one transaction per partition and 100 rows), oldest cut-off first, until nothing older
is left or the run's budget is spent; whatever is left waits for the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.errors import ConfigurationError
from shared.store import StateStore

log = logging.getLogger(__name__)

PAGE = 500
# Setting -> (what it keeps, default days, fewest days allowed). Events are kept at least a day
# so an Event Grid redelivery (up to 24 hours) is still recognised as a duplicate.
SETTINGS: dict[str, tuple[str, int, int]] = {
    "EVENT_RETENTION_DAYS": ("events", 7, 2),
    "ACTION_RETENTION_DAYS": ("actions", 30, 1),
    "AUDIT_RETENTION_DAYS": ("audit", 400, 1),
}


@dataclass(frozen=True)
class Retention:
    events: timedelta = timedelta(days=7)
    actions: timedelta = timedelta(days=30)
    audit: timedelta = timedelta(days=400)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Retention:
        days: dict[str, timedelta] = {}
        for setting, (name, default, least) in SETTINGS.items():
            raw = env.get(setting, "").strip() or str(default)
            if not raw.isdigit() or not least <= int(raw) <= 36500:
                raise ConfigurationError(
                    f"{setting}={raw!r} must be a whole number of days, {least} to 36500"
                )
            days[name] = timedelta(days=int(raw))
        return cls(**days)


@dataclass
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)
    complete: bool = True  # False: the budget ran out with older rows left

    def summary(self) -> dict[str, object]:
        return {"deleted": dict(self.deleted), "complete": self.complete}


def prune(
    store: StateStore,
    retention: Retention,
    *,
    now: datetime,
    spent: Callable[[], bool],
    page: int = PAGE,
) -> RetentionReport:
    report = RetentionReport()
    tables: dict[str, tuple[Callable[..., int], timedelta]] = {
        "events": (store.prune_events, retention.events),
        "actions": (store.prune_actions, retention.actions),
        "audit": (store.prune_audit, retention.audit),
    }
    for name, (prune_page, keep) in tables.items():
        report.deleted[name] = 0
        while True:
            if spent():
                report.complete = False
                log.warning("retention: budget spent; %s and later tables wait", name)
                return report
            deleted = prune_page(now - keep, limit=page)
            report.deleted[name] += deleted
            if deleted < page:
                break
    return report
