"""Decide, act, verify, ticket, audit, publish: the response to a finding, end to end.

Every test goes through the indexed Event Grid function, the real SDK clients, the emulator and
Azurite, and asserts on what they hold (ARM writes, GitHub issues, published CloudEvents, audit
rows), not on our own return values alone.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator import scenario
from emulator.eventgrid_topic import topic_environment, topic_events
from emulator.providers.containerservice import reattach_kubelet_identity
from emulator.server import Emulator
from emulator.tickets import github_comments, github_issues
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.config import Settings
from shared.engine import RetryLater
from tests.support.events import arm_event, trigger_object

VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
CLUSTER = "aks-prod-weu"


def deliver(functions: dict[str, Any], payload: dict[str, Any]) -> None:
    functions["arm_events"].get_user_function()(trigger_object(payload))


def outcomes(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage()[len("outcome ") :])
        for r in caplog.records
        if r.getMessage().startswith("outcome ")
    ]


def cluster_puts(emulator: Emulator) -> list[str]:
    return [
        e.path for e in emulator.journal("arm") if e.method == "PUT" and "managedClusters" in e.path
    ]


def vmss_event(emulator: Emulator, **kwargs: Any) -> dict[str, Any]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    return arm_event(
        scenario.node_pool_vmss(emulator.state, cluster)[0]["id"], VMSS_WRITE, **kwargs
    )


def store() -> TableStateStore:
    import os

    return TableStateStore.from_factory(ClientFactory(Settings.from_env(os.environ)))


@pytest.fixture
def broken(emulator: Emulator, sample: dict[str, Any]) -> None:
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-detached", "cluster": CLUSTER})


def test_the_same_event_delivered_five_times_acts_once(
    emulator: Emulator,
    broken: None,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = vmss_event(emulator, event_id="evt-5x")
    with caplog.at_level(logging.INFO, logger="shared.runtime"):
        for _ in range(5):
            deliver(functions, event)
    verdicts = [o["verdict"] for o in outcomes(caplog)]
    assert verdicts == ["remediated"] + ["ignored"] * 4
    assert all("already handled" in o["reason"] for o in outcomes(caplog)[1:])
    assert len(cluster_puts(emulator)) == 1


def test_two_workers_on_one_cluster_make_one_remediation(
    emulator: Emulator,
    broken: None,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Slow the reconcile down so the second worker arrives while the first one acts.
    emulator.inject(r"/managedClusters/aks-prod-weu$", method="PUT", latency=1.0)
    errors: dict[str, BaseException] = {}

    def worker(event_id: str) -> None:
        try:
            deliver(functions, vmss_event(emulator, event_id=event_id))
        except BaseException as exc:  # surfaced below
            errors[event_id] = exc

    with caplog.at_level(logging.INFO, logger="shared.runtime"):
        threads = [threading.Thread(target=worker, args=(f"evt-{n}",)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(cluster_puts(emulator)) == 1
    verdicts = sorted(o["verdict"] for o in outcomes(caplog))
    assert verdicts in (["deferred", "remediated"], ["remediated", "remediated"])
    if verdicts == ["remediated", "remediated"]:
        # The later worker found it fixed on its re-check and did not act again.
        assert errors == {}
        assert any("fixed before we acted" in o["reason"] for o in outcomes(caplog))
        return
    # The deferred delivery failed, so Event Grid delivers it again; that delivery runs.
    [(event_id, error)] = errors.items()
    assert isinstance(error, RetryLater), error
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared.runtime"):
        deliver(functions, vmss_event(emulator, event_id=event_id))
    assert [o["verdict"] for o in outcomes(caplog)] == ["healthy"]
    assert len(cluster_puts(emulator)) == 1


def test_outcome_events_for_one_remediation_are_documented_cloudevents_in_order(
    emulator: Emulator,
    broken: None,
    app_env: dict[str, str],
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in topic_environment(emulator, "outcomes", auth="key").items():
        monkeypatch.setenv(key, value)
    deliver(functions, vmss_event(emulator, event_id="evt-events"))
    events = topic_events(emulator.state, "outcomes")
    assert [e["type"] for e in events] == [
        "com.acrpullremediator.finding",
        "com.acrpullremediator.action.applied",
        "com.acrpullremediator.verification",
    ]
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["source"].startswith("/acr-pull-remediator/")
        assert event["subject"].lower() == cluster_id.lower()
        assert event["id"] and event["time"]
        assert event["correlationid"] == events[0]["correlationid"]
    assert events[0]["data"]["status"] == "FAIL"
    assert events[1]["data"] == {
        "action": "reconcile-cluster",
        "status": "applied",
        "detail": "the reconcile operation succeeded",
    }
    assert events[2]["data"]["status"] == "PASS"


def test_a_ticket_is_opened_commented_on_recurrence_and_closed_on_recovery(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")  # plans and tickets, changes nothing
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-detached", "cluster": CLUSTER})
    deliver(functions, vmss_event(emulator, event_id="evt-a"))
    deliver(functions, vmss_event(emulator, event_id="evt-b"))
    [issue] = github_issues(emulator.state)
    assert issue["title"] == "[acr-pull] kubelet-identity-detached on aks-prod-weu"
    assert issue["state"] == "open"
    assert "az aks update -g rg-aks-prod -n aks-prod-weu" in issue["body"]
    assert "REMEDIATION_MODE=dry-run" in issue["body"]
    assert "acr-pull" in [label["name"] for label in issue["labels"]]
    assert len(github_comments(emulator.state, issue["number"])) == 1  # the recurrence
    assert cluster_puts(emulator) == []

    reattach_kubelet_identity(emulator.state, scenario.find_cluster(emulator.state, CLUSTER)["id"])
    deliver(functions, vmss_event(emulator, event_id="evt-c"))
    [issue] = github_issues(emulator.state)
    assert issue["state"] == "closed"
    assert "passes again" in github_comments(emulator.state, issue["number"])[-1]["body"]


def test_every_decision_is_audited_with_its_reason(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
) -> None:
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-deleted", "cluster": CLUSTER})
    deliver(functions, vmss_event(emulator, event_id="evt-audit"))
    records = store().list_audit(datetime.now(UTC) - timedelta(minutes=5))
    [record] = [r for r in records if r.signal_id == "evt-audit"]
    assert record.cause_id == "kubelet-identity-detached"
    assert record.decision == "ticket"
    assert record.reason == "ticket: no safe automatic fix for kubelet-identity-detached"
    assert record.before["status"] == "FAIL"
    assert record.result == "ticketed"
    assert record.correlation_id
