"""A fault at every remote call of each trigger path, of every kind; then redelivery; then converge.

``CHAOS=full`` (``make chaos``) tries every kind at every call. Otherwise (``make test``) a short
form keeps the points of the kinds that found defects (see SHORT_FORM) and samples the others.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from emulator.azurite import Azurite
from tests.chaos.harness import TALLY, Call, ChaosPath, Kind, recorded, run_point
from tests.chaos.paths import PATHS

FULL = os.environ.get("CHAOS", "short").lower() == "full"
# A regex on the call (``METHOD path``) to try only some points, when looking into one.
ONLY = re.compile(os.environ.get("CHAOS_CALLS", ""))


# Points that do not converge yet, each with why; a known point that converges fails the test, so
# this list only shrinks. Matched on (path name prefix, kind, regex on the call).
KNOWN: list[tuple[str, Kind, str, str]] = []


def known(path: ChaosPath, kind: Kind, call: Call) -> str | None:
    for prefix, known_kind, pattern, why in KNOWN:
        if path.name.startswith(prefix) and kind is known_kind and re.search(pattern, str(call)):
            return why
    return None


# The short form (make test), by kind: which paths it walks, and whether at every write or only at
# the last (the write that matters). It keeps what found defects (test_found_by_chaos.py and the
# fixes of rotate-sp-secret and the tickets): a dropped connection and a lost response at every
# write of every path; a killed worker where it found them (reconcile-cluster's PUT, the ticket
# POST) and in the rotation, whose mark is there for a killed worker. 500, 429 and 409 never found
# one (each client's retry policy answers them, or the event is deferred): they are tried at the
# last write of one path per service that write goes to (ARM, Kubernetes, GitHub, Graph), the
# other two paths ending at an ARM PUT like reconcile-cluster's. A write repeated for another
# cluster (the rotation's resets) is one step: the short form faults its first.
EVERY_PATH = tuple(p.name.split()[0] for p in PATHS.values())
ONE_PER_SERVICE = ("reconcile-cluster", "refresh-pull-secret", "ticket", "rotate-sp-secret")
SHORT_FORM: dict[Kind, tuple[tuple[str, ...], bool]] = {
    Kind.TIMEOUT: (EVERY_PATH, True),
    Kind.LOST_RESPONSE: (EVERY_PATH, True),
    Kind.KILL: (("reconcile-cluster", "ticket", "rotate-sp-secret"), False),
    Kind.ERROR_500: (ONE_PER_SERVICE, False),
    Kind.THROTTLED_429: (ONE_PER_SERVICE, False),
    Kind.BUSY_409: (ONE_PER_SERVICE, False),
}


def walked(path: ChaosPath, kind: Kind) -> bool:
    return FULL or path.name.split()[0] in SHORT_FORM[kind][0]


def points(calls: list[Call], kind: Kind) -> list[Call]:
    calls = [c for c in calls if ONLY.search(str(c))]
    if kind is Kind.BUSY_409:
        # The 409 of a busy cluster is ARM's answer; Graph, registries, Kubernetes and ticket
        # systems never give it (their own errors are the other kinds).
        calls = [c for c in calls if c.service == "arm"]
    if FULL:
        return calls
    writes = _one_per_step([c for c in calls if c.writes])
    return writes if SHORT_FORM[kind][1] else writes[-1:]


_CLUSTER_SEGMENT = re.compile(r"/managedClusters/[^/]+", re.IGNORECASE)


def _one_per_step(writes: list[Call]) -> list[Call]:
    """One write of each step: the same write to another cluster (rotate-sp-secret resets every
    cluster sharing the principal, in parallel) is the same step, faulted once in the short form."""
    seen: set[tuple[str, str, int]] = set()
    steps = []
    for call in writes:
        step = (call.method, _CLUSTER_SEGMENT.sub("/managedClusters/*", call.path), call.occurrence)
        if step not in seen:
            seen.add(step)
            steps.append(call)
    return steps


CASES = [
    pytest.param(path, kind, id=f"{path.name.split()[0]}-{kind.name.lower()}")
    for path in PATHS.values()
    for kind in Kind
    if walked(path, kind)
]


@pytest.mark.timeout(0 if FULL else 600)
@pytest.mark.parametrize(("path", "kind"), CASES)
def test_every_fault_point_converges(
    path: ChaosPath,
    kind: Kind,
    azurite_server: Azurite,
    functions: dict[str, Any],
    tmp_path: Path,
) -> None:
    calls, secrets = recorded(azurite_server, path, functions, tmp_path)
    failed, expected, fixed = [], [], []
    for call in points(calls, kind):
        result = run_point(azurite_server, path, kind, call, functions, tmp_path, secrets)
        TALLY.results.append(result)
        why = known(path, kind, call)
        if result.fired and not result.converged:
            (expected if why else failed).append(f"{result}" + (f" (known: {why})" if why else ""))
        elif why and result.fired:
            fixed.append(f"{call} converges now: remove it from KNOWN")
    assert not failed, "\n".join(failed)
    assert not fixed, "\n".join(fixed)
    if expected:
        pytest.xfail("\n".join(expected))
