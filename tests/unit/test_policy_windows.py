"""Maintenance windows: inside/outside, past midnight, time zones and DST, and the deferral time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.models import Cluster
from shared.policy import MaintenanceWindow, Policy, decide, parse_policy

AMS = ZoneInfo("Europe/Amsterdam")
CLUSTER = Cluster(
    id="/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
    name="aks-prod-weu",
    location="westeurope",
    node_resource_group="MC_rg-prod-weu_aks-prod-weu_westeurope",
    node_pools=(),
    kubelet_identity=None,
    service_principal_client_id=None,
    provisioning_state="Succeeded",
)
POLICY = parse_policy(
    """
scopes:
  - name: prod
    match: {resourceGroups: [rg-prod-*]}
    mode: enforce
    actions: {attach-acr: auto}
    maintenanceWindows:
      - {days: [mon, tue, wed, thu], start: "22:00", end: "04:00", timezone: Europe/Amsterdam}
      - {days: [sat], start: "00:00", end: "24:00", timezone: Europe/Amsterdam}
"""
)
[NIGHTS, SATURDAY] = POLICY.scopes[0].maintenance_windows


class NoHistory:
    def actions_since(self, cluster_id: str, since: datetime) -> int:
        return 0

    def last_action(self, cluster_id: str, action_id: str) -> datetime | None:
        return None


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (at(2025, 11, 24, 22, 0), True),  # Monday 22:00 opens
        (at(2025, 11, 24, 21, 59), False),
        (at(2025, 11, 25, 3, 59), True),  # Tuesday early morning: Monday's window
        (at(2025, 11, 25, 4, 0), False),  # end is exclusive
        (at(2025, 11, 28, 2, 0), True),  # Friday 02:00: Thursday's window still open
        (at(2025, 11, 28, 22, 30), False),  # Friday evening: no window opens on Friday
        (at(2025, 11, 24, 2, 0), False),  # Monday 02:00: Sunday opened none
        (at(2025, 11, 29, 12, 0), True),  # Saturday all day
        (at(2025, 11, 29, 23, 59), True),
        (at(2025, 11, 30, 0, 0), False),  # Sunday 00:00: 24:00 is the end of Saturday
    ],
)
def test_inside_and_outside_in_the_windows_time_zone(when: datetime, inside: bool) -> None:
    assert any(w.contains(when) for w in (NIGHTS, SATURDAY)) is inside
    assert any(w.contains(when.astimezone(UTC)) for w in (NIGHTS, SATURDAY)) is inside


def test_the_time_zone_follows_daylight_saving() -> None:
    # 21:30 UTC is 22:30 in Amsterdam in winter (inside) but 23:30 in summer (inside);
    # 20:30 UTC is 22:30 in summer (inside) and 21:30 in winter (outside).
    assert NIGHTS.contains(datetime(2025, 7, 14, 20, 30, tzinfo=UTC))
    assert not NIGHTS.contains(datetime(2025, 11, 24, 20, 30, tzinfo=UTC))


def test_outside_the_windows_an_auto_action_is_deferred_to_a_ticket() -> None:
    friday_noon = at(2025, 11, 28, 12, 0)
    decision = decide(
        POLICY,
        action_id="attach-acr",
        cause_id="acrpull-missing",
        cluster=CLUSTER,
        fixable=True,
        now=friday_noon,
        counters=NoHistory(),
    )
    assert (decision.kind, decision.reason) == (
        "ticket",
        "ticket: outside the maintenance windows of scope prod",
    )
    assert decision.retry_after == at(2025, 11, 29, 0, 0)  # Saturday's window opens first
    inside = decide(
        POLICY,
        action_id="attach-acr",
        cause_id="acrpull-missing",
        cluster=CLUSTER,
        fixable=True,
        now=at(2025, 11, 27, 23, 0),
        counters=NoHistory(),
    )
    assert inside.kind == "auto"


def test_windows_only_gate_automatic_actions() -> None:
    ticket = decide(
        POLICY,
        action_id="rotate-sp-secret",
        cause_id="sp-secret-expired",
        cluster=CLUSTER,
        fixable=True,
        now=at(2025, 11, 28, 12, 0),
        counters=NoHistory(),
    )
    assert ticket.reason == "ticket: rotate-sp-secret is `ticket` in scope prod"
    assert ticket.retry_after is None


def test_next_start_is_the_next_opening_after_now() -> None:
    assert NIGHTS.next_start(at(2025, 11, 24, 21, 0)) == at(2025, 11, 24, 22, 0)
    assert NIGHTS.next_start(at(2025, 11, 24, 22, 0)) == at(2025, 11, 25, 22, 0)
    assert NIGHTS.next_start(at(2025, 11, 27, 23, 0)) == at(2025, 12, 1, 22, 0)  # Thu -> Mon
    assert NIGHTS.describe() == "mon,tue,wed,thu 22:00-04:00 Europe/Amsterdam"


def test_windows_default_to_every_day_in_utc() -> None:
    policy: Policy = parse_policy("maintenanceWindows: [{start: '01:00', end: '02:00'}]\n")
    [window] = policy.default.maintenance_windows
    assert window == MaintenanceWindow(frozenset(range(7)), 60, 120, "UTC")
    sunday = datetime(2025, 11, 30, 1, 30, tzinfo=UTC)
    assert window.contains(sunday)
    assert not window.contains(sunday + timedelta(hours=1))
