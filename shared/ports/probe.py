"""What a node sees when it pulls: the pull probe's report for one node pool.

The probe (shared/probe) runs one short-lived pod per node pool, on the node's own network
(``hostNetwork``, the node's DNS), and reports what containerd's pull would meet: what the
registry's login server and data endpoint resolve to, whether TCP and TLS connect and how fast,
the HTTP status of ``/v2/``, and whether the kubelet identity's token can be had from IMDS and
exchanged at the registry. Nothing here holds a token: only outcomes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Protocol

from shared.models import Cluster


def is_private(address: str) -> bool:
    """An RFC 1918 / unique-local answer, as a private endpoint's is."""
    try:
        return ipaddress.ip_address(address).is_private
    except ValueError:
        return False


@dataclass(frozen=True)
class Reach:
    """One host as the node sees it."""

    host: str
    answers: tuple[str, ...]  # what the node's DNS answered (empty: no answer)
    tcp: str  # ok | timeout | refused | unresolved
    tcp_ms: int | None = None
    tls: str = "skipped"  # ok | failed | skipped
    tls_ms: int | None = None
    http_status: int | None = None  # of GET https://<host>/v2/ (login server only)

    @property
    def resolved_private(self) -> bool | None:
        if not self.answers:
            return None
        return all(is_private(a) for a in self.answers)

    def to_evidence(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "answers": list(self.answers),
            "private": self.resolved_private,
            "tcp": self.tcp,
            "tcpMs": self.tcp_ms,
            "tls": self.tls,
            "tlsMs": self.tls_ms,
            **({"v2Status": self.http_status} if self.http_status is not None else {}),
        }


@dataclass(frozen=True)
class PoolProbe:
    """One node pool's report; ``error`` says why there is none (a pool that is not probed, a
    pod that did not run)."""

    pool: str
    os: str
    arch: str
    node: str = ""
    login: Reach | None = None
    data: Reach | None = None
    imds: str = "skipped"  # ok | blocked | no-identity | skipped
    exchange: str = "skipped"  # ok | failed | skipped
    exchange_status: int | None = None
    error: str = ""

    @property
    def ran(self) -> bool:
        return not self.error and self.login is not None

    def to_evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pool": self.pool, "os": self.os, "arch": self.arch}
        if self.error:
            return {**out, "error": self.error}
        out["node"] = self.node
        for key, reach in (("loginServer", self.login), ("dataEndpoint", self.data)):
            if reach is not None:
                out[key] = reach.to_evidence()
        out["kubeletToken"] = {
            "imds": self.imds,
            "exchange": self.exchange,
            **({"status": self.exchange_status} if self.exchange_status is not None else {}),
        }
        return out


class ProbePort(Protocol):
    def probe_pull(
        self, cluster: Cluster, *, login_server: str, data_endpoint: str, client_id: str
    ) -> list[PoolProbe]:
        """Run the pull probe on every node pool of ``cluster`` (one pod each, removed after)."""
        ...
