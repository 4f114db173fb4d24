"""In Azure the planners write each batch straight to the host's queue as it is planned (the
output binding would write them all when the function returns): against Azurite's real Queue
service, base64 as the host's queue trigger reads them, and the worker takes them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.azurite import Azurite
from emulator.server import Emulator
from tests.conftest import PROD_SUB, SANDBOX_SUB
from tests.support.triggers import Captured, drain_batches, ticket_policy, timer

__all__ = ["ticket_policy"]  # the fixture, used by name

BATCHES = "sweep-batches"


@pytest.fixture
def host_queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from azure.storage.queue import QueueClient

    with Azurite(service="queue") as queues:
        QueueClient.from_connection_string(queues.connection_string, BATCHES).create_queue()
        monkeypatch.setenv("AzureWebJobsStorage", queues.connection_string)
        yield QueueClient.from_connection_string(queues.connection_string, BATCHES)


def test_the_planner_writes_each_batch_to_the_hosts_queue_in_base64(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    host_queues: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB}")
    monkeypatch.setenv("FLEET_BATCH_SIZE", "1")
    binding = Captured()
    functions["drift_sweep"].get_user_function()(timer(), binding)
    assert binding.messages() == []  # nothing left for the binding to write at return
    raw = [m.content for m in host_queues.receive_messages(max_messages=32)]
    bodies = [base64.b64decode(text, validate=True).decode() for text in raw]
    messages = [json.loads(body) for body in bodies]
    assert sorted(c["name"] for m in messages for c in m["clusters"]) == [
        "aks-batch-weu",
        "aks-dev-neu",
        "aks-prod-weu",
    ]
    assert {m["subscription"] for m in messages} == {PROD_SUB, SANDBOX_SUB}
    # What the host hands the queue trigger (decoded) is a batch the worker checks.
    assert drain_batches(functions, bodies[:1]) == []


def test_without_the_hosts_storage_the_binding_writes_the_batches(
    emulator: Emulator, sample: dict[str, Any], ticket_policy: Any, functions: dict[str, Any]
) -> None:
    binding = Captured()
    functions["drift_sweep"].get_user_function()(timer(), binding)
    assert [json.loads(m)["sweep"] for m in binding.messages()] == ["drift"]
