"""A cluster busy with another operation, and a cluster changed under our feet.

AKS answers 409 OperationNotAllowed to a write while an upgrade, a scale or another reconcile
runs, and 412 to a PUT whose If-Match no longer holds. The product turns the first into a
deferred action (no ticket, no counted action, the event delivered again) and answers the second
by reading the cluster again, never by overwriting what changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator import scenario
from emulator.providers.containerservice import finish_operation, start_operation
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.azure.tables import TableStateStore
from shared.engine import RetryLater
from tests.support.estate import fresh_estate
from tests.support.events import arm_event
from tests.support.triggers import deliver_event

VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
CLUSTER = "aks-prod-weu"


@pytest.fixture
def detached(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-detached", "cluster": CLUSTER})
    return scenario.find_cluster(emulator.state, CLUSTER)


def vmss_event(emulator: Emulator, cluster: dict[str, Any], event_id: str) -> dict[str, Any]:
    vmss = scenario.node_pool_vmss(emulator.state, cluster)[0]
    return arm_event(vmss["id"], VMSS_WRITE, event_id=event_id)


def cluster_puts(emulator: Emulator) -> list[Any]:
    return [e for e in emulator.journal("arm") if e.method == "PUT" and "managedClusters" in e.path]


def test_a_busy_cluster_defers_the_reconcile_and_the_redelivery_fixes_it(
    emulator: Emulator,
    detached: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    start_operation(emulator.state, detached["id"], "Upgrading")
    event = vmss_event(emulator, detached, "evt-during-upgrade")
    with pytest.raises(RetryLater, match="busy"):
        deliver_event(functions, "arm_events", event, caplog)
    [put] = cluster_puts(emulator)
    assert put.status == 409  # AKS refused; nothing changed
    assert github_issues(emulator.state) == []  # no ticket for a cluster that is only busy
    store = TableStateStore.from_factory(fresh_estate().factory)
    assert (
        store.actions_since(detached["id"], datetime.now(UTC) - timedelta(hours=1)) == 0
    )  # not counted against limits

    finish_operation(emulator.state, detached["id"])  # the upgrade is over
    emulator.clear_journal()
    [outcome] = deliver_event(functions, "arm_events", event, caplog)  # Event Grid's retry
    assert outcome["verdict"] == "remediated", outcome["reason"]
    assert [p.status for p in cluster_puts(emulator)] == [200]


def test_the_reconcile_sends_if_match_and_reads_again_after_a_412(
    emulator: Emulator,
    detached: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Someone changed the cluster between our GET and our PUT: the first PUT is refused.
    emulator.inject(rf"/managedClusters/{CLUSTER}$", method="PUT", status=412, times=1)
    [outcome] = deliver_event(
        functions, "arm_events", vmss_event(emulator, detached, "evt-412"), caplog
    )
    assert outcome["verdict"] == "remediated", outcome["reason"]
    puts = cluster_puts(emulator)
    assert [p.status for p in puts] == [412, 200]
    current = scenario.find_cluster(emulator.state, CLUSTER)
    assert all(p.if_match for p in puts)  # never a blind overwrite
    assert puts[-1].if_match != current["eTag"]  # the write itself gave it a new eTag
