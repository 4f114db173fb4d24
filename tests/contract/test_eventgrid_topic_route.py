"""Contract tests for the emulator's Event Grid custom topic: what the SDK sends is accepted, and
bad auth, content types and CloudEvents are rejected as Event Grid rejects them."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from emulator import eventgrid_topic as eg
from emulator.server import Emulator

BATCH = "application/cloudevents-batch+json; charset=utf-8"


def event(**overrides: Any) -> dict[str, Any]:
    base = {
        "specversion": "1.0",
        "id": "1",
        "source": "/acr-pull-remediator/x",
        "type": "t",
        "data": {},
    }
    return {**base, **overrides}


def post(
    emulator: Emulator, body: Any, headers: dict[str, str], version: str = "2018-01-01"
) -> requests.Response:
    return requests.post(
        eg.topic_endpoint(emulator.base_url, "outcomes"),
        params={"api-version": version},
        json=body,
        headers={"Content-Type": BATCH, **headers},
        verify=emulator.ca_path,
        timeout=10,
    )


def test_the_sdk_publishes_with_a_key(emulator: Emulator, app_env: dict[str, str]) -> None:
    from azure.core.credentials import AzureKeyCredential
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridPublisherClient

    key = eg.add_topic(emulator.state, "outcomes")
    client = EventGridPublisherClient(
        eg.topic_endpoint(emulator.base_url, "outcomes"), AzureKeyCredential(key)
    )
    client.send(
        [CloudEvent(source="/s", type="t", data={"a": 1}, extensions={"correlationid": "c"})],
        connection_verify=os.environ["AZURE_CA_BUNDLE"],
    )
    (stored,) = eg.topic_events(emulator.state, "outcomes")
    assert (
        stored["data"] == {"a": 1}
        and stored["correlationid"] == "c"
        and stored["specversion"] == "1.0"
    )


@pytest.mark.parametrize(
    "headers", [{}, {"aeg-sas-key": "wrong"}, {"Authorization": "Bearer not-issued"}]
)
def test_bad_auth_is_401(emulator: Emulator, headers: dict[str, str]) -> None:
    eg.add_topic(emulator.state, "outcomes")
    response = post(emulator, [event()], headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "Unauthorized")
    assert eg.topic_events(emulator.state, "outcomes") == []


def test_a_token_for_another_audience_is_401(emulator: Emulator) -> None:
    eg.add_topic(emulator.state, "outcomes")
    arm_token = emulator.state.issue_token("https://management.azure.com")
    assert post(emulator, [event()], {"Authorization": f"Bearer {arm_token}"}).status_code == 401
    eventgrid_token = emulator.state.issue_token("https://eventgrid.azure.net")
    assert (
        post(emulator, [event()], {"Authorization": f"Bearer {eventgrid_token}"}).status_code == 200
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([event(specversion="0.3")], "specversion must be '1.0'"),
        ([event(id="")], "Required property 'id' was not set."),
        (
            [{k: v for k, v in event().items() if k != "source"}],
            "Required property 'source' was not set.",
        ),
        ([event(type=None)], "Required property 'type' was not set."),
        ([event(time="yesterday")], "is not an RFC 3339 timestamp"),
        ([event(CorrelationId="c")], "must be 1-20 lowercase letters or digits"),
        ([event(data_base64="AA==")], "both data and data_base64"),
        (event(), "A CloudEvents batch must be a JSON array."),
        (["not an object"], "an event must be a JSON object."),
    ],
)
def test_invalid_cloud_events_are_400(emulator: Emulator, body: Any, message: str) -> None:
    key = eg.add_topic(emulator.state, "outcomes")
    response = post(emulator, body, {"aeg-sas-key": key})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert eg.topic_events(emulator.state, "outcomes") == []


def test_content_type_api_version_size_and_unknown_topic(emulator: Emulator) -> None:
    key = eg.add_topic(emulator.state, "outcomes")
    auth = {"aeg-sas-key": key}
    assert (
        post(emulator, [event()], {**auth, "Content-Type": "application/json"}).status_code == 400
    )
    assert post(emulator, [event()], auth, version="2024-06-01").status_code == 400
    huge = [event(data={"x": "y" * (1024 * 1024)})]
    assert post(emulator, huge, auth).status_code == 413
    single = post(
        emulator, event(id="solo"), {**auth, "Content-Type": "application/cloudevents+json"}
    )
    assert single.status_code == 200
    assert [e["id"] for e in eg.topic_events(emulator.state, "outcomes")] == ["solo"]
    missing = requests.post(
        eg.topic_endpoint(emulator.base_url, "nope"),
        params={"api-version": "2018-01-01"},
        json=[event()],
        headers={"Content-Type": BATCH, **auth},
        verify=emulator.ca_path,
        timeout=10,
    )
    assert missing.status_code == 404


def test_injected_faults_apply(emulator: Emulator) -> None:
    key = eg.add_topic(emulator.state, "outcomes")
    emulator.inject(r"^/eventgrid/", status=500, times=1)
    assert post(emulator, [event()], {"aeg-sas-key": key}).status_code == 500
    assert post(emulator, [event()], {"aeg-sas-key": key}).status_code == 200
