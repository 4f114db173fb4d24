"""ARM's request limits: a token bucket per (principal, subscription) for reads and for writes.

Azure Resource Manager meters every principal in every subscription with two buckets (the
"ARM throttling" documentation: reads 250 burst + 25 per second, writes and POST actions 200 +
10 per second). Each response names what is left (``x-ms-ratelimit-remaining-subscription-reads``
or ``-writes``); a request that finds its bucket empty is answered ``429 TooManyRequests`` with
``Retry-After`` (seconds until a token is back). The emulator enforces them when
``State.arm_limits`` is set (the fleet bench, the 429 storm tests): most tests issue far fewer
requests than a burst, and a test must not wait on a refill it does not study.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

READS, WRITES = "reads", "writes"


@dataclass(frozen=True)
class Limit:
    burst: float
    per_second: float


@dataclass(frozen=True)
class ArmLimits:
    """Azure's published subscription limits per principal (the default) or a test's own."""

    reads: Limit = Limit(250, 25)
    writes: Limit = Limit(200, 10)

    def of(self, kind: str) -> Limit:
        return self.reads if kind == READS else self.writes


class Buckets:
    """Every (principal, subscription, kind) bucket; thread-safe, refilled lazily."""

    def __init__(self, limits: ArmLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], tuple[float, float]] = {}  # (tokens, at)
        self.throttled = 0  # 429s answered

    def take(self, principal: str, subscription: str, kind: str) -> tuple[bool, int, float]:
        """(allowed, tokens remaining, seconds until the next token when refused)."""
        limit = self.limits.of(kind)
        key = (principal.lower(), subscription.lower(), kind)
        now = self._clock()
        with self._lock:
            tokens, at = self._tokens.get(key, (limit.burst, now))
            tokens = min(limit.burst, tokens + (now - at) * limit.per_second)
            if tokens >= 1:
                tokens -= 1
                self._tokens[key] = (tokens, now)
                return True, int(tokens), 0.0
            self._tokens[key] = (tokens, now)
            self.throttled += 1
            return False, 0, (1 - tokens) / limit.per_second


def kind_of(method: str) -> str:
    """ARM counts GET and HEAD as reads; PUT, PATCH, DELETE and POST (actions) as writes."""
    return READS if method.upper() in ("GET", "HEAD") else WRITES


def retry_after(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1 (as ARM sends it)."""
    return str(max(1, math.ceil(seconds)))
