"""Per-client rate limits (429 with Retry-After): one token bucket per client, in process memory.

A spec such as ``600/minute`` is a bucket of 600 tokens refilled at 10 a second: a client may
burst up to the whole allowance, then goes at the refill rate. Each hit is O(1) — arithmetic on
two floats under a lock — with no timers and no threads (the ``limits`` library this replaces
started a ``threading.Timer`` about every 10 ms, 8 % of a request's time; issue 11).

Memory is bounded: buckets are kept in least-recently-hit order, and a bucket idle for a whole
period has refilled, so it is dropped (exactly: a missing bucket means a full one). Past
``max_keys`` buckets hit within one period the oldest is dropped too, which can only be lenient.

Limits are per process: behind N API processes (``serve --workers N``) or N replicas each
enforces its own allowance, so a client may reach N times the rate.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from service.errors import TooManyRequests

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_SPEC = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    count: int
    period: float  # seconds

    @property
    def per_second(self) -> float:
        return self.count / self.period


def parse(spec: str) -> Rate:
    """``COUNT/UNIT``, ``COUNT/N UNITs`` or ``COUNT per UNIT``, UNIT one of second, minute, hour, day."""
    match = _SPEC.match(spec)
    if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
        raise ValueError(f"not a rate limit: {spec!r} (expected e.g. '600/minute' or '10 per second')")
    count, multiple, unit = match.groups()
    return Rate(int(count), int(multiple or 1) * _UNITS[unit.lower()])


class TokenBuckets:
    def __init__(
        self, rate: Rate, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens left, when last hit); insertion order is least recently hit first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # Routes run on the event loop and in the threadpool alike; uncontended, this costs ~0.1 µs.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        capacity, refill = float(self.rate.count), self.rate.per_second
        with self._lock:
            self._evict(now)
            entry = self._buckets.pop(key, None)
            tokens = capacity if entry is None else min(capacity, entry[0] + (now - entry[1]) * refill)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / refill
            self._buckets[key] = (tokens, now)
            return wait

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            _, last = next(iter(buckets.values()))
            if now - last < self.rate.period and len(buckets) < self._max_keys:
                return
            buckets.popitem(last=False)


@lru_cache(maxsize=16)
def _buckets(spec: str) -> TokenBuckets:
    return TokenBuckets(parse(spec))


def check(spec: str, key: str) -> None:
    wait = _buckets(spec).hit(key)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise TooManyRequests(f"Rate limit {spec} exceeded; retry later", headers={"Retry-After": str(retry)})
