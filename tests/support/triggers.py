"""Invoking the indexed functions as the Python worker does, with its own converters.

Timer, queue and HTTP trigger objects are decoded from what the host sends (``meta.Datum``);
queue output bindings are captured and encoded with the worker's out converter, then decoded
back into the messages the queue trigger receives, so a hand-over goes through the same
(de)serialisation as in Azure.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter, QueueMessageOutConverter
from azure.functions.timer import TimerRequestConverter

from emulator.server import Emulator
from tests.support.events import trigger_object

# Token endpoints and ARM/Kubernetes reads that are POSTs; everything else that is not a GET writes.
_READ_POSTS = (
    "/token",
    "/oauth2/exchange",
    "/listclusterusercredential",
    "/listcredentials",
    "/getbyids",
    "/getmemberobjects",
    "/microsoft.resourcegraph/resources",  # a Resource Graph query
)

TICKET_POLICY = """\
# Tests: every fix is ticketed, so each finding ends in a GitHub issue in the emulator.
mode: enforce
actions:
  attach-acr: ticket
  reconcile-cluster: ticket
  rotate-sp-secret: ticket
  refresh-pull-secret: ticket
  allow-egress-ip: ticket
  link-private-dns-zone: ticket
  set-pull-policy-if-not-present: ticket
  set-os-node-selector: ticket
rateLimit: {perClusterPerHour: 100}
cooldown: {minutes: 0}
tickets:
  provider: github
  route: {repo: contoso/aks-platform}
  labels: [acr-pull]
"""


class Captured(func.Out[Any]):
    """A queue output binding: what the function set, as the worker would hold it."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value

    def messages(self) -> list[str]:
        """The queue messages the host would write, via the worker's out converter."""
        if self.value is None:
            return []
        datum = QueueMessageOutConverter.encode(self.value, expected_type=None)
        if datum.type == "string":
            return [datum.value]
        return [m if isinstance(m, str) else m["body"] for m in json.loads(datum.value)]


def timer(past_due: bool = False) -> func.TimerRequest:
    body = json.dumps({"IsPastDue": past_due, "ScheduleStatus": {}, "Schedule": {}})
    request: func.TimerRequest = TimerRequestConverter.decode(
        meta.Datum(body, "json"), trigger_metadata={}
    )
    return request


def queue_message(body: str, dequeue_count: int = 1) -> func.QueueMessage:
    metadata = {
        "Id": meta.Datum(str(uuid.uuid4()), "string"),
        "DequeueCount": meta.Datum(dequeue_count, "int"),
        "PopReceipt": meta.Datum("AgAAAAMAAAAAAAAA", "string"),
    }
    message: func.QueueMessage = QueueMessageInConverter.decode(
        meta.Datum(body, "string"), trigger_metadata=metadata
    )
    return message


def http_post(route: str, body: bytes) -> func.HttpRequest:
    return func.HttpRequest(
        "POST",
        f"https://remediator.azurewebsites.net/api/{route}",
        headers={"Content-Type": "application/json"},
        body=body,
    )


def logged_outcomes(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage()[len("outcome ") :])
        for r in caplog.records
        if r.name == "shared.runtime" and r.getMessage().startswith("outcome ")
    ]


def deliver_event(
    functions: dict[str, Any],
    name: str,
    payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> list[dict[str, Any]]:
    """Invoke an Event Grid function with the worker's trigger object; the logged outcomes."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared"):
        functions[name].get_user_function()(trigger_object(payload))
    return logged_outcomes(caplog)


# Timers that plan: their output is batches for sweep_batch, which the host runs from the queue.
PLANNERS = ("drift_sweep", "expiry_sweep")


def run_timer(
    functions: dict[str, Any], name: str, caplog: pytest.LogCaptureFixture
) -> tuple[list[dict[str, Any]], list[str]]:
    """Invoke a timer function and, for a planner, every batch it queued (and their follow-up
    batches) as the host would; (logged outcomes, hand-over queue messages)."""
    caplog.clear()
    output = Captured()
    with caplog.at_level(logging.INFO, logger="shared"):
        functions[name].get_user_function()(timer(), output)
        if name not in PLANNERS:
            return logged_outcomes(caplog), output.messages()
        handed_over = drain_batches(functions, output.messages())
    return logged_outcomes(caplog), handed_over


def drain_batches(functions: dict[str, Any], batches: list[str], limit: int = 1000) -> list[str]:
    """Run ``sweep_batch`` on each batch message until none is left; the hand-over messages."""
    pending, handed_over = list(batches), []
    while pending:
        limit -= 1
        assert limit >= 0, "the batches never ran out"
        again, handover = Captured(), Captured()
        functions["sweep_batch"].get_user_function()(queue_message(pending.pop(0)), again, handover)
        pending += again.messages()
        handed_over += handover.messages()
    return handed_over


def process_handover(
    functions: dict[str, Any], messages: list[str], caplog: pytest.LogCaptureFixture
) -> list[dict[str, Any]]:
    """Feed queue messages to ``sweep_handover`` one by one; the logged outcomes."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared"):
        for body in messages:
            functions["sweep_handover"].get_user_function()(queue_message(body))
    return logged_outcomes(caplog)


def writes(emulator: Emulator) -> list[str]:
    """Requests that change something in the emulator (ARM, Graph, Kubernetes, tickets, topics)."""
    return [
        f"{e.method} {e.path}"
        for e in emulator.journal()
        if e.method in ("PUT", "PATCH", "DELETE")
        or (e.method == "POST" and not e.path.lower().endswith(_READ_POSTS))
    ]


@pytest.fixture
def ticket_policy(app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app settings of ``app_env``, with a policy that tickets every fix."""
    path = tmp_path / "ticket-all.yaml"
    path.write_text(TICKET_POLICY, encoding="utf-8")
    monkeypatch.setenv("POLICY_PATH", str(path))
    return path
