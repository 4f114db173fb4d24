"""Gather a fleet report for the current app settings (the command line's ``report``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from shared.errors import ConfigurationError, ReadError, TransientError
from shared.fleet import PairReport, Progress, diagnose_fleet
from shared.report.collect import from_diagnosis, from_store
from shared.report.model import DIAGNOSIS, FleetReport
from shared.store import AuditRecord

AUDIT_LIMIT = 5000  # audit rows read for one report, newest first


def build_report(
    source: str,
    *,
    days: int,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    reports: Sequence[PairReport] | None = None,
    now: datetime | None = None,
) -> FleetReport:
    """From ``diagnosis`` (every pair in scope, now; ``reports`` when already run) or from the
    ``state store`` (the audit log's last word on each cluster and cause). Either way the actions
    are the audit log's records of the last ``days`` days, when a state store is configured."""
    from shared import runtime

    now = now or datetime.now(UTC)
    engine = runtime.engine(env)
    scope = tuple(sorted(engine.settings.subscriptions))
    audit, note = _audit(env, since=now - timedelta(days=days))
    if source == DIAGNOSIS:
        if reports is None:
            if not scope:
                raise ConfigurationError("SCOPE_SUBSCRIPTION_IDS is empty: no pair is in scope")
            reports = diagnose_fleet(engine, progress=progress)
        return from_diagnosis(reports, now=now, audit=audit, scope=scope, notes=note)
    if note:
        raise ConfigurationError(note[0])
    return from_store(audit, now=now, scope=scope)


def _audit(
    env: Mapping[str, str] | None, *, since: datetime
) -> tuple[Sequence[AuditRecord], tuple[str, ...]]:
    from shared import runtime

    try:
        store = runtime.state_store(env)
        return store.list_audit(since, limit=AUDIT_LIMIT), ()
    except ConfigurationError as exc:
        return (), (f"actions not shown: {exc}",)
    except (ReadError, TransientError) as exc:
        return (), (f"actions not shown: the audit log could not be read ({exc})",)
