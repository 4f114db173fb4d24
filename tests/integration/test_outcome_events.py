"""Outcome events published with the real EventGridPublisherClient to the emulator's custom topic."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from emulator import eventgrid_topic
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status
from shared.config import Settings
from shared.outcome_events import EventKind, NullPublisher, OutcomePublisher, outcome_publisher
from shared.remediations.base import ActionRecord, Plan
from shared.tickets.model import TicketRef
from tests.support.ticket_index import CLUSTER_ID, finding, secret_values

CORRELATION = "evt-7d1e"


def publisher(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, auth: str) -> OutcomePublisher:
    for key, value in eventgrid_topic.topic_environment(emulator, "outcomes", auth=auth).items():
        monkeypatch.setenv(key, value)
    if auth != "key":
        monkeypatch.delenv("OUTCOME_TOPIC_KEY", raising=False)
    built = outcome_publisher(ClientFactory(Settings.from_env(os.environ)), source="arm_events")
    assert isinstance(built, OutcomePublisher)
    return built


def publish_loop(pub: OutcomePublisher) -> list[Any]:
    fail = finding(hostile=True)
    passed = Finding(fail.cause_id, Status.PASS, "AcrPull is assigned.", CLUSTER_ID, None)
    plan = Plan("attach-acr", "Assign AcrPull to the kubelet identity.", ("az aks update ...",))
    ticket = TicketRef("github", "4", "https://github.com/contoso/aks-platform/issues/4", "fp", "t")
    return [
        pub.publish(EventKind.FINDING, CLUSTER_ID, fail, correlation_id=CORRELATION),
        pub.publish("action.planned", CLUSTER_ID, plan, correlation_id=CORRELATION),
        pub.publish(
            EventKind.ACTION_APPLIED,
            CLUSTER_ID,
            ActionRecord("attach-acr", "applied", "role assignment created"),
            correlation_id=CORRELATION,
        ),
        pub.publish(EventKind.VERIFICATION, CLUSTER_ID, passed, correlation_id=CORRELATION),
        pub.publish(
            EventKind.TICKET_CLOSED, CLUSTER_ID, ticket.closed(), correlation_id=CORRELATION
        ),
    ]


@pytest.mark.parametrize("auth", ["key", "entra"])
def test_a_loop_arrives_in_order_with_documented_shapes(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, auth: str
) -> None:
    pub = publisher(monkeypatch, emulator, auth)

    assert publish_loop(pub) == [None] * 5

    events = eventgrid_topic.topic_events(emulator.state, "outcomes")
    assert [e["type"] for e in events] == [
        "com.acrpullremediator.finding",
        "com.acrpullremediator.action.planned",
        "com.acrpullremediator.action.applied",
        "com.acrpullremediator.verification",
        "com.acrpullremediator.ticket.closed",
    ]
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["source"] == "/acr-pull-remediator/arm_events"
        assert event["subject"] == CLUSTER_ID
        assert event["correlationid"] == CORRELATION
        assert event["datacontenttype"] == "application/json"
    assert len({e["id"] for e in events}) == 5
    assert events[0]["data"]["cause"] == "acrpull-missing" and events[0]["data"]["status"] == "FAIL"
    assert events[1]["data"]["action"] == "attach-acr"
    assert events[2]["data"] == {
        "action": "attach-acr",
        "status": "applied",
        "detail": "role assignment created",
    }
    assert events[3]["data"]["status"] == "PASS"
    assert events[4]["data"]["state"] == "closed" and events[4]["data"]["id"] == "4"
    requests = emulator.journal("eventgrid")
    assert [(r.method, r.api_version, r.status) for r in requests] == [
        ("POST", "2018-01-01", 200)
    ] * 5


def test_events_carry_no_secrets(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = publisher(monkeypatch, emulator, "key")
    publish_loop(pub)
    published = str(eventgrid_topic.topic_events(emulator.state, "outcomes"))
    assert "[redacted]" in published
    for secret in [*secret_values(), os.environ["OUTCOME_TOPIC_KEY"]]:
        assert secret not in published


def test_a_batch_is_one_request(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = publisher(monkeypatch, emulator, "key")
    with pub.batch() as failures:
        publish_loop(pub)
        assert eventgrid_topic.topic_events(emulator.state, "outcomes") == []
    assert failures == []
    assert len(eventgrid_topic.topic_events(emulator.state, "outcomes")) == 5
    assert len(emulator.journal("eventgrid")) == 1


def test_a_failing_topic_is_retried_then_recorded_never_raised(
    emulator: Emulator,
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pub = publisher(monkeypatch, emulator, "key")
    emulator.inject(r"^/eventgrid/topics/", status=500)

    with caplog.at_level(logging.WARNING, logger="shared.outcome_events"):
        results = publish_loop(pub)

    assert all(r is not None for r in results)
    assert results[0].types == ("com.acrpullremediator.finding",)
    assert "failed after retries (500)" in results[0].reason
    assert pub.failures == tuple(results)
    attempts = emulator.journal("eventgrid")
    # One try and three retries each (azure-core's retry_status bounds retries on a status).
    assert len(attempts) == 5 * 4
    assert all(a.status == 500 for a in attempts)
    assert eventgrid_topic.topic_events(emulator.state, "outcomes") == []
    assert "could not publish 1 outcome event(s) (com.acrpullremediator.finding)" in caplog.text


def test_a_transient_failure_recovers_within_the_retries(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = publisher(monkeypatch, emulator, "key")
    emulator.inject(r"^/eventgrid/topics/", status=503, times=2)
    assert pub.publish("finding", CLUSTER_ID, {"cause": "x"}, correlation_id="c") is None
    assert [a.status for a in emulator.journal("eventgrid")] == [503, 503, 200]


def test_a_wrong_key_is_recorded_as_a_failure(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTCOME_TOPIC_KEY", "not-the-key")
    eventgrid_topic.add_topic(emulator.state, "outcomes")
    monkeypatch.setenv(
        "OUTCOME_TOPIC_ENDPOINT", eventgrid_topic.topic_endpoint(emulator.base_url, "outcomes")
    )
    pub = outcome_publisher(ClientFactory(Settings.from_env(os.environ)), source="timer")
    failure = pub.publish("finding", CLUSTER_ID, {"cause": "x"}, correlation_id="c")
    assert failure is not None and "rejected the credential (401)" in failure.reason
    assert "not-the-key" not in failure.reason


def test_without_a_topic_nothing_is_sent(emulator: Emulator, app_env: dict[str, str]) -> None:
    pub = outcome_publisher(ClientFactory(Settings.from_env(os.environ)), source="timer")
    assert isinstance(pub, NullPublisher)
    assert pub.publish("ticket.opened", CLUSTER_ID, {}, correlation_id="c") is None
    with pytest.raises(ValueError, match="not-a-kind"):
        pub.publish("not-a-kind", CLUSTER_ID, {}, correlation_id="c")
    assert emulator.journal("eventgrid") == []
