"""The partner inbox search scenario: ``Task?owner=…&status=requested&_count=20`` at a seeded size.

Run loaded (the run's concurrency) and one request at a time (service time without
queueing). Issue 11's target: the loaded search at least 0.15 of the ceiling, and at 1M Tasks
on PostgreSQL a p95 of at most 20 ms (checked on both rows there). The peer has no Task
inbox, so these rows have no peer figure.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlencode

import httpx

from bench import world
from bench.driver import Stats
from bench.report import Row, Target
from bench.scenarios import Hub

QUERY = urlencode({"owner": f"Organization/{world.PARTNER}", "status": "requested", "_count": "20"})
MIN_RATIO = 0.15
MAX_P95_MS = 20.0
P95_AT = 1_000_000  # Tasks, PostgreSQL only
SLOW_PROBE = 5.0  # seconds
PROBE_TIMEOUT = 120.0


def target(database: str, tasks: int, *, loaded: bool) -> Target | None:
    p95 = MAX_P95_MS if database == "postgresql" and tasks >= P95_AT else None
    ratio = MIN_RATIO if loaded else None
    return None if p95 is None and ratio is None else Target(min_ratio=ratio, max_p95_ms=p95)


def label(tasks: int) -> str:
    return f"{tasks // 1_000_000}M" if tasks >= 1_000_000 and tasks % 1_000_000 == 0 else f"{tasks // 1000}k"


def run(hub: Hub, tasks: int) -> list[Row]:
    """One probe request first; when it alone is slower than ``SLOW_PROBE`` seconds the loaded
    runs are skipped (they would only queue behind it) and the probe is the figure."""
    path = f"/fhir/Task?{QUERY}"
    began = time.perf_counter()
    try:
        response = httpx.get(f"{hub.server.base_url}{path}", headers=hub.partner, timeout=PROBE_TIMEOUT)
        status = response.status_code
    except httpx.TimeoutException:
        status = 0
    took = time.perf_counter() - began
    if status != 200 or took > SLOW_PROBE:
        name = f"inbox search, {label(tasks)} Tasks, one probe (load skipped)"
        probe = Stats(name, took, [took * 1000], load_average=os.getloadavg()[0])
        probe.statuses[status] += 1
        hub.report(probe)
        return [Row(hub.database, probe, None, target(hub.database, tasks, loaded=False))]
    hub.put_blob("bundle", response.json())
    return [
        hub.pair(
            f"inbox search, {label(tasks)} Tasks, c={concurrency}",
            hub.partner,
            lambda _i: ("GET", path, None),
            ("GET inbox Bundle blob", lambda _i: ("GET", "/blob/bundle", None)),
            concurrency=concurrency,
            target=target(hub.database, tasks, loaded=concurrency > 1),
        )
        for concurrency in sorted({hub.load.concurrency, 1}, reverse=True)
    ]
