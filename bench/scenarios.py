"""The measured scenarios against a running hub, each paired with its ceiling measurement.

The ceiling server runs beside the hub and each hub figure is followed at once by the
matching ceiling figure (same concurrency, same JSON), so both see the same machine: on a
shared 2-core box, background load shifts absolute figures far more than it shifts ratios.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bench import world
from bench.driver import MakeRequest, Stats, run_load
from bench.report import Row, Target
from bench.servers import Server

INBOX_QUERY = urlencode({"owner": f"Organization/{world.PARTNER}", "status": "requested", "_count": "20"})
TARGETS = {
    "create Patient": Target(min_ratio=0.15),
    "create ServiceRequest": Target(min_ratio=0.10),
    "read Patient by id": Target(min_ratio=0.35),
}
INBOX_TARGET = Target(max_p95_ms=20.0)  # at 100k Tasks on PostgreSQL
Report = Callable[[Stats], None]
SLOW_PROBE = 5.0  # seconds
PROBE_TIMEOUT = 120.0


@dataclass
class Load:
    duration: float
    concurrency: int
    warmup: float
    raw: bool = False  # the light asyncio driver (bench._rawhttp) instead of httpx


@dataclass
class Hub:
    server: Server
    ceiling: Server
    database: str
    load: Load
    report: Report
    clinic: dict[str, str]  # request headers with the clinic's token
    partner: dict[str, str]
    patients: list[str]  # ids of Patients the clinic created
    numbers: itertools.count[int]  # unique numbers for identifiers across scenarios

    def _run(
        self, name: str, server: Server, headers: dict[str, str], make: MakeRequest, concurrency: int
    ) -> Stats:
        stats = run_load(
            name,
            server.base_url,
            headers,
            make,
            duration=self.load.duration,
            concurrency=concurrency,
            warmup=self.load.warmup,
            server_pid=server.pid,
            raw=self.load.raw,
        )
        self.report(stats)
        return stats

    def pair(
        self,
        name: str,
        headers: dict[str, str],
        make: MakeRequest,
        ceiling: tuple[str, MakeRequest],
        *,
        concurrency: int,
        target: Target | None,
    ) -> Row:
        stats = self._run(name, self.server, headers, make, concurrency)
        ceiling_name, ceiling_make = ceiling
        limit = self._run(
            f"  ceiling: {ceiling_name}", self.ceiling, world.headers("unused"), ceiling_make, concurrency
        )
        return Row(self.database, stats, limit, target)

    def put_blob(self, name: str, document: dict[str, Any]) -> None:
        httpx.put(f"{self.ceiling.base_url}/blob/{name}", content=world.body(document)).raise_for_status()


def prepare(
    server: Server, ceiling: Server, clients: world.Clients, database: str, load: Load, report: Report
) -> Hub:
    clinic = world.headers(clients.token(server.base_url, "bench-clinic-client"))
    partner = world.headers(clients.token(server.base_url, "bench-partner-client"))
    numbers = itertools.count(1)
    ids = []
    with httpx.Client(base_url=server.base_url, headers=clinic, timeout=30) as http:
        for _ in range(200):
            response = http.post("/fhir/Patient", content=world.body(world.patient(next(numbers))))
            if response.status_code != 201:
                raise RuntimeError(
                    f"setup: a Patient create answered {response.status_code}: {response.text[:500]}"
                )
            ids.append(str(response.json()["id"]))
    return Hub(server, ceiling, database, load, report, clinic, partner, ids, numbers)


def writes_and_reads(hub: Hub) -> list[Row]:
    pats, numbers, c = hub.patients, hub.numbers, hub.load.concurrency
    rows = [
        hub.pair(
            "create Patient",
            hub.clinic,
            lambda _i: ("POST", "/fhir/Patient", world.body(world.patient(next(numbers)))),
            ("POST echo Patient", lambda i: ("POST", "/echo", world.body(world.patient(i)))),
            concurrency=c,
            target=TARGETS["create Patient"],
        )
    ]

    def referral(n: int) -> dict[str, Any]:
        return world.service_request(n, pats[n % len(pats)])

    rows.append(
        hub.pair(
            "create ServiceRequest",
            hub.clinic,
            lambda _i: ("POST", "/fhir/ServiceRequest", world.body(referral(next(numbers)))),
            ("POST echo ServiceRequest", lambda i: ("POST", "/echo", world.body(referral(i)))),
            concurrency=c,
            target=TARGETS["create ServiceRequest"],
        )
    )
    response = httpx.get(f"{hub.server.base_url}/fhir/Patient/{pats[0]}", headers=hub.clinic, timeout=30)
    response.raise_for_status()
    hub.put_blob("patient", response.json())
    rows.append(
        hub.pair(
            "read Patient by id",
            hub.clinic,
            lambda i: ("GET", f"/fhir/Patient/{pats[i % len(pats)]}", None),
            ("GET Patient blob", lambda _i: ("GET", "/blob/patient", None)),
            concurrency=c,
            target=TARGETS["read Patient by id"],
        )
    )
    return rows


def inbox(hub: Hub, tasks: int) -> list[Row]:
    """The partner inbox search, loaded and one request at a time (service time without queueing).

    One probe request comes first; when it alone is slower than ``SLOW_PROBE`` seconds the
    loaded runs are skipped (they would only queue behind it) and the probe is the figure.
    """
    path = f"/fhir/Task?{INBOX_QUERY}"
    target = INBOX_TARGET if hub.database == "postgresql" and tasks >= 100_000 else None
    began = time.perf_counter()
    try:
        response = httpx.get(f"{hub.server.base_url}{path}", headers=hub.partner, timeout=PROBE_TIMEOUT)
        status = response.status_code
    except httpx.TimeoutException:
        status = 0
    took = time.perf_counter() - began
    if status != 200 or took > SLOW_PROBE:
        name = f"inbox search, {tasks // 1000}k Tasks, one probe (load skipped)"
        probe = Stats(name, took, [took * 1000], load_average=os.getloadavg()[0])
        probe.statuses[status] += 1
        hub.report(probe)
        return [Row(hub.database, probe, None, target)]
    hub.put_blob("bundle", response.json())
    return [
        hub.pair(
            f"inbox search, {tasks // 1000}k Tasks, c={concurrency}",
            hub.partner,
            lambda _i: ("GET", path, None),
            ("GET inbox Bundle blob", lambda _i: ("GET", "/blob/bundle", None)),
            concurrency=concurrency,
            target=target,
        )
        for concurrency in sorted({hub.load.concurrency, 1}, reverse=True)
    ]
