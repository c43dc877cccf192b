"""``python bench/delivery.py``: how fast delivery workers drain the outbox; how soon a referral arrives.

Drain: real referrals (ServiceRequest → Task → outbox row, written by the referral workflow) to partners
whose Organization has a webhook Endpoint with a real signing secret, pointing at ``bench/receiver.py``
(its own process). K ``wraparound worker`` processes drain them; each figure is paired with the
receiver's ceiling measured right after it. Latency: one idle worker, referrals committed one at a time,
commit time against receipt time at the receiver. Prints figures; asserts nothing. docs/PERFORMANCE.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: put the repository root first (see bench/run.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
from pydantic import SecretStr
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from adapters.base import WRAPAROUND_CONNECTION_TYPE, Delivery
from adapters.webhook import SigningSecret, WebhookAdapter, WebhookConfig
from bench import servers, world
from bench._rawhttp import RawConnection
from bench.cli import _machine
from service.access.caller import Caller
from service.bootstrap import load_definitions
from service.delivery.operators import rotate_webhook_secret
from service.delivery.secrets import SecretBox, box_for, generate_key
from service.delivery.worker import transport_for
from service.rest import interactions
from service.rest.context import Context
from service.search.extract import extract_index_rows
from service.settings import Settings
from service.storage import outbox as outbox_sql
from service.storage import referrals as referral_sql
from service.storage.database import Database
from service.storage.outbox import ATTEMPT, OUTBOX
from service.storage.resources import ResourceStore
from service.wiring import wire

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLINIC = Caller(
    client_id="bench-clinic",
    organization_id=world.CLINIC,
    role="clinic",
    scopes="system/*.cruds",
    jti="bench",
)
DEFAULTS = Settings()
_TICKS = os.sysconf("SC_CLK_TCK")


def partner(i: int) -> str:
    return f"bench-dpartner-{i:02d}"


# -- the world -----------------------------------------------------------------------------------
@dataclass
class World:
    label: str
    url: str
    db: Database
    secrets: dict[str, str]  # partner id -> its webhook signing secret
    patients: list[str]
    spread: list[int] = field(default_factory=list)  # outbox ids spread over every partner
    single: list[int] = field(default_factory=list)  # outbox ids all for partner 0


def _directory(db: Database, box: SecretBox, receiver: str, partners: int) -> dict[str, str]:
    """Clinic, partners with an opt-out service each, and a webhook Endpoint on each partner."""
    now = datetime.now(UTC)
    secrets = {}
    with db.transaction() as conn:
        store = ResourceStore(conn)

        def put(rtype: str, rid: str, content: dict[str, Any]) -> None:
            store.create(rtype, content, extract_index_rows(content), now=now, resource_id=rid)

        put("Organization", world.CLINIC, {"resourceType": "Organization", "active": True, "name": "Clinic"})
        for i in range(partners):
            org, hook = partner(i), f"bench-hook-{i:02d}"
            put(
                "Endpoint",
                hook,
                {
                    "resourceType": "Endpoint",
                    "status": "active",
                    "connectionType": {"system": WRAPAROUND_CONNECTION_TYPE, "code": "webhook"},
                    "payloadType": [{"text": "FHIR transaction Bundle"}],
                    "address": f"{receiver}/hook/{org}",
                },
            )
            organization = {"resourceType": "Organization", "active": True, "name": f"Partner {i}"}
            put("Organization", org, {**organization, "endpoint": [{"reference": f"Endpoint/{hook}"}]})
            service = {
                "resourceType": "HealthcareService",
                "extension": [{"url": world.CONSENT_MODEL, "valueCode": "opt-out"}],
                "active": True,
                "providedBy": {"reference": f"Organization/{org}"},
                "name": f"Peer support ({org})",
            }
            put("HealthcareService", org.replace("partner", "service"), service)
            # The secret is sealed with the same key the workers get in WRAPAROUND_SECRET_KEY.
            secrets[org], _ = rotate_webhook_secret(conn, hook, box, now, timedelta(days=1))
    return secrets


def _context(conn: Any) -> Context:
    return Context(conn=conn, caller=CLINIC, base_url="http://bench/fhir", allow_private_endpoints=True)


def refer(db: Database, n: int, to: str, patient: str) -> tuple[int, str]:
    """One referral through the domain layer (validation, Task, grants, outbox, audit) in one
    transaction, as ``POST /fhir/ServiceRequest`` commits it; returns its outbox row's id and message id."""
    body = world.service_request(n, patient)
    body["performer"] = [{"reference": f"HealthcareService/{to.replace('partner', 'service')}"}]
    with db.transaction() as conn:
        stored = interactions.create(_context(conn), "ServiceRequest", body).stored
        assert stored is not None
        [task] = referral_sql.tasks_focusing(conn, stored.id)
        [row] = referral_sql.outbox_for(conn, f"Task/{task.id}")
    return int(row["id"]), str(row["message_id"])


