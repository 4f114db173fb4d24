"""Pacing ARM requests by ARM's own limits, across every instance of the app.

ARM meters each principal in each subscription with a token bucket for reads and one for writes
(250 burst + 25/s, 200 + 10/s) and says on every response what is left
(``x-ms-ratelimit-remaining-subscription-reads`` / ``-writes``). Instances share those buckets
without knowing each other, so the pacing is derived from the headers rather than from a bucket
of our own in the state store (which would cost a Table round trip per request):

- each process keeps one :class:`Pace` per (principal, subscription, kind): a local bucket whose
  tokens are clamped to what ARM says is left, so a process sees what the others spent;
- its refill rate starts at ARM's and adapts (AIMD): a 429 cuts it by a quarter (down to a
  quarter of ARM's) and holds every thread of the process for ``Retry-After``; each response
  that leaves more than the reserve raises it again by a twentieth of ARM's rate. N instances that all see low counts or 429s each slow
  down, and together converge on ARM's rate.

A 429 therefore slows the whole process down instead of failing work; the SDK's retry policy
retries it (``retry_status`` follows ``ARM_RETRY_TOTAL``), and only a unit of work whose retries
ran out is handed over (:class:`~shared.errors.Throttled`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

READS, WRITES = "reads", "writes"
_SUBSCRIPTION = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})(?:/|$)")


@dataclass(frozen=True)
class Limit:
    burst: float
    per_second: float


# Azure's published per-principal, per-subscription limits.
ARM_LIMITS = {READS: Limit(250, 25), WRITES: Limit(200, 10)}


class Pace:
    """One bucket as this process sees it. Thread-safe."""

    def __init__(self, limit: Limit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.rate = limit.per_second
        self._clock = clock
        self._tokens = limit.burst
        self._at = clock()
        self._hold_until = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; the seconds the caller must wait before sending (0: send now)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens -= 1  # may go below zero: the debt is the queue of waiting callers
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            return max(wait, self._hold_until - now)

    def observe(self, status: int, remaining: int | None, retry_after: float | None) -> None:
        """What ARM said: the tokens it has left, and whether it throttled us."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if status == 429:
                self.rate = max(self.limit.per_second / 4, self.rate * 0.75)
                self._tokens = min(self._tokens, 0.0)
                self._hold_until = max(self._hold_until, now + (retry_after or 1.0))
                return
            if remaining is None:
                return
            # Keep a reserve for the other instances' requests already in flight.
            reserve = self.limit.burst / 10
            self._tokens = min(self._tokens, remaining - reserve)
            if remaining > reserve:
                self.rate = min(self.limit.per_second, self.rate + self.limit.per_second / 20)

    def _refill(self, now: float) -> None:
        self._tokens = min(self.limit.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now


class Pacer:
    """Every bucket of this process, keyed by (principal, subscription, kind)."""

    def __init__(
        self,
        principal: str,
        *,
        limits: dict[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.principal = principal
        self.limits = limits or ARM_LIMITS
        self._clock = clock
        self._sleep = sleep
        self._paces: dict[tuple[str, str, str], Pace] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for the bench

    def pace(self, subscription: str, kind: str) -> Pace:
        key = (self.principal, subscription.lower(), kind)
        with self._lock:
            found = self._paces.get(key)
            if found is None:
                found = self._paces[key] = Pace(self.limits[kind], self._clock)
            return found

    def before(self, url: str, method: str) -> tuple[Pace, str] | None:
        """Wait for a token of the request's bucket (None: a request ARM does not meter so)."""
        match = _SUBSCRIPTION.search(url)
        if match is None:
            return None
        kind = kind_of(method)
        pace = self.pace(match.group(1), kind)
        wait = pace.reserve()
        if wait > 0:
            self.waited += wait
            self._sleep(wait)
        return pace, kind

    def after(self, paced: tuple[Pace, str], status: int, headers: Any) -> None:
        pace, kind = paced
        pace.observe(
            status,
            _int(headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")),
            _float(headers.get("Retry-After")),
        )


def kind_of(method: str) -> str:
    return READS if method.upper() in ("GET", "HEAD") else WRITES


def pacing_policy(pacer: Pacer) -> Any:
    """An azure-core policy for ARM clients, placed after the retry policy: every attempt,
    retries included, waits for its token and reports what ARM answered."""
    from azure.core.pipeline import PipelineRequest, PipelineResponse
    from azure.core.pipeline.policies import HTTPPolicy

    class PacingPolicy(HTTPPolicy):  # type: ignore[type-arg]
        def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
            http = request.http_request
            paced = pacer.before(http.url, http.method)
            response: PipelineResponse[Any, Any] = self.next.send(request)
            if paced is not None:
                pacer.after(
                    paced, response.http_response.status_code, response.http_response.headers
                )
            return response

    return PacingPolicy()


_pacers: dict[str, Pacer] = {}
_pacers_lock = threading.Lock()


def process_pacer(principal: str) -> Pacer:
    """The one pacer of this process for a principal: shared by every client and invocation."""
    with _pacers_lock:
        found = _pacers.get(principal)
        if found is None:
            found = _pacers[principal] = Pacer(principal)
        return found


def reset_pacers() -> None:
    with _pacers_lock:
        _pacers.clear()


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
