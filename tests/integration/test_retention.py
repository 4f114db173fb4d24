"""The retention timer: old event claims, action records and audit rows go, recent ones stay."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.store import AuditRecord, ClaimState
from tests.support.triggers import timer

CLUSTER = (
    "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
NOW = datetime.now(UTC)


def store_at(when: datetime) -> TableStateStore:
    import os

    settings = Settings.from_env(os.environ)
    factory = ClientFactory(settings)
    prefix = settings.state_table_prefix
    return TableStateStore(factory.table_service(), prefix=prefix, clock=lambda: when)


def seed(ages_in_days: list[int]) -> None:
    for age in ages_in_days:
        when = NOW - timedelta(days=age, minutes=5)
        s = store_at(when)
        s.finish_event(s.start_event(f"evt-{age}d", 60))
        s.record_action(CLUSTER, "attach-acr", when)
        s.append_audit(
            AuditRecord(when, "c", f"evt-{age}d", CLUSTER, "acrpull-missing", None, "ticket", "r")
        )


def run(functions: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared"):
        functions["retention_sweep"].get_user_function()(timer())


def test_each_table_keeps_what_its_retention_says(
    app_env: dict[str, str], functions: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    seed([0, 3, 8, 31, 401])
    run(functions, caplog)
    s = store_at(NOW)
    states = {age: s.start_event(f"evt-{age}d", 60).state for age in (0, 3, 8, 31, 401)}
    # Kept for 7 days: still duplicates. Pruned: a (very late) redelivery would run again.
    assert states[0] is states[3] is ClaimState.DONE
    assert states[8] is states[31] is states[401] is ClaimState.CLAIMED
    assert s.actions_since(CLUSTER, NOW - timedelta(days=1000)) == 3  # 0, 3 and 8 days old
    kept = {r.signal_id for r in s.list_audit(NOW - timedelta(days=1000))}
    assert kept == {"evt-0d", "evt-3d", "evt-8d", "evt-31d"}
    assert any('"complete": true' in r.getMessage() for r in caplog.records)


def test_a_spent_budget_prunes_nothing_and_says_so(
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed([401])
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    run(functions, caplog)
    assert len(store_at(NOW).list_audit(NOW - timedelta(days=1000))) == 1
    assert any('"complete": false' in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("EVENT_RETENTION_DAYS", "1"),
        ("AUDIT_RETENTION_DAYS", "forever"),
        ("ACTION_RETENTION_DAYS", "-3"),
    ],
)
def test_a_bad_retention_setting_stops_the_run_and_deletes_nothing(
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    value: str,
) -> None:
    seed([401])
    monkeypatch.setenv(setting, value)
    with pytest.raises(ConfigurationError, match=setting):
        run(functions, caplog)
    assert len(store_at(NOW).list_audit(NOW - timedelta(days=1000))) == 1
