"""The emulator's fault options the fault suite relies on (raw HTTP, no SDK): the Nth matching
request, a lost response after a committed write, a dropped connection, a held request."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from emulator import scenario
from emulator.providers.containerservice import BUSY_STATES
from emulator.server import Emulator
from tests.contract.test_arm_behaviour import API, CLUSTER_PATH, get, http

__all__ = ["http"]  # the fixture, used by name


def test_skip_lets_the_first_matches_through_and_faults_the_next(
    emulator: Emulator, http: requests.Session
) -> None:
    fault = emulator.inject(f"^{CLUSTER_PATH}$", method="GET", status=500, times=1, skip=2)
    statuses = [get(http, emulator, CLUSTER_PATH).status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]
    assert fault.hits == 1


def test_a_lost_response_commits_the_write_and_answers_the_fault(
    emulator: Emulator, sample: dict[str, Any], http: requests.Session
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    body = {"location": cluster["location"], "properties": cluster["properties"]}
    body["tags"] = {"changed": "yes"}
    emulator.inject(f"^{CLUSTER_PATH}$", method="PUT", status=500, after_commit=True, times=1)
    response = http.put(emulator.base_url + CLUSTER_PATH, params=API, json=body, timeout=5)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalServerError"
    # ... and yet the write happened: the cluster changed and its operation runs.
    stored = scenario.find_cluster(emulator.state, "aks-prod-weu")
    assert stored["tags"] == {"changed": "yes"}
    assert stored["properties"]["provisioningState"] in ("Updating", *BUSY_STATES)


@pytest.mark.parametrize("after_commit", [False, True])
def test_drop_closes_the_connection_without_an_answer(
    emulator: Emulator, http: requests.Session, after_commit: bool
) -> None:
    emulator.inject(f"^{CLUSTER_PATH}$", method="GET", drop=True, after_commit=after_commit)
    with pytest.raises(requests.ConnectionError):
        get(http, emulator, CLUSTER_PATH)
    [entry] = emulator.journal("arm")
    assert entry.status == 0  # no answer was sent


def test_an_operation_nobody_polls_ends_on_its_own_when_told_to(
    emulator: Emulator, sample: dict[str, Any], http: requests.Session
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    body = {"location": cluster["location"], "properties": cluster["properties"]}
    assert http.put(emulator.base_url + CLUSTER_PATH, params=API, json=body, timeout=5).ok
    assert get(http, emulator, CLUSTER_PATH).json()["properties"]["provisioningState"] == "Updating"
    emulator.state.operation_seconds = 0.2
    time.sleep(0.3)
    assert get(http, emulator, CLUSTER_PATH).json()["properties"]["provisioningState"] == (
        "Succeeded"
    )


def test_release_ends_a_held_request_early(emulator: Emulator, http: requests.Session) -> None:
    fault = emulator.inject(f"^{CLUSTER_PATH}$", method="GET", latency=30, times=1)
    statuses: list[int] = []
    worker = threading.Thread(
        target=lambda: statuses.append(get(http, emulator, CLUSTER_PATH).status_code)
    )
    started = time.monotonic()
    worker.start()
    while fault.hits == 0:
        time.sleep(0.01)
    emulator.release_faults()
    worker.join(10)
    assert statuses == [200]
    assert time.monotonic() - started < 10
