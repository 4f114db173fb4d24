"""The fleet bench's short form (``make bench-fleet`` in full): the planner and worker processes
on the real Azurite queues against an emulator enforcing ARM's limits. These tests check what
the bench must never print: a pair not checked, a message lost. Never timing.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.throttling import ArmLimits, Limit
from scripts.bench_fleet import run, subscription_id


@pytest.mark.timeout(300)
def test_the_short_fleet_bench_checks_every_pair_and_loses_nothing() -> None:
    result = run(24, subscriptions=3, workers=2, latency=0.0, quiet=True)
    assert (result.checked, result.lost) == (24, 0)
    assert result.batches >= 3  # at least one batch per subscription, each its own message
    # Open tickets are listed once per batch, pairs remembered once: Table reads stay per batch.
    assert result.table_reads / result.pairs <= 2


@pytest.mark.timeout(300)
def test_429_storms_during_inventory_and_checks_converge_with_nothing_lost() -> None:
    faults: list[Any] = []

    def storm(emulator: Any) -> None:
        # Resource Graph throttled past the planner's retries (so it plans from ARM)...
        faults.append(
            emulator.inject(
                r"/providers/Microsoft.ResourceGraph/resources$",
                method="POST",
                status=429,
                retry_after=1,
                times=2,
            )
        )
        # ... every subscription's ARM list of clusters throttled past the retries too...
        for s in range(3):
            faults.append(
                emulator.inject(
                    rf"/subscriptions/{subscription_id(s)}/providers/"
                    r"Microsoft.ContainerService/managedClusters$",
                    method="GET",
                    status=429,
                    retry_after=1,
                    times=2,  # the planner's attempt and its retry: handed over
                )
            )
        # ... and deny assignment reads during the checks (role assignments come with the
        # batch), on top of buckets far smaller than ARM's, shared by both workers.
        faults.append(
            emulator.inject(r"/denyAssignments$", method="GET", status=429, retry_after=1, times=12)
        )

    result = run(
        18,
        subscriptions=3,
        workers=2,
        latency=0.0,
        limits=ArmLimits(reads=Limit(10, 5), writes=Limit(5, 3)),
        faults=storm,
        quiet=True,
        settings={"ARM_RETRY_TOTAL": "1"},
    )
    assert [f.hits for f in faults] == [2, 2, 2, 2, 12]  # every 429 of the storm was met
    assert result.throttled >= 2 + 3 * 2 + 12
    assert (result.checked, result.lost) == (18, 0)
    assert result.rebatched_or_handed_over > 0  # work was handed over, not failed
