"""When a failed delivery is tried again: exponential backoff with jitter, capped.

Equal jitter (half fixed, half random) from "Exponential Backoff And Jitter" (AWS Architecture Blog):
retries of many rows that failed together spread out instead of arriving at the partner in a wave,
while each row still waits at least half its nominal delay. A receiver's ``Retry-After`` is a floor.
The schedule is persisted (``outbox.due_at``), so this is arithmetic, not a retry loop: a library such
as tenacity retries a call in-process, which would lose the schedule on a restart.
"""

from __future__ import annotations

import random


def delay_seconds(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1 for the first failure)."""
    nominal = min(cap, base * (2 ** max(0, attempts - 1)))
    delay: float = nominal / 2 + (rng or random).uniform(0, nominal / 2)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, cap))
    return delay
