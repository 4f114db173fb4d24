"""At least once, end to end: the three ways main lost work, each reproduced and now converging.

1. A deferred event (the cluster's lease is held by another worker) fails its delivery, so Event
   Grid delivers it again, and that delivery fixes the cluster.
2. A worker killed mid-run (SIGKILL of a real child process) leaves a claim that expires; the
   redelivery runs the event again instead of answering "already handled".
3. A pair whose only link was the AcrPull assignment that was deleted stays known: the drift
   sweep and the role-assignment event still check it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import ResourceNotFoundError

from emulator import scenario
from emulator.providers import authorization as authz
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.config import Settings
from shared.engine import RetryLater
from shared.store import ClaimState
from shared.store.keys import text_key
from tests.support.events import arm_event
from tests.support.triggers import deliver_event, run_timer, ticket_policy

__all__ = ["ticket_policy"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
CLUSTER, BATCH, REGISTRY = "aks-prod-weu", "aks-batch-weu", "acrprodweu"


def store() -> TableStateStore:
    return TableStateStore.from_factory(ClientFactory(Settings.from_env(os.environ)))


def pull_assignments(emulator: Emulator, cluster: str) -> list[dict[str, Any]]:
    principal = scenario.find_cluster(emulator.state, cluster)["properties"]["identityProfile"][
        "kubeletidentity"
    ]["objectId"].lower()
    return [
        a for a in authz.assignments(emulator.state) if a["properties"]["principalId"] == principal
    ]


def deleted_event(emulator: Emulator, event_id: str) -> dict[str, Any]:
    """The event ARM publishes when the AcrPull assignment on the registry is deleted."""
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"]
    assignment = f"{registry}/providers/Microsoft.Authorization/roleAssignments/{event_id}"
    return arm_event(
        assignment,
        ROLE_ASSIGNMENT_DELETE,
        event_type="Microsoft.Resources.ResourceDeleteSuccess",
        event_id=event_id,
    )


@pytest.fixture
def attach_policy(ticket_policy: Path) -> Path:
    """Tickets for every fix, but attach-acr is `auto`: the fix shows in the emulator's state."""
    text = ticket_policy.read_text(encoding="utf-8").replace(
        "attach-acr: ticket", "attach-acr: auto"
    )
    ticket_policy.write_text(text, encoding="utf-8")
    return ticket_policy


# -- 1. a deferred event is delivered again -------------------------------------------------------


