"""Kubeconfigs kept in memory across warm invocations of one instance.

``listClusterUserCredential`` is a POST, so ARM counts it against the *write* bucket (200 + 10/s
per subscription): over a fleet, fetching it for every cluster on every run costs more of ARM's
budget than all the reads. A kubeconfig changes only when the cluster's credentials rotate, so
each instance keeps the ones it fetched for ``KUBECONFIG_CACHE_SECONDS`` (default 15 minutes;
Entra ID tokens put in them last an hour). They carry credentials (a static token, or the
app's token for the AKS server application), so they live in this process's memory only:
never written to the state store, a file or a log. A cluster API that refuses the cached
credentials (401/403) or cannot be reached with them drops the entry, and the next read
fetches a fresh one.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_SECONDS = 900.0
SETTING = "KUBECONFIG_CACHE_SECONDS"


class KubeconfigCache:
    def __init__(
        self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    @property
    def seconds(self) -> float:
        if self._seconds is not None:
            return self._seconds
        raw = os.environ.get(SETTING, "").strip()
        try:
            return max(0.0, float(raw)) if raw else DEFAULT_SECONDS
        except ValueError:
            return DEFAULT_SECONDS

    def get(self, cluster_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(cluster_id.lower())
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._entries[cluster_id.lower()]
                return None
            return copy.deepcopy(entry[1])

    def put(self, cluster_id: str, config: dict[str, Any]) -> None:
        seconds = self.seconds
        if seconds <= 0:
            return
        with self._lock:
            self._entries[cluster_id.lower()] = (self._clock() + seconds, copy.deepcopy(config))

    def drop(self, cluster_id: str) -> bool:
        with self._lock:
            return self._entries.pop(cluster_id.lower(), None) is not None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# The instance's cache: module state outlives invocations while the worker process is warm.
KUBECONFIGS = KubeconfigCache()
