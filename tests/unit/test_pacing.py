"""Pacing by ARM's limits as one process sees them: the headers clamp, a 429 slows everyone."""

from __future__ import annotations

from shared.azure.pacing import READS, WRITES, Limit, Pace, Pacer

SUB = "5b0c0000-0000-4000-8000-000000000001"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_sends_at_once_then_paces_at_the_refill_rate() -> None:
    clock = Clock()
    pace = Pace(Limit(3, 2), clock)
    assert [pace.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pace.reserve() == 0.5  # the 4th waits for one token at 2 per second
    assert pace.reserve() == 1.0  # the 5th queues behind it


def test_what_arm_says_is_left_clamps_the_local_bucket() -> None:
    clock = Clock()
    pace = Pace(Limit(250, 25), clock)
    pace.observe(200, remaining=30, retry_after=None)  # other instances spent the rest
    waits = [pace.reserve() for _ in range(6)]
    assert waits[:5] == [0.0] * 5  # 30 left minus a reserve of 25 for others in flight
    assert waits[5] > 0


def test_a_429_holds_the_bucket_for_retry_after_and_slows_the_rate_down() -> None:
    clock = Clock()
    pace = Pace(Limit(250, 20), clock)
    pace.observe(429, remaining=0, retry_after=3.0)
    assert pace.rate == 15.0
    assert pace.reserve() >= 3.0
    for _ in range(10):
        pace.observe(429, remaining=0, retry_after=1.0)
    assert pace.rate == 5.0  # never below a quarter of ARM's rate
    clock.now += 10
    pace.observe(200, remaining=240, retry_after=None)  # the bucket refilled: speed up again
    assert pace.rate == 6.0


def test_the_pacer_keeps_one_bucket_per_subscription_and_kind() -> None:
    clock = Clock()
    slept: list[float] = []
    pacer = Pacer(
        "app", limits={READS: Limit(1, 1), WRITES: Limit(1, 1)}, clock=clock, sleep=slept.append
    )
    url = f"https://management.azure.com/subscriptions/{SUB}/providers/x?api-version=1"
    other = url.replace("000000000001", "000000000002")
    assert pacer.before(url, "GET") is not None
    assert pacer.before(url, "POST") is not None  # a write: its own bucket
    assert pacer.before(other, "GET") is not None  # another subscription: its own bucket
    assert slept == []
    pacer.before(url, "GET")
    assert slept == [1.0]
    assert pacer.before("https://graph.microsoft.com/v1.0/applications", "GET") is None
