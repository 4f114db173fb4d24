from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.azure.cache import RunCache, cached


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
        return resource_id.upper()


def test_concurrent_reads_of_one_key_make_one_call() -> None:
    reader = Reader()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(reader.read, ["/a/B"] * 4 + ["/A/b"] * 4))
    assert results == ["/A/B"] * 8
    assert reader.calls == 1


def test_errors_are_cached_too_and_clear_forgets() -> None:
    reader = Reader()
    for _ in range(2):
        with pytest.raises(LookupError):
            reader.read("/x/boom")
    assert reader.calls == 1
    reader.cache.clear()
    reader.read("/x/y")
    assert reader.calls == 2