def prepare(label: str, url: str, box: SecretBox, receiver: str, args: argparse.Namespace) -> World:
    print(f"\n== {label}: {url}", flush=True)
    began = time.perf_counter()
    db = Database(url)
    db.upgrade()
    load_definitions(db)
    secrets = _directory(db, box, receiver, args.recipients)
    patients = []
    for i in range(100):
        with db.transaction() as conn:
            stored = interactions.create(_context(conn), "Patient", world.patient(i)).stored
            assert stored is not None
            patients.append(stored.id)
    w = World(label, url, db, secrets, patients)
    for i in range(args.rows):
        w.spread.append(refer(db, i, partner(i % args.recipients), patients[i % 100])[0])
    for i in range(args.single_rows):
        w.single.append(refer(db, args.rows + i, partner(0), patients[i % 100])[0])
    took = time.perf_counter() - began
    total = args.rows + args.single_rows
    print(f"seeded {total} referrals through the domain layer in {took:.1f} s ({total / took:.0f}/s)")
    _park(db)
    return w


def _park(db: Database) -> None:
    # Seeded rows are set aside as delivered; each run puts back exactly the set it measures.
    with db.transaction() as conn:
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.state == "pending")
            .values(state="delivered", finished_at=func.now())
        )


def _queue(db: Database, ids: list[int], due: datetime) -> None:
    # As `deliveries retry` puts a row back: pending, a fresh attempt budget, no lease, a new fence.
    with db.transaction() as conn:
        outbox_sql.requeue(conn, ids, due_at=due, from_states=("pending", *outbox_sql.FINAL_STATES))


def _pending(db: Database) -> int:
    with db.transaction(write=False) as conn:
        return int(conn.execute(select(func.count()).where(OUTBOX.c.state == "pending")).scalar_one())


def _attempts_since(db: Database, since: datetime) -> tuple[dict[str, int], int]:
    with db.transaction(write=False) as conn:
        where = ATTEMPT.c.started_at >= since
        outcomes = conn.execute(
            select(ATTEMPT.c.outcome, func.count()).where(where).group_by(ATTEMPT.c.outcome)
        )
        workers = conn.execute(select(func.count(ATTEMPT.c.worker.distinct())).where(where)).scalar_one()
        return {str(o): int(n) for o, n in outcomes}, int(workers)


