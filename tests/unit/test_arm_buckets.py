"""The emulator's ARM token buckets: what Azure documents, per principal, subscription and kind."""

from __future__ import annotations

from emulator.throttling import READS, WRITES, ArmLimits, Buckets, Limit, kind_of, retry_after


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = Buckets(ArmLimits(reads=Limit(3, 2), writes=Limit(1, 1)), clock=lambda: now[0])
    assert [buckets.take("p", "s", READS)[0] for _ in range(4)] == [True, True, True, False]
    allowed, remaining, wait = buckets.take("p", "s", READS)
    assert (allowed, remaining) == (False, 0) and wait == 0.5
    assert buckets.take("p", "other", READS)[0]  # another subscription has its own bucket
    assert buckets.take("p", "s", WRITES)[0]  # and writes theirs
    now[0] += 0.5
    assert buckets.take("p", "s", READS) == (True, 0, 0.0)
    assert buckets.throttled == 2


def test_azure_counts_posts_as_writes_and_asks_for_whole_seconds() -> None:
    assert ArmLimits().reads == Limit(250, 25) and ArmLimits().writes == Limit(200, 10)
    assert kind_of("GET") == READS and kind_of("POST") == WRITES and kind_of("DELETE") == WRITES
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"
