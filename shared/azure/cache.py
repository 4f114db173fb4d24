"""A per-run read cache: each resource is read at most once per diagnosis, even concurrently.

Concurrent callers asking for the same key wait on one future instead of issuing a second
request. Writes clear the cache so verification after a fix reads fresh state.

An answer is kept, a failure is not: a :class:`~shared.errors.ReadError` (404, 403, a cluster
API that cannot be reached) says something about the estate and every check may reuse it; any
other exception (throttling, a 5xx, a dropped connection) is shared by the callers already
waiting on it, and the next caller reads again: a read throttled once must not fail every pair
of the run that needs it.

The cache can also be *seeded* with what another source already knows (the Resource Graph
inventory, :mod:`shared.azure.inventory`), each seed tagged with the clusters it concerns, so that
what a check read from that copy can be forgotten (:meth:`RunCache.forget`) and read from ARM.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, ParamSpec, Protocol, TypeVar

from shared.errors import ReadError

P = ParamSpec("P")
R = TypeVar("R")


class RunCache:
    def __init__(self) -> None:
        self._futures: dict[Hashable, Future[Any]] = {}
        self._lock = threading.Lock()
        self._seeded: dict[Hashable, frozenset[str]] = {}  # key -> tags (cluster ids, lower)

    def get_or_load(self, key: Hashable, load: Callable[[], R]) -> R:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(load())
            except BaseException as exc:
                if not isinstance(exc, ReadError):
                    with self._lock:
                        if self._futures.get(key) is future:
                            del self._futures[key]
                future.set_exception(exc)
        result: R = future.result()
        return result

    def discard(self, key: Hashable) -> None:
        """Drop one entry (a kept kubeconfig turned out stale): the next caller reads again."""
        with self._lock:
            self._futures.pop(key, None)

    def take(self, key: Hashable) -> Any:
        """Drop one entry and return its answer (None if it has none): its owner closes it."""
        with self._lock:
            future = self._futures.pop(key, None)
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def clear(self) -> None:
        with self._lock:
            self._futures.clear()
            self._seeded.clear()

    def seed(
        self, method: Callable[..., Any], *args: Any, value: Any, tags: frozenset[str] = frozenset()
    ) -> None:
        """Answer ``method(*args)`` (a :func:`cached` reader method) with ``value`` from now on,
        unless it was read already: what was read from the source wins."""
        key = cache_key(method.__name__, args)
        future: Future[Any] = Future()
        future.set_result(value)
        with self._lock:
            if key not in self._futures:
                self._futures[key] = future
                self._seeded[key] = frozenset(t.lower() for t in tags)

    def forget(self, tag: str | None = None) -> bool:
        """Drop the seeded answers tagged ``tag`` (every seeded answer with None); True if any."""
        with self._lock:
            keys = [k for k, tags in self._seeded.items() if tag is None or tag.lower() in tags]
            for key in keys:
                self._futures.pop(key, None)
                del self._seeded[key]
        return bool(keys)

    def seeded(self) -> int:
        with self._lock:
            return len(self._seeded)


class HasCache(Protocol):
    cache: RunCache


def cached(method: Callable[P, R]) -> Callable[P, R]:
    """Memoize a reader method on ``self.cache`` by its name and arguments."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        owner: HasCache = args[0]  # type: ignore[assignment]
        key = cache_key(method.__name__, args[1:], kwargs)
        return owner.cache.get_or_load(key, lambda: method(*args, **kwargs))

    return wrapper


def cache_key(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
) -> tuple[Hashable, ...]:
    """The key :func:`cached` files ``name(*args, **kwargs)`` under (``self`` not included)."""
    return (name, *(_key(a) for a in args), *sorted((kwargs or {}).items()))


def _key(value: Any) -> Hashable:
    # Resource ids are case-insensitive, so they share a cache entry however they are spelled.
    if isinstance(value, str):
        return value.lower()
    resource_id = getattr(value, "id", None)
    if isinstance(resource_id, str):
        return (type(value).__name__, resource_id.lower())
    if isinstance(value, Hashable):
        return value
    return repr(value)