def test_a_deferred_event_fails_its_delivery_and_the_redelivery_fixes_it(
    emulator: Emulator,
    sample: dict[str, Any],
    attach_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": CLUSTER})
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    # Another worker is acting on the cluster (the VMSS write event that arrived with this one).
    other = store().acquire_lease(cluster_id, "instance-handling-the-vmss-write", 300)
    assert other is not None
    event = deleted_event(emulator, "evt-acrpull-deleted")

    with pytest.raises(RetryLater, match="owns the lease"):
        deliver_event(functions, "arm_events", event, caplog)
    assert pull_assignments(emulator, CLUSTER) == []
    claim = store().start_event("evt-acrpull-deleted", 60)
    assert claim.state is ClaimState.CLAIMED  # not marked done: the delivery failed
    store().abandon_event(claim)

    store().release(other)  # the other worker finished
    outcomes = deliver_event(functions, "arm_events", event, caplog)  # Event Grid's retry
    prod = next(o for o in outcomes if o["cluster"] == cluster_id)
    assert prod["verdict"] == "remediated", prod["reason"]
    assert [a["action"] for a in prod["actions"]] == ["attach-acr"]
    assert len(pull_assignments(emulator, CLUSTER)) == 1
    # And now it is done: a further duplicate is ignored.
    again = deliver_event(functions, "arm_events", event, caplog)
    assert [o["verdict"] for o in again] == ["ignored"]
    assert "already handled" in again[0]["reason"]


# -- 2. a killed worker ---------------------------------------------------------------------------

WORKER = """
import json, sys
import function_app
from tests.support.events import trigger_object
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
functions[sys.argv[1]].get_user_function()(trigger_object(json.load(sys.stdin)))
"""


def start_worker(function: str, payload: dict[str, Any]) -> subprocess.Popen[bytes]:
    """A separate Python process that invokes the indexed function, as a worker host would."""
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, function],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None
    child.stdin.write(json.dumps(payload).encode())
    child.stdin.close()
    return child


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_a_worker_killed_mid_run_does_not_lose_its_event(
    emulator: Emulator,
    sample: dict[str, Any],
    attach_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVENT_LEASE_SECONDS", "3")
    # The slow read is the responder's re-read of the cluster, under the cluster's lease: the
    # dead worker's lease on the cluster must expire too.
    monkeypatch.setenv("CLUSTER_LEASE_SECONDS", "3")
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": CLUSTER})
    event = deleted_event(emulator, "evt-killed-worker")
    # The worker is slow to read the cluster, long enough to be killed in the middle.
    emulator.inject(r"/managedClusters/aks-prod-weu$", method="GET", latency=15.0, times=1)
    child = start_worker("arm_events", event)

    def claimed() -> bool:
        """The child's claim row exists (read only: a probe that claimed would race the child)."""
        settings = Settings.from_env(os.environ)
        table = (
            ClientFactory(settings)
            .table_service()
            .get_table_client(f"{settings.state_table_prefix}Events")
        )
        key = text_key("evt-killed-worker")
        try:
            return table.get_entity(key[:2], key)["State"] == "in-progress"
        except (ResourceNotFoundError, KeyError):
            return False

    wait_for(claimed, timeout=120)
    time.sleep(0.5)
    child.send_signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    assert pull_assignments(emulator, CLUSTER) == []

    # A redelivery while the dead worker's claim holds is retried later, not dropped...
    with pytest.raises(RetryLater, match="being handled by another delivery"):
        deliver_event(functions, "arm_events", event, caplog)
    time.sleep(3.2)
    # ... and once it expired, the redelivery runs the event and fixes the cluster.
    outcomes = deliver_event(functions, "arm_events", event, caplog)
    prod = next(o for o in outcomes if o["cluster"].endswith(f"/{CLUSTER}"))
    assert prod["verdict"] == "remediated", prod["reason"]
    assert len(pull_assignments(emulator, CLUSTER)) == 1


# -- 3. pairs are remembered ----------------------------------------------------------------------


@pytest.fixture
def idle_batch(emulator: Emulator) -> dict[str, Any]:
    """The sample estate, with aks-batch-weu running nothing yet (attached, no workloads)."""
    spec = yaml.safe_load((ROOT / "emulator/scenarios/sample.yaml").read_text(encoding="utf-8"))
    for subscription in spec["subscriptions"]:
        for group in subscription.get("resourceGroups", []):
            for cluster in group.get("clusters", []):
                if cluster["name"] == BATCH:
                    cluster.pop("workloads", None)
    return scenario.load(emulator.state, spec)


def batch_outcome(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in outcomes if o["cluster"].endswith(f"/{BATCH}"))


def test_the_drift_sweep_still_checks_a_pair_whose_assignment_was_deleted(
    emulator: Emulator,
    idle_batch: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, _ = run_timer(functions, "drift_sweep", caplog)
    assert not [f for f in batch_outcome(first)["findings"] if f["status"] == "FAIL"]
    [pair] = [p for p in store().list_pairs() if p.cluster_id.endswith(f"/{BATCH}")]
    assert pair.sources == {"role-assignment"}

    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": BATCH})
    second, _ = run_timer(functions, "drift_sweep", caplog)

    batch = batch_outcome(second)
    failed = [f["cause"] for f in batch["findings"] if f["status"] == "FAIL"]
    assert failed == ["acrpull-missing"], batch["reason"]
    titles = [i["title"] for i in github_issues(emulator.state)]
    assert titles == [f"[acr-pull] acrpull-missing on {BATCH}"]


def test_the_role_assignment_event_reaches_a_remembered_pair(
    emulator: Emulator,
    idle_batch: dict[str, Any],
    attach_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_timer(functions, "drift_sweep", caplog)  # the product has seen the estate before
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": BATCH})
    outcomes = deliver_event(functions, "arm_events", deleted_event(emulator, "evt-rm"), caplog)
    batch = batch_outcome(outcomes)
    assert batch["verdict"] == "remediated", batch["reason"]
    assert len(pull_assignments(emulator, BATCH)) == 1


def test_a_pair_the_policy_names_is_checked_though_never_found(
    emulator: Emulator,
    idle_batch: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": BATCH})
    cluster_id = scenario.find_cluster(emulator.state, BATCH)["id"]
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    known = f"pairs:\n  known:\n    - {{cluster: {cluster_id}, registry: {registry_id}}}\n"
    ticket_policy.write_text(ticket_policy.read_text(encoding="utf-8") + known, encoding="utf-8")

    outcomes, _ = run_timer(functions, "drift_sweep", caplog)
    failed = [f["cause"] for f in batch_outcome(outcomes)["findings"] if f["status"] == "FAIL"]
    assert failed == ["acrpull-missing"]


def test_a_pair_is_forgotten_when_its_registry_is_gone(
    emulator: Emulator,
    idle_batch: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_timer(functions, "drift_sweep", caplog)
    assert len(store().list_pairs()) == 2
    registry = scenario.find_registry(emulator.state, REGISTRY)
    for assignment in authz.assignments(emulator.state):
        if assignment["properties"]["scope"].lower().startswith(registry["id"].lower()):
            emulator.state.delete(assignment["id"])
    emulator.state.delete(registry["id"])
    run_timer(functions, "drift_sweep", caplog)
    assert store().list_pairs() == []


# -- a ticket system that refuses for good ---------------------------------------------------------


def test_a_ticket_system_refusing_for_good_is_reported_and_the_drift_sweep_tries_again(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A revoked token (401) will not heal by redelivery: the event is done, the outcome and the
    audit log say the ticket was not opened and why, and the drift sweep, which finds the problem
    again every run, opens it once the token works."""
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": CLUSTER})
    refusal = emulator.inject(r"^/github/", status=401)
    outcomes = deliver_event(functions, "arm_events", deleted_event(emulator, "evt-401"), caplog)

    [outcome] = [o for o in outcomes if o["cluster"].endswith(f"/{CLUSTER}")]
    assert outcome["verdict"] == "needs-attention"
    [failed] = [f for f in outcome["findings"] if f["status"] == "FAIL"]
    assert failed["cause"] == "acrpull-missing"
    assert "ticket not opened: GitHub rejected the credential" in outcome["reason"]
    assert "GitHub rejected the credential" in caplog.text
    assert store().start_event("evt-401", 60).state is ClaimState.DONE  # retrying cannot help
    assert refusal.hits > 0

    emulator.release_faults()
    emulator.state.faults.clear()
    run_timer(functions, "drift_sweep", caplog)
    titles = [i["title"] for i in github_issues(emulator.state)]
    assert titles == [f"[acr-pull] acrpull-missing on {CLUSTER}"]
