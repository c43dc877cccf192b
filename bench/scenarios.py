"""The measured scenarios against a running hub, each paired with its ceiling and peer measurements.

The ceiling server and the fhirstarter peer run beside the hub, and each hub figure is followed
at once by the matching ceiling figure (same concurrency, same JSON) and, where the peer has the
scenario, the peer's, so all three see the same machine: on a shared 2-core box, background load
shifts absolute figures far more than it shifts ratios.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import profiling, world
from bench.driver import MakeRequest, Stats, run_load, settle
from bench.report import Row, Target
from bench.servers import Server

# Issue 11's targets. The peer has no referral workflow, so its ServiceRequest create (a plain
# store) is printed for scale but carries no peer target.
TARGETS = {
    "create Patient": Target(min_ratio=0.15, min_peer_ratio=3.0),
    "create ServiceRequest": Target(min_ratio=0.10),
    "read Patient by id": Target(min_ratio=0.35, min_peer_ratio=3.0),
    "referral transaction Bundle": Target(min_ratio=0.05),
}
# Scenario names for --scenarios, and those the peer has.
SCENARIOS = ("create-patient", "create-referral", "read-patient", "transaction", "inbox")
PEER_SCENARIOS = frozenset({"create-patient", "create-referral", "read-patient"})
Report = Callable[[Stats], None]
ReportRow = Callable[[Row], None]
FHIR_JSON = {"Content-Type": world.FHIR_JSON, "Accept": world.FHIR_JSON}
SETUP_PATIENTS = 200


@dataclass
class Load:
    duration: float
    concurrency: int
    warmup: float
    raw: bool = False  # the light asyncio driver (bench._rawhttp) instead of httpx
    profile: Path | None = None  # --profile: py-spy samples of the hub's scenarios land here


@dataclass
class Peer:
    server: Server
    patients: list[str]  # ids of Patients created on the peer


@dataclass
class Hub:
    server: Server
    ceiling: Server
    peer: Peer | None
    database: str
    load: Load
    report: Report
    report_row: ReportRow
    clinic: dict[str, str]  # request headers with the clinic's token
    partner: dict[str, str]
    patients: list[str]  # ids of Patients the clinic created
    numbers: itertools.count[int]  # unique numbers for identifiers across scenarios

    def _run(
        self, name: str, server: Server, headers: dict[str, str], make: MakeRequest, concurrency: int
    ) -> Stats:
        sampler = (
            profiling.sampling(server.pid, self._profile_path(name), self.load.warmup + self.load.duration)
            if self.load.profile is not None and server is self.server
            else nullcontext()
        )
        with sampler:
            stats = self._measure(name, server, headers, make, concurrency)
        if server is self.server:
            # Before the ceiling and the peer are measured on the same CPU: background work the hub has
            # left after the burst would otherwise run during theirs.
            stats.settle_cpu = settle(server.pid)
        self.report(stats)
        if self.load.profile is not None and server is self.server:
            print(profiling.summarise(self._profile_path(name)), flush=True)
        return stats

    def _profile_path(self, name: str) -> Path:
        assert self.load.profile is not None
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return self.load.profile / f"{self.database}-{slug}.txt"

    def _measure(
        self, name: str, server: Server, headers: dict[str, str], make: MakeRequest, concurrency: int
    ) -> Stats:
        return run_load(
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

    def pair(
        self,
        name: str,
        headers: dict[str, str],
        make: MakeRequest,
        ceiling: tuple[str, MakeRequest],
        *,
        concurrency: int,
        target: Target | None,
        peer: tuple[str, MakeRequest] | None = None,
    ) -> Row:
        """The hub, then the ceiling and (when given and running) the peer, back to back."""
        stats = self._run(name, self.server, headers, make, concurrency)
        ceiling_name, ceiling_make = ceiling
        limit = self._run(f"  ceiling: {ceiling_name}", self.ceiling, FHIR_JSON, ceiling_make, concurrency)
        peer_stats = None
        if peer is not None and self.peer is not None:
            peer_name, peer_make = peer
            peer_stats = self._run(
                f"  peer: {peer_name}", self.peer.server, FHIR_JSON, peer_make, concurrency
            )
        row = Row(self.database, stats, limit, target, peer_stats)
        self.report_row(row)
        return row

    def put_blob(self, name: str, document: dict[str, Any]) -> None:
        httpx.put(f"{self.ceiling.base_url}/blob/{name}", content=world.body(document)).raise_for_status()


def _create_patients(
    base_url: str, path: str, headers: dict[str, str], numbers: itertools.count[int]
) -> list[str]:
    ids = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for _ in range(SETUP_PATIENTS):
            response = http.post(path, content=world.body(world.patient(next(numbers))))
            if response.status_code not in (200, 201):
                raise RuntimeError(
                    f"setup: a Patient create at {base_url} answered {response.status_code}: "
                    f"{response.text[:500]}"
                )
            ids.append(str(response.json()["id"]))
    return ids


def prepare(
    server: Server,
    ceiling: Server,
    peer: Server | None,
    clients: world.Clients,
    database: str,
    load: Load,
    report: Report,
    report_row: ReportRow,
) -> Hub:
    clinic = world.headers(clients.token(server.base_url, "bench-clinic-client"))
    partner = world.headers(clients.token(server.base_url, "bench-partner-client"))
    numbers = itertools.count(1)
    ids = _create_patients(server.base_url, "/fhir/Patient", clinic, numbers)
    # The peer answers a create with 200 (fhirstarter returns the resource without its 201).
    peer_side = Peer(peer, _create_patients(peer.base_url, "/Patient", FHIR_JSON, numbers)) if peer else None
    return Hub(server, ceiling, peer_side, database, load, report, report_row, clinic, partner, ids, numbers)


def writes_and_reads(hub: Hub, selected: frozenset[str]) -> list[Row]:
    pats, numbers, c = hub.patients, hub.numbers, hub.load.concurrency
    rows = []
    if "create-patient" in selected:
        rows.append(
            hub.pair(
                "create Patient",
                hub.clinic,
                lambda _i: ("POST", "/fhir/Patient", world.body(world.patient(next(numbers)))),
                ("POST echo Patient", lambda i: ("POST", "/echo", world.body(world.patient(i)))),
                concurrency=c,
                target=TARGETS["create Patient"],
                peer=(
                    "POST Patient",
                    lambda _i: ("POST", "/Patient", world.body(world.patient(next(numbers)))),
                ),
            )
        )

    def referral(n: int) -> dict[str, Any]:
        return world.service_request(n, pats[n % len(pats)])

    if "create-referral" in selected:
        rows.append(
            hub.pair(
                "create ServiceRequest",
                hub.clinic,
                lambda _i: ("POST", "/fhir/ServiceRequest", world.body(referral(next(numbers)))),
                ("POST echo ServiceRequest", lambda i: ("POST", "/echo", world.body(referral(i)))),
                concurrency=c,
                target=TARGETS["create ServiceRequest"],
                peer=(
                    "POST ServiceRequest (plain store)",
                    lambda i: ("POST", "/ServiceRequest", world.body(referral(i))),
                ),
            )
        )
    if "read-patient" in selected:
        response = httpx.get(f"{hub.server.base_url}/fhir/Patient/{pats[0]}", headers=hub.clinic, timeout=30)
        response.raise_for_status()
        hub.put_blob("patient", response.json())
        peer_pats = hub.peer.patients if hub.peer else []
        rows.append(
            hub.pair(
                "read Patient by id",
                hub.clinic,
                lambda i: ("GET", f"/fhir/Patient/{pats[i % len(pats)]}", None),
                ("GET Patient blob", lambda _i: ("GET", "/blob/patient", None)),
                concurrency=c,
                target=TARGETS["read Patient by id"],
                peer=(
                    "GET Patient by id",
                    lambda i: ("GET", f"/Patient/{peer_pats[i % len(peer_pats)]}", None),
                ),
            )
        )
    return rows


def transaction(hub: Hub) -> list[Row]:
    """POST /fhir with the referral transaction (fhirstarter has no transaction interaction)."""
    numbers = hub.numbers
    began = time.perf_counter()
    probe = httpx.post(
        f"{hub.server.base_url}/fhir",
        content=world.body(world.referral_bundle(next(numbers))),
        headers=hub.clinic,
        timeout=60,
    )
    if probe.status_code != 200:
        raise RuntimeError(
            f"setup: the referral transaction answered {probe.status_code}: {probe.text[:800]}"
        )
    print(f"one referral transaction alone: {(time.perf_counter() - began) * 1000:.0f} ms", flush=True)
    return [
        hub.pair(
            "referral transaction Bundle",
            hub.clinic,
            lambda _i: ("POST", "/fhir", world.body(world.referral_bundle(next(numbers)))),
            (
                "POST echo transaction Bundle",
                lambda i: ("POST", "/echo", world.body(world.referral_bundle(i))),
            ),
            concurrency=hub.load.concurrency,
            target=TARGETS["referral transaction Bundle"],
        )
    ]
