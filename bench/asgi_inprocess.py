"""``python bench/asgi_inprocess.py``: the hub's own CPU per request, with HTTP taken out.

The app is driven in process through its ASGI interface: ``--concurrency`` coroutines send requests
one after another, the receive/send callables are trivial, and there are no sockets, uvicorn or load
driver on the machine. What is left is the app: its middleware, the hot path, the service layer, the
database and the audit writer. It prints requests per second and the CPU per request of each of the
process's threads (the event loop, the threadpool, the audit writer), from ``/proc``. It asserts
nothing. It answers "where does a request's CPU go" reproducibly on a noisy machine; ``bench/run.py``
says what a client sees.

    python bench/asgi_inprocess.py --kind read --requests 6000
    python bench/asgi_inprocess.py --kind inbox --tasks 10000 --requests 1600
    python bench/asgi_inprocess.py --kind create --database postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson

# Run as a script, bench/ is on sys.path rather than the repository root (as for bench/run.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth.client import ASSERTION_TYPE, sign_client_assertion
from bench import seed, world
from bench.inbox import QUERY
from bench.servers import hub_env

BASE = "http://127.0.0.1:8000"
KINDS = ("read", "create", "referral", "transaction", "inbox")
CONCURRENCY = 16


def per_worker(requests: int, concurrency: int) -> tuple[int, int]:
    """Requests each of ``concurrency`` workers sends for ``--requests``: in the warm-up, then measured."""
    return max(1, requests // 10), max(1, requests // concurrency)


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each thread name (summed over threads sharing one, as the threadpool's)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        name = thread.name.rstrip("_0123456789")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _scope(method: str, path: str, query: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }


async def _main(args: argparse.Namespace) -> None:
    url = args.database or f"sqlite:///{Path(tempfile.mkdtemp()) / 'inprocess.db'}"
    os.environ.update(hub_env(url, 8000))
    from service.app import create_app

    app = create_app()
    db = app.state.database
    async with app.router.lifespan_context(app):
        world.seed_directory(db)
        clients = world.Clients(db)
        clients.register("bench-clinic-client", world.CLINIC, "clinic")
        clients.register("bench-partner-client", world.PARTNER, "partner")
        if args.kind == "inbox":
            seed.seed_tasks(db, args.tasks)
        who = "bench-partner-client" if args.kind == "inbox" else "bench-clinic-client"
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            assertion = sign_client_assertion(who, f"{BASE}/auth/token", clients.key)
            token = await client.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion,
                    "scope": "system/*.cruds",
                },
            )
            headers = world.headers(token.json()["access_token"])
            patient = ""
            if args.kind != "inbox":
                made = await client.post(
                    "/fhir/Patient", content=orjson.dumps(world.patient(1)), headers=headers
                )
                patient = made.json()["id"]
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        numbers = itertools.count(10)
        request = _requests(args.kind, patient, raw, numbers)

        async def one() -> None:
            scope, body = request()
            statuses: list[int] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(scope, receive, send)
            if statuses[0] not in (200, 201):
                raise SystemExit(f"{args.kind}: the hub answered {statuses[0]}")

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        warm_up, measured = per_worker(args.requests, args.concurrency)
        await _run(worker, args.concurrency, warm_up)
        before, began, cpu = _thread_cpu(), time.perf_counter(), time.process_time()
        await _run(worker, args.concurrency, measured)
        done = measured * args.concurrency
        wall, used, after = time.perf_counter() - began, time.process_time() - cpu, _thread_cpu()
    print(
        f"{args.kind} on {db.dialect}, {done} requests at concurrency {args.concurrency}: "
        f"{done / wall:.0f} req/s, {used / done * 1e6:.0f} µs of CPU per request (all threads)"
    )
    for name in sorted(after):
        spent = after[name] - before.get(name, 0.0)
        if spent > 0:
            print(f"  {name}: {spent / done * 1e6:.0f} µs per request")


def _requests(
    kind: str, patient: str, headers: list[tuple[bytes, bytes]], numbers: itertools.count[int]
) -> Callable[[], tuple[dict[str, Any], bytes]]:
    def make() -> tuple[dict[str, Any], bytes]:
        if kind == "read":
            return _scope("GET", f"/fhir/Patient/{patient}", "", headers), b""
        if kind == "inbox":
            return _scope("GET", "/fhir/Task", QUERY, headers), b""
        n = next(numbers)
        if kind == "create":
            resource, path = world.patient(n), "/fhir/Patient"
        elif kind == "referral":
            resource, path = world.service_request(n, patient), "/fhir/ServiceRequest"
        else:
            resource, path = world.referral_bundle(n), "/fhir"
        body = orjson.dumps(resource)
        return _scope("POST", path, "", [*headers, (b"content-length", str(len(body)).encode())]), body

    return make


async def _run(worker: Callable[[int], Awaitable[None]], concurrency: int, count: int) -> None:
    await asyncio.gather(*(worker(count) for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=KINDS, default="read")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--tasks", type=int, default=10000, help="Tasks to seed for --kind inbox")
    parser.add_argument(
        "--database", help="SQLAlchemy URL; default a fresh SQLite file (a PostgreSQL one is used as is)"
    )
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
