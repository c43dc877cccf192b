"""Per-client rate limits (429 with Retry-After), with the ``limits`` library.

Limits are per process (in memory); behind several API replicas each enforces its
own share. A shared store (Redis) is a settings change in ``limits`` if needed.
"""

from __future__ import annotations

import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from service.errors import TooManyRequests

# The sliding-window counter is O(1) per hit; a moving window keeps one timestamp per hit.
_limiter = SlidingWindowCounterRateLimiter(MemoryStorage())


@lru_cache(maxsize=16)
def _item(spec: str) -> RateLimitItem:
    return parse(spec)


def check(spec: str, key: str) -> None:
    item = _item(spec)
    if not _limiter.hit(item, key):
        reset = _limiter.get_window_stats(item, key).reset_time
        retry = max(1, int(reset - time.time()))
        raise TooManyRequests(f"Rate limit {spec} exceeded; retry later", headers={"Retry-After": str(retry)})
