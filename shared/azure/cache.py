"""A per-run read cache: each resource is read at most once per diagnosis, even concurrently.

Concurrent callers asking for the same key wait on one future instead of issuing a second
request. Writes clear the cache so verification after a fix reads fresh state.

An answer is kept, a failure is not: a :class:`~shared.errors.ReadError` (404, 403, a cluster
API that cannot be reached) says something about the estate and every check may reuse it; any
other exception (throttling, a 5xx, a dropped connection) is shared by the callers already
waiting on it, and the next caller reads again: a read throttled once must not fail every pair
of the run that needs it.
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

    def clear(self) -> None:
        with self._lock:
            self._futures.clear()


class HasCache(Protocol):
    cache: RunCache


def cached(method: Callable[P, R]) -> Callable[P, R]:
    """Memoize a reader method on ``self.cache`` by its name and arguments."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        owner: HasCache = args[0]  # type: ignore[assignment]
        key = (method.__name__, *(_key(a) for a in args[1:]), *sorted(kwargs.items()))
        return owner.cache.get_or_load(key, lambda: method(*args, **kwargs))

    return wrapper


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
