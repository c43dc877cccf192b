"""``python bench/slow_clients.py --url http://127.0.0.1:8000``: a slowloris and slow-body attack on loopback.

Opens ``--loris`` connections that trickle header lines (never finishing the headers) and
``--slow-body`` connections that send complete headers for a form body and then trickle it,
one byte every ``--trickle`` seconds. Meanwhile a normal client fetches ``/fhir/metadata`` on
fresh connections. Every second it prints how many attack connections the server still holds
open, and at the end the normal requests' latency. A benchmark: it prints figures, never asserts.
Only loopback targets are allowed (the workplace rule for load tests); the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Held:
    opened: int = 0
    open_now: int = 0
    closed_after: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


async def _attacker(
    host: str, port: int, head: bytes, trickle: bytes, every: float, held: Held, stop: float
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        held.statuses["connect-refused"] = held.statuses.get("connect-refused", 0) + 1
        return
    held.opened += 1
    held.open_now += 1
    started = time.monotonic()
    try:
        writer.write(head)
        await writer.drain()
        while time.monotonic() < stop:
            # A read that returns means the server answered or closed: the connection is no longer held.
            try:
                first = await asyncio.wait_for(reader.read(200), timeout=every)
            except TimeoutError:
                writer.write(trickle)
                await writer.drain()
                continue
            status = first.split(b" ", 2)[1].decode() if first.startswith(b"HTTP/") else "closed"
            held.statuses[status] = held.statuses.get(status, 0) + 1
            break
    except (ConnectionError, OSError):
        held.statuses["reset"] = held.statuses.get("reset", 0) + 1
    finally:
        if time.monotonic() < stop:
            held.closed_after.append(time.monotonic() - started)
        held.open_now -= 1
        writer.close()


async def _normal(host: str, port: int, stop: float, latencies: list[float], failures: list[str]) -> None:
    request = f"GET /fhir/metadata HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < stop:
        began = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=30)
            writer.close()
            status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b"none"
            if status == b"200":
                latencies.append(time.monotonic() - began)
            else:
                failures.append(status.decode())
        except (OSError, TimeoutError) as exc:
            failures.append(type(exc).__name__)
        await asyncio.sleep(0.5)


async def attack(args: argparse.Namespace) -> None:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in LOOPBACK:
        raise SystemExit("loopback targets only")
    stop = time.monotonic() + args.duration
    loris, slow = Held(), Held()
    loris_head = f"GET /fhir/metadata HTTP/1.1\r\nHost: {host}\r\n".encode()
    body_head = (
        f"POST /auth/token HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    tasks = [
        asyncio.create_task(_attacker(host, port, loris_head, b"X-a: b\r\n", args.trickle, loris, stop))
        for _ in range(args.loris)
    ]
    tasks += [
        asyncio.create_task(_attacker(host, port, body_head, b"a", args.trickle, slow, stop))
        for _ in range(args.slow_body)
    ]
    await asyncio.sleep(1.0)  # let the attack connections open before the normal client starts
    latencies: list[float] = []
    failures: list[str] = []
    normal = asyncio.create_task(_normal(host, port, stop, latencies, failures))
    began = time.monotonic()
    while time.monotonic() < stop:
        elapsed = time.monotonic() - began
        print(f"t={elapsed:5.1f}s  held: slowloris {loris.open_now:4d}  slow-body {slow.open_now:3d}")
        await asyncio.sleep(1.0)
    await asyncio.gather(*tasks, normal)
    for name, held in (("slowloris", loris), ("slow-body", slow)):
        closed = sorted(held.closed_after)
        spread = f"closed after {closed[0]:.1f}-{closed[-1]:.1f} s" if closed else "none closed"
        print(f"{name}: opened {held.opened}, {spread} ({len(closed)} closed), answers {held.statuses}")
    if latencies:
        ms = sorted(x * 1000 for x in latencies)
        p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
        print(
            f"normal client: {len(ms)} answered 200, median {statistics.median(ms):.1f} ms, "
            f"p95 {p95:.1f} ms, max {ms[-1]:.1f} ms; failures {failures or 'none'}"
        )
    else:
        print(f"normal client: nothing answered 200; failures {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--loris", type=int, default=500, help="connections trickling headers")
    parser.add_argument("--slow-body", type=int, default=50, help="connections trickling a body")
    parser.add_argument("--trickle", type=float, default=2.0, help="seconds between trickled bytes")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds the attack lasts")
    asyncio.run(attack(parser.parse_args()))


if __name__ == "__main__":
    main()
