from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.azure.cache import RunCache, cached
from shared.errors import NotFound, Throttled


class Reader:
    def __init__(self) -> None:
        self.cache = RunCache()
        self.calls = 0
        self.lock = threading.Lock()

    @cached
    def read(self, resource_id: str) -> str:
        with self.lock:
            self.calls += 1
        time.sleep(0.05)
        if resource_id.endswith("boom"):
            raise LookupError(resource_id)
        if resource_id.endswith("gone"):
            raise NotFound(f"{resource_id} was not found", resource_id=resource_id)
        if resource_id.endswith("throttled") and self.calls == 1:
            raise Throttled(f"reading {resource_id} was throttled")
        return resource_id.upper()


def test_concurrent_reads_of_one_key_make_one_call() -> None:
    reader = Reader()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(reader.read, ["/a/B"] * 4 + ["/A/b"] * 4))
    assert results == ["/A/B"] * 8
    assert reader.calls == 1


def test_answers_are_cached_failures_are_not_and_clear_forgets() -> None:
    reader = Reader()
    for _ in range(2):
        with pytest.raises(NotFound):
            reader.read("/x/gone")
    assert reader.calls == 1  # a 404 is an answer: every check may reuse it
    for _ in range(2):
        with pytest.raises(LookupError):
            reader.read("/x/boom")
    assert reader.calls == 3  # a failure is read again
    reader.cache.clear()
    reader.read("/x/y")
    assert reader.calls == 4


def test_a_read_throttled_once_succeeds_for_the_next_caller() -> None:
    reader = Reader()
    with pytest.raises(Throttled):
        reader.read("/x/throttled")
    assert reader.read("/x/throttled") == "/X/THROTTLED"
    assert reader.read("/x/throttled") == "/X/THROTTLED"
    assert reader.calls == 2


def test_callers_waiting_on_a_failing_read_share_it() -> None:
    reader = Reader()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(reader.read, "/x/boom") for _ in range(4)]
    assert all(isinstance(f.exception(), LookupError) for f in futures)
    assert reader.calls < 4  # at least some waited on the one read in flight
