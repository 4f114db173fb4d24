"""The fault suite's machinery: record a clean run's remote calls, fault each one, redeliver, judge.

A *path* is one way work reaches a remediation (an Event Grid event, a queue hand-over) over an
estate broken for one cause. For each path the harness runs it once cleanly and reads the
emulator's journal: every remote call as (method, path, occurrence). Then, for each call and each
fault kind, it builds a fresh emulator, estate and state store, injects that fault at exactly that
call (``times=1``, a regex anchored to the path, ``skip`` for the Nth occurrence), delivers, and
delivers again as Azure would while the delivery fails (the same event id; after the claim's lease
expired when the worker was killed). Then it judges: fixed or ticketed, at most one ticket, no
duplicate role assignment, no orphaned Graph secret, no delivery that succeeded before its work was
done.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from emulator.azurite import Azurite
from emulator.providers import authorization as authz
from emulator.server import Emulator
from emulator.state import Fault
from emulator.tickets import github_issues
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.config import Settings
from shared.engine import RetryLater
from shared.store import ClaimState
from tests.support.events import trigger_object
from tests.support.triggers import queue_message

ROOT = Path(__file__).resolve().parents[2]
PROD_SUB = "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
# Short leases so a killed worker's claims run out within the suite; the deliveries of the suite
# take about a second, far less than either.
EVENT_LEASE = 2.0
CLUSTER_LEASE = 3.0
# Event Grid retries for 24 hours (30 attempts by default); a point that needs more than this
# many deliveries does not converge for the suite.
MAX_DELIVERIES = 8
# How long a killed worker's call is held open: far longer than it takes to kill it.
HOLD = 30.0
# Event Grid waits 10 s, 30 s, 1 min, ... before it delivers again; the suite waits a tenth of
# the first step, and its long-running operations end on their own after OPERATION seconds
# (as Azure's do, polled or not): so a deferral behind an operation costs a redelivery or two.
REDELIVERY_DELAY = 1.0
OPERATION = 1.5
# Operation ids in long-running-operation URLs are new in every run: match any.
_RANDOM_SEGMENTS = re.compile(
    r"(?<=/operations/)[0-9a-f-]{36}|(?<=/operationresults/)[0-9a-f-]{36}"
)


class Kind(StrEnum):
    """The faults Azure produces, one per kind."""

    ERROR_500 = "500"
    THROTTLED_429 = "429+Retry-After"
    TIMEOUT = "timeout (connection dropped)"
    LOST_RESPONSE = "lost response after commit"
    BUSY_409 = "409 OperationNotAllowed"
    KILL = "SIGKILL of the worker"


@dataclass(frozen=True)
class Call:
    """One remote call of a clean run: the ``occurrence``-th request with this method and path."""

    service: str
    method: str
    path: str
    occurrence: int

    @property
    def pattern(self) -> str:
        escaped = re.escape(self.path)
        return "^" + _RANDOM_SEGMENTS.sub("[0-9a-f-]{36}", escaped) + "$"

    @property
    def writes(self) -> bool:
        return self.method in ("PUT", "PATCH", "DELETE", "POST") and not self.path.lower().endswith(
            (
                "/token",
                "/oauth2/exchange",  # a registry token for an Entra one: nothing written
                "/listclusterusercredential",
                "/listcredentials",
                "/getbyids",
                "/microsoft.resourcegraph/resources",
            )
        )

    def __str__(self) -> str:
        nth = f" #{self.occurrence + 1}" if self.occurrence else ""
        return f"{self.method} {self.path}{nth}"


def calls_of(emulator: Emulator) -> list[Call]:
    """The journal as calls, each numbered among the calls with the same method and path."""
    seen: Counter[tuple[str, str]] = Counter()
    calls = []
    for entry in emulator.journal():
        key = (entry.method, _RANDOM_SEGMENTS.sub("*", entry.path))
        calls.append(Call(entry.service, entry.method, entry.path, seen[key]))
        seen[key] += 1
    return calls


@dataclass(frozen=True)
class Delivery:
    """What Azure hands the function, again and again: an Event Grid event or a queue message."""

    function: str
    payload: dict[str, Any] | str
    event_id: str | None  # claims are checked for events; a hand-over has none

    def invoke(self, functions: dict[str, Any]) -> None:
        user = functions[self.function].get_user_function()
        if isinstance(self.payload, str):
            user(queue_message(self.payload))
        else:
            user(trigger_object(self.payload))


@dataclass(frozen=True)
class ChaosPath:
    """One trigger path to one remediation over an estate broken for it."""

    name: str
    # Loads the estate and breaks it; returns what to deliver (calls made here are not faulted).
    prepare: Callable[[Emulator, dict[str, Any]], Delivery]
    # Is the problem gone? Read from the emulator's own state, not through the product.
    fixed: Callable[[Emulator], bool]
    # The policy text this path runs under.
    policy: str
    # The title a ticket for this problem has.
    ticket_title: str
    # App settings of this path beside the suite's own.
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    path: str
    kind: Kind
    call: Call
    fired: bool = False
    converged: bool = False
    deliveries: int = 0
    requests: int = 0
    seconds: float = 0.0
    outcome: str = ""  # fixed / ticketed
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        state = "converged" if self.converged else "DID NOT CONVERGE"
        detail = "; ".join(self.problems)
        return f"{self.path} / {self.kind} at {self.call}: {state} {detail}".rstrip()


@dataclass
class Tally:
    """Every point the session tried, for the summary line."""

    results: list[Result] = field(default_factory=list)

    def summary(self) -> list[str]:
        tried = [r for r in self.results if r.fired]
        if not self.results:
            return []
        converged = [r for r in tried if r.converged]
        kinds = sorted({str(r.kind) for r in tried})
        lines = [
            f"chaos: {len(tried)} fault points tried, {len(converged)} converged",
            f"chaos: kinds covered: {', '.join(kinds)}",
            f"chaos: paths: {', '.join(sorted({r.path for r in tried}))}",
        ]
        unreached = len(self.results) - len(tried)
        if unreached:
            lines.append(f"chaos: {unreached} points not reached (the call did not recur)")
        if converged:
            slowest = max(converged, key=lambda r: r.seconds)
            most = max(converged, key=lambda r: r.deliveries)
            lines.append(
                f"chaos: longest time to converge {slowest.seconds:.1f} s "
                f"({slowest.kind} at {slowest.call}, {slowest.path}); "
                f"most deliveries {most.deliveries} ({most.kind} at {most.call})"
            )
            busy = [r for r in converged if r.kind is Kind.BUSY_409 and r.deliveries > 1]
            if busy:
                lines.append(
                    "chaos: a deferred event (busy cluster) cost "
                    f"{max(r.deliveries for r in busy) - 1} redelivery and at most "
                    f"{max(r.requests for r in busy)} requests in all"
                )
        lines += [f"chaos: {r}" for r in self.results if r.fired and not r.converged]
        return lines


TALLY = Tally()


# -- the environment of one point -------------------------------------------------------------


@contextmanager
def world(azurite: Azurite, path: ChaosPath, tmp: Path) -> Iterator[Emulator]:
    """A fresh emulator, state store tables and app settings, as one Function App would have."""
    from shared import runtime

    policy = tmp / f"policy-{uuid.uuid4().hex[:8]}.yaml"
    policy.write_text(path.policy, encoding="utf-8")
    with Emulator() as emulator, pytest.MonkeyPatch.context() as env:
        emulator.state.operation_seconds = OPERATION
        for key in list(os.environ):
            if key.startswith(("AZURE_", "IDENTITY_", "MSI_")):
                env.delenv(key)
        settings = {
            **emulator.environment(),
            **azurite.environment(table_prefix=f"c{uuid.uuid4().hex[:16]}"),
            "POLICY_PATH": str(policy),
            "SCOPE_SUBSCRIPTION_IDS": PROD_SUB,
            "REMEDIATION_MODE": "enforce",
            "OPERATION_TIMEOUT_SECONDS": "10",
            "EVENT_LEASE_SECONDS": str(EVENT_LEASE),
            "CLUSTER_LEASE_SECONDS": str(CLUSTER_LEASE),
            **path.settings,
        }
        for key, value in settings.items():
            env.setenv(key, value)
        try:
            yield emulator
        finally:
            emulator.release_faults()
            runtime.reset_clients()


def store() -> TableStateStore:
    return TableStateStore.from_factory(ClientFactory(Settings.from_env(os.environ)))


# -- running ----------------------------------------------------------------------------------


def clean_run(
    azurite: Azurite, path: ChaosPath, functions: dict[str, Any], tmp: Path
) -> tuple[list[Call], dict[str, int]]:
    """The calls of a run with no fault, and the Graph secrets each application then has."""
    with world(azurite, path, tmp) as emulator:
        delivery = path.prepare(emulator, functions)
        emulator.clear_journal()
        delivery.invoke(functions)
        calls = calls_of(emulator)
        assert _outcome(emulator, path), f"{path.name}: the clean run neither fixed nor ticketed"
        return calls, secrets_of(emulator)


_RECORDED: dict[str, tuple[list[Call], dict[str, int]]] = {}


def recorded(
    azurite: Azurite, path: ChaosPath, functions: dict[str, Any], tmp: Path
) -> tuple[list[Call], dict[str, int]]:
    """``clean_run`` once per path and session: every point of the path is found from it."""
    if path.name not in _RECORDED:
        _RECORDED[path.name] = clean_run(azurite, path, functions, tmp)
    return _RECORDED[path.name]


def inject(emulator: Emulator, kind: Kind, call: Call) -> Fault:
    at: dict[str, Any] = {"method": call.method, "times": 1, "skip": call.occurrence}
    if kind is Kind.ERROR_500:
        return emulator.inject(call.pattern, status=500, **at)
    if kind is Kind.THROTTLED_429:
        return emulator.inject(call.pattern, status=429, retry_after=1, **at)
    if kind is Kind.TIMEOUT:
        return emulator.inject(call.pattern, drop=True, **at)
    if kind is Kind.LOST_RESPONSE:
        return emulator.inject(call.pattern, status=500, after_commit=True, **at)
    if kind is Kind.BUSY_409:
        return emulator.inject(call.pattern, status=409, **at)
    return emulator.inject(call.pattern, latency=HOLD, **at)  # KILL: held open, then killed


def run_point(
    azurite: Azurite,
    path: ChaosPath,
    kind: Kind,
    call: Call,
    functions: dict[str, Any],
    tmp: Path,
    clean_secrets: dict[str, int],
) -> Result:
    result = Result(path.name, kind, call)
    with world(azurite, path, tmp) as emulator:
        delivery = path.prepare(emulator, functions)
        emulator.clear_journal()
        fault = inject(emulator, kind, call)
        started = time.monotonic()
        if kind is Kind.KILL:
            killed = _kill_at(delivery, fault)
            emulator.release_faults()
            result.deliveries = 1
            if not killed:
                return result  # the child finished without reaching the call
            result.fired = True
            _redeliver(emulator, path, delivery, functions, result)
        else:
            _redeliver(emulator, path, delivery, functions, result)
            result.fired = fault.hits > 0
        result.seconds = time.monotonic() - started
        result.requests = len(emulator.journal())
        emulator.state.faults.clear()
        _judge(emulator, path, delivery, result, clean_secrets)
    return result


def _redeliver(
    emulator: Emulator,
    path: ChaosPath,
    delivery: Delivery,
    functions: dict[str, Any],
    result: Result,
) -> None:
    """Deliver until a delivery succeeds, as Event Grid and the queue do."""
    waited = False
    while result.deliveries < MAX_DELIVERIES:
        if result.deliveries and not waited:
            time.sleep(REDELIVERY_DELAY)
        waited = False
        result.deliveries += 1
        try:
            delivery.invoke(functions)
        except RetryLater as exc:
            if "being handled by another delivery" in str(exc) or "owns the lease" in str(exc):
                # A dead worker's claim expires: the redelivery comes after it (Event Grid's own
                # delay is longer than the lease), so this wait is the redelivery delay too.
                time.sleep(max(EVENT_LEASE, CLUSTER_LEASE))
                waited = True
            continue
        except Exception:  # noqa: S112  Event Grid retries whatever failed the invocation
            continue
        # The delivery succeeded: Azure will not deliver it again, so the work must be done.
        outcome = _outcome(emulator, path)
        if outcome is None:
            result.problems.append(
                f"delivery {result.deliveries} succeeded but the problem is neither fixed nor ticketed"
            )
            return
        result.outcome = outcome
        result.converged = True
        return
    result.problems.append(f"still failing after {MAX_DELIVERIES} deliveries")


def _outcome(emulator: Emulator, path: ChaosPath) -> str | None:
    if path.fixed(emulator) or _fixed_once_operations_end(emulator, path):
        return "fixed"
    if any(i["title"] == path.ticket_title and i["state"] == "open" for i in _issues(emulator)):
        return "ticketed"
    return None


def _fixed_once_operations_end(emulator: Emulator, path: ChaosPath) -> bool:
    """A fix whose operation still runs (the product records it and verifies it later): let the
    operations end, as Azure's do by themselves, and look again."""
    with emulator.state.lock:
        running = [o for o in emulator.state.operations.values() if o.status == "InProgress"]
    if not running:
        return False
    time.sleep(max(0.0, max(o.started for o in running) + OPERATION - time.time()))
    emulator.arm.finish_due_operations()
    return path.fixed(emulator)


