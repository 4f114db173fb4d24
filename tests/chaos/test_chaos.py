"""A fault at every remote call of each trigger path, of every kind; then redelivery; then converge.

``CHAOS=full`` (``make chaos``) tries every kind at every call. Otherwise (``make test``) a short
form tries every kind at each path's writes, and a worker killed at its first write.
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


def points(calls: list[Call], kind: Kind) -> list[Call]:
    calls = [c for c in calls if ONLY.search(str(c))]
    if FULL:
        return calls
    writes = [c for c in calls if c.writes]
    return writes[:1] if kind is Kind.KILL else writes


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
    failed = []
    for call in points(calls, kind):
        result = run_point(azurite_server, path, kind, call, functions, tmp_path, secrets)
        TALLY.results.append(result)
        if result.fired and not result.converged:
            failed.append(str(result))
    assert not failed, "\n".join(failed)
