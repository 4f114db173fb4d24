"""Which way the app reaches a cluster's Kubernetes API: directly, or through AKS Run Command.

Direct is cheaper (no pod, no seconds of latency) and is the default. Run Command is chosen
from the cluster's configuration (a private cluster without a public FQDN, or authorized IP
ranges, which a Flex Consumption app's changing outbound IPs are not in) and from a direct
connection that failed; that failure is remembered per cluster for a while
(``KUBERNETES_TRANSPORT_MEMORY_SECONDS``) so each diagnosis does not pay a timeout first.
``KUBERNETES_TRANSPORT`` forces one way: ``direct`` (the app has no Run Command rights) or
``run-command``.
"""

from __future__ import annotations

import threading
import time

from shared.models import Cluster

DIRECT = "direct"
RUN_COMMAND = "run-command"
AUTO = "auto"
TRANSPORTS = (AUTO, DIRECT, RUN_COMMAND)


class TransportMemory:
    """Clusters whose direct connection failed lately (lower-case id -> until when)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def remember(self, cluster_id: str) -> None:
        with self._lock:
            self._until[cluster_id.lower()] = time.monotonic() + self.seconds

    def recalls(self, cluster_id: str) -> bool:
        with self._lock:
            until = self._until.get(cluster_id.lower())
            if until is not None and until <= time.monotonic():
                del self._until[cluster_id.lower()]
                return False
            return until is not None


def configured_private(cluster: Cluster) -> bool:
    """The configuration says the app cannot reach the API server directly."""
    return cluster.private_cluster or bool(cluster.authorized_ip_ranges)


def choose(setting: str, cluster: Cluster, memory: TransportMemory) -> str:
    if setting in (DIRECT, RUN_COMMAND):
        return setting
    if configured_private(cluster) or memory.recalls(cluster.id):
        return RUN_COMMAND
    return DIRECT


def may_fall_back(setting: str) -> bool:
    """After a failed direct connection, try Run Command (``auto`` only)."""
    return setting == AUTO
