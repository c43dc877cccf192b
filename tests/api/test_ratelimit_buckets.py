"""The token buckets behind the rate limits, on an injected clock: burst, refill, wait, eviction."""

from __future__ import annotations

import threading

import pytest

from service.api.ratelimit import Rate, TokenBuckets, parse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("spec", "rate"),
    [
        ("600/minute", Rate(600, 60.0)),
        ("10/second", Rate(10, 1.0)),
        ("100 / 2 hours", Rate(100, 7200.0)),
        ("5 per day", Rate(5, 86400.0)),
        ("3/Minute", Rate(3, 60.0)),
    ],
)
def test_specs_parse(spec: str, rate: Rate) -> None:
    assert parse(spec) == rate


@pytest.mark.parametrize(
    "spec", ["", "600", "minute", "0/minute", "5/0 minutes", "5/fortnight", "-1/second", "5/s"]
)
def test_bad_specs_are_refused_with_the_expected_form(spec: str) -> None:
    with pytest.raises(ValueError, match="600/minute"):
        parse(spec)


def test_a_client_bursts_to_the_allowance_then_waits_for_the_refill() -> None:
    clock = Clock()
    buckets = TokenBuckets(parse("3/minute"), clock=clock)
    assert [buckets.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.hit("a") == pytest.approx(20.0)  # one token every 20 s
    clock.now += 19.0
    assert buckets.hit("a") == pytest.approx(1.0)  # a refused hit takes nothing
    clock.now += 1.0
    assert buckets.hit("a") == 0.0
    assert buckets.hit("a") == pytest.approx(20.0)


def test_clients_have_their_own_buckets() -> None:
    buckets = TokenBuckets(parse("1/second"), clock=Clock())
    assert buckets.hit("busy") == 0.0
    assert buckets.hit("busy") > 0
    assert buckets.hit("calm") == 0.0


def test_the_bucket_never_holds_more_than_the_allowance() -> None:
    clock = Clock()
    buckets = TokenBuckets(parse("2/second"), clock=clock)
    buckets.hit("a")
    clock.now += 3600.0  # a long rest earns no more than a full bucket
    assert [buckets.hit("a") > 0 for _ in range(3)] == [False, False, True]


def test_idle_buckets_are_dropped_once_they_would_be_full() -> None:
    clock = Clock()
    buckets = TokenBuckets(parse("10/minute"), clock=clock)
    for n in range(1000):
        buckets.hit(f"client-{n}")
    assert len(buckets) == 1000
    clock.now += 59.0
    buckets.hit("late")
    assert len(buckets) == 1001  # not idle a whole period yet: kept, each may still be short of tokens
    clock.now += 1.0
    buckets.hit("later")
    assert len(buckets) == 2  # "late" and "later"


def test_memory_is_capped_even_under_many_active_keys() -> None:
    clock = Clock()
    buckets = TokenBuckets(parse("10/minute"), clock=clock, max_keys=100)
    for n in range(10_000):
        buckets.hit(f"spoofed-{n}")
    assert len(buckets) == 100
    # The most recent keys are the ones kept: the latest still has its spent token recorded.
    assert [buckets.hit("spoofed-9999") for _ in range(9)] == [0.0] * 9
    assert buckets.hit("spoofed-9999") > 0


def test_concurrent_hits_never_grant_more_than_the_allowance() -> None:
    buckets = TokenBuckets(parse("500/hour"), clock=Clock())
    granted: list[bool] = []

    def hammer() -> None:
        for _ in range(200):
            granted.append(buckets.hit("shared") == 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 500