def _issues(emulator: Emulator) -> list[dict[str, Any]]:
    try:
        return github_issues(emulator.state)
    except KeyError:
        return []


def _judge(
    emulator: Emulator,
    path: ChaosPath,
    delivery: Delivery,
    result: Result,
    clean_secrets: dict[str, int],
) -> None:
    problems = result.problems
    titles = Counter(i["title"] for i in _issues(emulator))
    problems += [f"{n} tickets titled {t!r}" for t, n in titles.items() if n > 1]
    grants = Counter(
        (
            a["properties"]["scope"].lower(),
            a["properties"]["roleDefinitionId"].lower().rsplit("/", 1)[-1],
            a["properties"]["principalId"].lower(),
        )
        for a in authz.assignments(emulator.state)
    )
    problems += [f"{n} role assignments for {g}" for g, n in grants.items() if n > 1]
    for app, count in secrets_of(emulator).items():
        if count > clean_secrets.get(app, 0):
            problems.append(
                f"application {app} has {count} secrets, {clean_secrets.get(app, 0)} after a clean run"
            )
    if delivery.event_id is not None and result.converged:
        claim = store().start_event(delivery.event_id, EVENT_LEASE)
        if claim.state is not ClaimState.DONE:
            store().abandon_event(claim)
            problems.append("the event is not marked done after the delivery that succeeded")
    if problems:
        result.converged = False


def secrets_of(emulator: Emulator) -> dict[str, int]:
    with emulator.state.lock:
        return {
            app_id: len(app["passwordCredentials"])
            for app_id, app in emulator.state.graph_applications.items()
        }


# -- a worker killed at a call ------------------------------------------------------------------

WORKER = """
import json, sys
import function_app
from tests.support.events import trigger_object
from tests.support.triggers import queue_message
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
payload = json.load(sys.stdin)
user = functions[sys.argv[1]].get_user_function()
user(queue_message(payload) if isinstance(payload, str) else trigger_object(payload))
"""


def _kill_at(delivery: Delivery, fault: Fault) -> bool:
    """Run the delivery in a child process and SIGKILL it while its faulted call is in flight."""
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, delivery.function],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None
    child.stdin.write(json.dumps(delivery.payload).encode())
    child.stdin.close()
    deadline = time.monotonic() + 60
    while fault.hits == 0 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    reached = fault.hits > 0
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait(10)
    return reached and child.returncode == -signal.SIGKILL
