"""The inventory's reading of Resource Graph's wire values: resultTruncated and the quota reset."""

from __future__ import annotations

import pytest

from shared.azure.cache import RunCache, cache_key
from shared.azure.clusters import ClusterReader
from shared.azure.inventory import _seconds, _truthy


@pytest.mark.parametrize(
    ("value", "truncated"),
    [("true", True), ("True", True), (True, True), ("false", False), (False, False), (None, False)],
)
def test_result_truncated_is_read_whether_a_string_or_a_boolean(
    value: object, truncated: bool
) -> None:
    assert _truthy(value) is truncated


@pytest.mark.parametrize(
    ("timespan", "seconds"),
    [("00:00:05", 5.0), ("00:01:02", 62.0), ("01:00:00", 3600.0), ("x", 1.0)],
)
def test_quota_resets_after_is_a_timespan(timespan: str, seconds: float) -> None:
    assert _seconds(timespan) == seconds


def test_a_seed_answers_until_forgotten_and_never_overrides_a_read() -> None:
    cache = RunCache()
    cache.get_or_load(cache_key("list_clusters", ("sub-a",)), lambda: ["from ARM"])
    cache.seed(ClusterReader.list_clusters, "SUB-A", value=["from Resource Graph"])
    cache.seed(ClusterReader.get_cluster, "/Sub/X", value="seeded", tags=frozenset({"/sub/x"}))

    assert cache.get_or_load(cache_key("list_clusters", ("sub-a",)), lambda: []) == ["from ARM"]
    assert cache.get_or_load(cache_key("get_cluster", ("/sub/x",)), lambda: "read") == "seeded"
    assert cache.forget("/SUB/X") is True and cache.forget("/sub/x") is False
    assert cache.get_or_load(cache_key("get_cluster", ("/sub/x",)), lambda: "read") == "read"
