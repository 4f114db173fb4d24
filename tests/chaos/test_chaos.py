"""A fault at every remote call of each trigger path, of every kind; then redelivery; then converge.

``CHAOS=full`` (``make chaos``) tries every kind at every call. Otherwise (``make test``) a short
form tries every kind at each path's writes, and a worker killed at its last write.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from emulator.azurite import Azurite
from tests.chaos.harness import TALLY, Call, ChaosPath, Kind, clean_run, run_point
from tests.chaos.paths import PATHS

FULL = os.environ.get("CHAOS", "short").lower() == "full"
# A regex on the call (``METHOD path``) to try only some points, when looking into one.
ONLY = re.compile(os.environ.get("CHAOS_CALLS", ""))
_clean: dict[str, tuple[list[Call], dict[str, int]]] = {}


# Points that do not converge yet, each with why; a known point that converges fails the test, so
# this list only shrinks. Matched on (path name prefix, kind, regex on the call).
KNOWN: list[tuple[str, Kind, str, str]] = []


def known(path: ChaosPath, kind: Kind, call: Call) -> str | None:
    for prefix, known_kind, pattern, why in KNOWN:
        if path.name.startswith(prefix) and kind is known_kind and re.search(pattern, str(call)):
            return why
    return None


def points(calls: list[Call], kind: Kind) -> list[Call]:
    calls = [c for c in calls if ONLY.search(str(c))]
    if kind is Kind.BUSY_409:
        # The 409 of a busy cluster is ARM's answer; Graph, registries, Kubernetes and ticket
        # systems never give it (their own errors are the other kinds).
        calls = [c for c in calls if c.service == "arm"]
    if FULL:
        return calls
    writes = [c for c in calls if c.writes]
    return writes[-1:] if kind is Kind.KILL else writes  # a kill: at the write that matters


@pytest.mark.timeout(0 if FULL else 600)
@pytest.mark.parametrize("kind", list(Kind), ids=[k.name.lower() for k in Kind])
@pytest.mark.parametrize(
    "path", list(PATHS.values()), ids=[p.name.split()[0] for p in PATHS.values()]
)
def test_every_fault_point_converges(
    path: ChaosPath,
    kind: Kind,
    azurite_server: Azurite,
    functions: dict[str, Any],
    tmp_path: Path,
) -> None:
    if path.name not in _clean:
        _clean[path.name] = clean_run(azurite_server, path, functions, tmp_path)
    calls, secrets = _clean[path.name]
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