# -- processes and CPU -----------------------------------------------------------------------------
def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _backends(db: Database) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving this database (not other users of the server)."""
    if db.engine.dialect.name != "postgresql":
        return {}
    with db.transaction(write=False) as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalars()
        return {int(pid): _cpu(int(pid)) for pid in pids}


def _backend_cpu(before: dict[int, float], after: dict[int, float]) -> float:
    # A backend that appeared in the window counts whole; one that ended in it is lost (rare: pooled).
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _wait_idle(procs: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    """Until every worker has started (imports, migrations check) and sits idle, polling."""
    deadline = time.monotonic() + timeout
    last = [_cpu(p.pid) for p in procs]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = [_cpu(p.pid) for p in procs]
        if all(b - a < 0.05 for a, b in zip(last, now, strict=True)) and min(now) > 1.0:
            return
        last = now


def _machine_busy() -> tuple[float, float]:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@contextmanager
def receiver() -> Iterator[servers.Server]:
    port = servers.free_port()
    args = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
    with servers._running(args, dict(os.environ), port) as server:
        yield server


@contextmanager
def workers(url: str, key: str, count: int, **settings: Any) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``wraparound worker`` processes as deployed; stopped with SIGTERM (graceful) on exit."""
    env = servers.hub_env(url, 8000)
    env["WRAPAROUND_SECRET_KEY"] = key
    env.update({f"WRAPAROUND_{name.upper()}": str(value) for name, value in settings.items()})
    command = [sys.executable, "-m", "service.cli", "worker"]
    procs = [
        subprocess.Popen(command, cwd=servers.ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- drain throughput ------------------------------------------------------------------------------
@dataclass
class Drain:
    database: str
    scenario: str
    workers: int
    delivered: int
    seconds: float  # first receipt to an empty outbox
    from_due: float  # the rows falling due to an empty outbox (includes the first poll)
    ceilings: Ceilings | None = None
    worker_cpu: float = 0.0  # share of one core, all workers together
    receiver_cpu: float = 0.0
    postgres_cpu: float | None = None
    machine_cpu: float = 0.0  # share of the whole machine
    failed: int = 0  # attempts that did not deliver
    workers_seen: int = 0

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def cpu_ms(self, share: float | None) -> str:
        """CPU milliseconds per delivery: steadier than rates on a machine others are using."""
        return (
            "-"
            if share is None or not self.delivered
            else f"{share * self.from_due / self.delivered * 1000:.1f}"
        )

    @property
    def ratio(self) -> float:
        return self.rate / self.ceilings.httpx if self.ceilings and self.ceilings.httpx else 0.0


def _stats(rx: servers.Server) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{rx.base_url}/_stats", timeout=10).json()
    return stats


def drain(
    w: World, rx: servers.Server, key: str, ids: list[int], k: int, scenario: str, limit: float
) -> Drain:
    httpx.post(f"{rx.base_url}/_reset").raise_for_status()
    with workers(w.url, key, k) as procs:
        _wait_idle(procs)
        cpu0 = [_cpu(p.pid) for p in procs]
        rx_cpu0, pg0, busy0 = _cpu(rx.pid), _backends(w.db), _machine_busy()
        due = datetime.now(UTC)
        _queue(w.db, ids, due)
        started = time.time()
        while _pending(w.db) and time.time() - started < limit:
            time.sleep(0.05)
        done = time.time()
        window = done - started
        worker_cpu = sum(_cpu(p.pid) - c for p, c in zip(procs, cpu0, strict=True)) / window
        rx_cpu, pg, busy1 = (_cpu(rx.pid) - rx_cpu0) / window, _backends(w.db), _machine_busy()
    stats = _stats(rx)
    outcomes, seen = _attempts_since(w.db, due)
    first = stats["first"] or done
    result = Drain(
        w.label,
        scenario,
        k,
        outcomes.get("delivered", 0),
        done - first,
        window,
        worker_cpu=worker_cpu,
        receiver_cpu=rx_cpu,
        postgres_cpu=_backend_cpu(pg0, pg) / window if pg0 or pg else None,
        machine_cpu=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
        failed=sum(n for o, n in outcomes.items() if o != "delivered"),
        workers_seen=seen,
    )
    if _pending(w.db):
        print(f"    stopped after {limit:.0f} s with {_pending(w.db)} rows still pending", flush=True)
        _park(w.db)
    return result


# -- baselines: the receiver's ceiling, and the adapter with no database --------------------------
async def _concurrently(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    counter = iter(range(n))

    async def loop() -> None:
        for i in counter:
            await one(i)

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return n / (time.perf_counter() - began)


async def _httpx(url: str, body: bytes, headers: list[tuple[str, str]], n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(_i: int) -> None:
            (await client.post(url, content=body, headers=headers)).raise_for_status()

        return await _concurrently(n, concurrency, one)


async def _raw(base_url: str, body: bytes, headers: dict[str, str], n: int, concurrency: int) -> float:
    pool = [RawConnection(base_url, headers) for _ in range(concurrency)]
    free = asyncio.Queue[RawConnection]()
    for connection in pool:
        free.put_nowait(connection)

    async def one(_i: int) -> None:
        connection = await free.get()
        try:
            status, _ = await connection.request("POST", "/hook/raw", body)
            assert status == 204
        finally:
            free.put_nowait(connection)

    try:
        return await _concurrently(n, concurrency, one)
    finally:
        for connection in pool:
            connection.close()


def _adapter_input(rx: servers.Server, sample: dict[str, Any], secret: str) -> tuple[Delivery, WebhookConfig]:
    event = orjson.loads(sample["body"])
    delivery = Delivery(
        message_id="msg_bench",
        event="referral.created",
        attempt=1,
        address=f"{rx.base_url}/hook/adapter",
        recipient="Organization/bench",
        task="Task/bench",
        task_url=event["data"]["task"],
        collect_url="http://127.0.0.1:8000/app/",
        hub_base="http://127.0.0.1:8000/fhir",
        occurred_at=datetime.now(UTC),
        task_status=event["data"].get("taskStatus"),
        bundle=event["data"]["bundle"],
    )
    return delivery, WebhookConfig(secrets=[SigningSecret(secret=SecretStr(secret))])


async def _adapter(delivery: Delivery, config: WebhookConfig, n: int, concurrency: int) -> float:
    adapter, transport = WebhookAdapter(), transport_for(Settings(allow_private_endpoints=True))

    async def one(i: int) -> None:
        await adapter.deliver(replace(delivery, message_id=f"msg_bench_{i}"), config, transport)

    return await _concurrently(n, concurrency, one)


@dataclass(frozen=True)
class Ceilings:
    httpx: float  # one keep-alive httpx.AsyncClient: the ratio's denominator
    raw: float  # the minimal asyncio client of bench/_rawhttp.py: the receiver's own ceiling
    adapter: float  # WebhookAdapter.deliver alone (body, signing, a client per call), no database


def ceilings(rx: servers.Server, sample: dict[str, Any], secret: str, n: int, concurrency: int) -> Ceilings:
    """The same number of POSTs of the same signed body, at the workers' concurrency, three ways."""
    body = sample["body"].encode()
    headers = [(k, v) for k, v in sample["headers"] if k.startswith(("webhook-", "content-type"))]
    delivery, config = _adapter_input(rx, sample, secret)
    found = Ceilings(
        httpx=asyncio.run(_httpx(f"{rx.base_url}/hook/httpx", body, headers, n, concurrency)),
        raw=asyncio.run(_raw(rx.base_url, body, dict(headers), n, concurrency)),
        adapter=asyncio.run(_adapter(delivery, config, n, concurrency)),
    )
    httpx.post(f"{rx.base_url}/_reset").raise_for_status()
    return found


def verify_sample(rx: servers.Server, secrets: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Check one delivered request with the standardwebhooks library (signing really happened)."""
    sample: dict[str, Any] = httpx.get(f"{rx.base_url}/_sample", timeout=10).json()
    org = sample["path"].rsplit("/", 1)[-1]
    payload = Webhook(secrets[org]).verify(sample["body"], dict(sample["headers"]))
    kinds = sorted(e["resource"]["resourceType"] for e in payload["data"]["bundle"]["entry"])
    print(f"    verified one delivery to {org}: {payload['type']}, {len(sample['body'])} bytes, {kinds}")
    return sample, secrets[org]


# -- commit-to-receipt latency ---------------------------------------------------------------------
@dataclass
class Latency:
    database: str
    poll: float
    sent: int
    latencies_ms: list[float]

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def latency(
    w: World, rx: servers.Server, key: str, poll: float, rate: float, seconds: float, start: int
) -> Latency:
    """One idle worker; referrals committed one at a time at ``rate``/s; receipt minus commit time."""
    httpx.post(f"{rx.base_url}/_reset").raise_for_status()
    committed: dict[str, float] = {}
    partners = len(w.secrets)
    with workers(w.url, key, 1, delivery_poll_seconds=poll) as procs:
        _wait_idle(procs)
        began = time.perf_counter()
        for i in range(round(rate * seconds)):
            time.sleep(max(0.0, began + i / rate - time.perf_counter()))
            _, message_id = refer(w.db, start + i, partner(i % partners), w.patients[i % len(w.patients)])
            committed[message_id] = time.time()
        deadline = time.time() + 15
        while time.time() < deadline and _stats(rx)["unique"] < len(committed):
            time.sleep(0.1)
    received: dict[str, float] = httpx.get(f"{rx.base_url}/_receipts", timeout=10).json()
    ms = [(received[m] - t) * 1000 for m, t in committed.items() if m in received]
    return Latency(w.label, poll, len(committed), ms)


# -- the run ---------------------------------------------------------------------------------------
def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"


def drain_table(rows: list[Drain], target: float) -> str:
    out = [
        "| database | scenario | workers | delivered | seconds | deliveries/s | httpx ceiling/s | ratio "
        "| raw ceiling/s | adapter alone/s | workers CPU | workers ms/delivery | PostgreSQL CPU "
        "| PostgreSQL ms/delivery | receiver CPU | machine CPU | failed attempts | target | verdict |",
        "|" + "---|" * 19,
    ]
    for r in rows:
        c = r.ceilings or Ceilings(0.0, 0.0, 0.0)
        aimed = r.database == "postgresql" and r.workers == 2 and r.scenario != "1 recipient"
        verdict = ("meets" if r.rate >= target else "BELOW TARGET") if aimed else "-"
        out.append(
            f"| {r.database} | {r.scenario} | {r.workers} | {r.delivered} | {r.seconds:.2f} | {r.rate:.0f} "
            f"| {c.httpx:.0f} | {r.ratio:.3f} | {c.raw:.0f} | {c.adapter:.0f} | {_pct(r.worker_cpu)} "
            f"| {r.cpu_ms(r.worker_cpu)} | {_pct(r.postgres_cpu)} | {r.cpu_ms(r.postgres_cpu)} "
            f"| {_pct(r.receiver_cpu)} | {_pct(r.machine_cpu)} | {r.failed} "
            f"| {f'>= {target:.0f}/s' if aimed else '-'} | {verdict} |"
        )
    return "\n".join(out)


def latency_table(rows: list[Latency], target_ms: float) -> str:
    out = [
        "| database | poll s | referrals | received | p50 ms | p95 ms | p99 ms | max ms | target | verdict |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        p95 = r.percentile(95)
        verdict = "meets" if p95 < target_ms and len(r.latencies_ms) == r.sent else "BELOW TARGET"
        out.append(
            f"| {r.database} | {r.poll:g} | {r.sent} | {len(r.latencies_ms)} | {r.percentile(50):.0f} "
            f"| {p95:.0f} | {r.percentile(99):.0f} | {max(r.latencies_ms, default=float('nan')):.0f} "
            f"| p95 < {target_ms:.0f} ms | {verdict} |"
        )
    return "\n".join(out)


def _print_drain(r: Drain) -> None:
    c = r.ceilings or Ceilings(0.0, 0.0, 0.0)
    print(
        f"{r.database:<10} {r.scenario:<28} K={r.workers}  {r.delivered:5d} in {r.seconds:6.2f} s = "
        f"{r.rate:6.0f}/s (from due {r.from_due:.2f} s)  ceilings: httpx {c.httpx:.0f}/s, raw {c.raw:.0f}/s, "
        f"adapter alone {c.adapter:.0f}/s\n    workers CPU {_pct(r.worker_cpu)} ({r.cpu_ms(r.worker_cpu)} ms "
        f"each)  PostgreSQL {_pct(r.postgres_cpu)} ({r.cpu_ms(r.postgres_cpu)} ms)  receiver "
        f"{_pct(r.receiver_cpu)}  "
        f"machine {_pct(r.machine_cpu)}  failed {r.failed}  workers seen {r.workers_seen}",
        flush=True,
    )


def _print_latency(r: Latency) -> None:
    print(
        f"{r.database:<10} latency, poll {r.poll:g} s: {len(r.latencies_ms)}/{r.sent} received, p50 "
        f"{r.percentile(50):.0f}  p95 {r.percentile(95):.0f}  p99 {r.percentile(99):.0f}  mean "
        f"{statistics.fmean(r.latencies_ms) if r.latencies_ms else float('nan'):.0f} ms",
        flush=True,
    )


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1500, help="outbox rows spread over the recipients")
    parser.add_argument("--single-rows", type=int, default=400, help="outbox rows for one recipient")
    parser.add_argument("--recipients", type=int, default=20, help="partner organisations with a webhook")
    parser.add_argument("--workers", default="1,2,4", help="worker counts on PostgreSQL (SQLite: 1)")
    parser.add_argument("--polls", default=f"{DEFAULTS.delivery_poll_seconds:g},0.05", help="poll intervals")
    parser.add_argument("--rate", type=float, default=20.0, help="referrals/s in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency run")
    parser.add_argument("--limit", type=float, default=120.0, help="longest drain before giving up")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN, help="server for the throwaway database")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args()


@contextmanager
def _databases(args: argparse.Namespace) -> Iterator[list[tuple[str, str]]]:
    name = f"bench_delivery_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="wraparound-bench-delivery-") as tmp:
        urls = []
        if args.db in ("sqlite", "both"):
            urls.append(("sqlite", f"sqlite:///{tmp}/delivery.db"))
        if args.db in ("postgresql", "both"):
            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            urls.append(("postgresql", args.postgres_url.rsplit("/", 1)[0] + f"/{name}"))
        try:
            yield urls
        finally:
            if args.db in ("postgresql", "both"):
                with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    args = _args()
    key = generate_key()
    box = box_for(Settings(secret_key=key))
    print(f"machine: {_machine()}")
    print(
        f"worker settings: concurrency {DEFAULTS.delivery_concurrency}, per recipient "
        f"{DEFAULTS.delivery_partner_concurrency}, poll {DEFAULTS.delivery_poll_seconds:g} s (defaults)"
    )
    wire()
    drains: list[Drain] = []
    latencies: list[Latency] = []
    with receiver() as rx, _databases(args) as urls:
        for label, url in urls:
            w = prepare(label, url, box, rx.base_url, args)
            try:
                counts = [int(k) for k in args.workers.split(",")] if label == "postgresql" else [1]
                cases = [
                    (f"{args.recipients} recipients", w.spread, k, DEFAULTS.delivery_concurrency)
                    for k in counts
                ]
                cases.append(
                    (
                        "1 recipient",
                        w.single,
                        counts[min(1, len(counts) - 1)],
                        DEFAULTS.delivery_partner_concurrency,
                    )
                )
                for scenario, ids, k, per_worker in cases:
                    result = drain(w, rx, key, ids, k, scenario, args.limit)
                    sample, secret = verify_sample(rx, w.secrets)
                    result.ceilings = ceilings(rx, sample, secret, len(ids), k * per_worker)
                    _print_drain(result)
                    drains.append(result)
                start = args.rows + args.single_rows
                for poll in (float(p) for p in args.polls.split(",")):
                    measured = latency(w, rx, key, poll, args.rate, args.seconds, start)
                    start += measured.sent
                    _print_latency(measured)
                    latencies.append(measured)
            finally:
                w.db.dispose()
    print("\n" + drain_table(drains, 500.0))
    print("\n" + latency_table(latencies, 1000.0))
    if args.json:
        figures = {
            "machine": _machine(),
            "drains": [{**asdict(d), "rate": d.rate, "ratio": d.ratio} for d in drains],
            "latencies": [{**vars(r), "p50": r.percentile(50), "p95": r.percentile(95)} for r in latencies],
        }
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
