"""The load driver: N asyncio workers on keep-alive httpx connections for a fixed duration.

A closed loop: each worker sends its next request as soon as the previous answer arrives,
so throughput is what the server sustains at that concurrency and latency includes queueing.
Requests sent in the first ``warmup`` seconds are not counted; requests sent in the measured
window are counted when they complete, even after it (so a slow request is still measured),
and throughput is their number over the time until the last one completed. The server's CPU
use over the window shows whether it, or the driver, was the bottleneck.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import httpx

from bench._rawhttp import RawConnection

# (method, path, body) for the i-th request of a scenario.
Request = tuple[str, str, bytes | None]
MakeRequest = Callable[[int], Request]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Stats:
    name: str
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int] = field(default_factory=Counter)
    server_cpu: float | None = None  # share of one core used by the server process
    driver_cpu: float | None = None  # share of one core used by this process
    sample_error: str | None = None
    load_average: float = 0.0  # the machine's 1-minute load average when the scenario ended
    # CPU-seconds the server went on spending after the load stopped, until idle (any background work
    # a burst leaves behind: ADR 0015's deferred indexing did, the hub now leaves none worth noting);
    # charged to its requests in the per-CPU figures.
    settle_cpu: float | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 400 or status == 0)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]


def _cpu_seconds(pid: int) -> float | None:
    # utime + stime of the process (all threads) and of its live children (serve --workers N), from
    # /proc (Linux only).
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = (int(fields[11]) + int(fields[12])) / _TICKS
    for child in _children(pid):
        total += _cpu_seconds(child) or 0.0
    return total


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(c) for c in handle.read().split()]
    except OSError:
        return []


def settle(pid: int, *, timeout: float = 120.0, interval: float = 0.25) -> float | None:
    """Wait until ``pid`` (and its children) use under 5 % of a core; the CPU-seconds spent till then."""
    start = _cpu_seconds(pid)
    if start is None:
        return None
    last, deadline = start, time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = _cpu_seconds(pid)
        if now is None:
            break
        if now - last < 0.05 * interval:
            return last - start
        last = now
    return last - start


def peak_rss_mb(pid: int) -> dict[int, float]:
    """Peak resident memory (VmHWM) of ``pid`` and each live descendant, in MB."""
    out: dict[int, float] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    out[pid] = int(line.split()[1]) / 1024
    except OSError:
        return out
    for child in _children(pid):
        out |= peak_rss_mb(child)
    return out


async def _load(
    name: str,
    base_url: str,
    headers: dict[str, str],
    make: MakeRequest,
    *,
    duration: float,
    concurrency: int,
    warmup: float,
    server_pid: int | None,
    timeout: float,
    raw: bool,
) -> Stats:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = iter(range(10**12))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    marks: dict[str, float | None] = {}
    last_done = stop_at

    async def send_httpx(
        client: httpx.AsyncClient, method: str, path: str, body: bytes | None
    ) -> tuple[int, str]:
        response = await client.request(method, path, content=body, headers=headers)
        return response.status_code, response.text

    async def send_raw(
        connection: RawConnection, method: str, path: str, body: bytes | None
    ) -> tuple[int, str]:
        try:
            status, content = await asyncio.wait_for(connection.request(method, path, body), timeout)
        except BaseException:
            connection.close()  # a half-read response would poison the next one
            raise
        return status, content.decode(errors="replace")

    async def worker(send: Callable[[str, str, bytes | None], Awaitable[tuple[int, str]]]) -> None:
        nonlocal last_done
        while True:
            method, path, body = make(next(counter))
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            try:
                status, text = await send(method, path, body)
                if status >= 400 and not errors:
                    errors.append(f"{status} {text[:300]}")
            except (httpx.HTTPError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                status = 0
                if not errors:
                    errors.append(f"{type(exc).__name__}: {exc}")
            done = time.perf_counter()
            if sent >= measure_from:
                latencies.append((done - sent) * 1000)
                statuses[status] += 1
                last_done = max(last_done, done)

    async def marker() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        marks["server0"] = _cpu_seconds(server_pid) if server_pid else None
        marks["driver0"] = time.process_time()
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        marks["server1"] = _cpu_seconds(server_pid) if server_pid else None
        marks["driver1"] = time.process_time()

    if raw:
        connections = [RawConnection(base_url, headers) for _ in range(concurrency)]
        try:
            await asyncio.gather(marker(), *(worker(partial(send_raw, c)) for c in connections))
        finally:
            for connection in connections:
                connection.close()
    else:
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
            await asyncio.gather(marker(), *(worker(partial(send_httpx, client)) for _ in range(concurrency)))
    s0, s1 = marks.get("server0"), marks.get("server1")
    d0, d1 = marks.get("driver0"), marks.get("driver1")
    return Stats(
        name=name,
        seconds=last_done - measure_from,
        latencies_ms=latencies,
        statuses=statuses,
        server_cpu=(s1 - s0) / duration if s0 is not None and s1 is not None else None,
        driver_cpu=(d1 - d0) / duration if d0 is not None and d1 is not None else None,
        sample_error=errors[0] if errors else None,
        load_average=os.getloadavg()[0],
    )


def run_load(
    name: str,
    base_url: str,
    headers: dict[str, str],
    make: MakeRequest,
    *,
    duration: float,
    concurrency: int,
    warmup: float = 1.0,
    server_pid: int | None = None,
    timeout: float = 60.0,
    raw: bool = False,
) -> Stats:
    coroutine = _load(
        name,
        base_url,
        headers,
        make,
        duration=duration,
        concurrency=concurrency,
        warmup=warmup,
        server_pid=server_pid,
        timeout=timeout,
        raw=raw,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
