"""A fast webhook receiver for the delivery benchmark: answers every POST with 204 and notes the time.

It runs as its own process (``python -m bench.receiver --port N``) so it never shares a GIL with the
workers it measures. It is a bare ASGI callable under the same ``uvicorn.run`` as the hub (uvloop,
httptools), with no framework in the way, so its ceiling is well above what the workers reach.

- ``POST`` anything: recorded as (``webhook-id``, wall-clock time when the body was read) and
  answered 204. The last request is kept whole so the benchmark can verify its signature.
- ``GET /_stats``: counts, unique ids and the first and last receipt times.
- ``GET /_receipts``: every ``webhook-id`` with the time it first arrived.
- ``GET /_sample``: the last request's path, headers and body (for ``standardwebhooks`` verification).
- ``POST /_reset``: forget everything.
- ``GET /healthz``: readiness, as ``bench.servers`` expects.

Times are ``time.time()``: the benchmark compares them with commit times taken in another process on
the same machine, which a monotonic clock could not do.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Receipts:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.first_seen: dict[str, float] = {}
        self.sample: dict[str, Any] | None = None

    def record(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes, at: float) -> None:
        self.count += 1
        self.first = at if self.first is None else self.first
        self.last = at
        webhook_id = next((v.decode() for k, v in headers if k == b"webhook-id"), "")
        self.first_seen.setdefault(webhook_id, at)
        self.sample = {"path": path, "headers": [(k.decode(), v.decode()) for k, v in headers], "body": body}

    def stats(self) -> dict[str, Any]:
        return {"count": self.count, "unique": len(self.first_seen), "first": self.first, "last": self.last}


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, content: bytes = b"") -> None:
    headers = [(b"content-length", str(len(content)).encode())]
    if content:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    receipts = Receipts()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        body = await _body(receive)
        if method == "POST" and not path.startswith("/_"):
            receipts.record(path, scope["headers"], body, time.time())
            await _reply(send, 204)
        elif path == "/_stats":
            await _reply(send, 200, orjson.dumps(receipts.stats()))
        elif path == "/_receipts":
            await _reply(send, 200, orjson.dumps(receipts.first_seen))
        elif path == "/_sample":
            sample = receipts.sample or {"path": "", "headers": [], "body": b""}
            await _reply(send, 200, orjson.dumps({**sample, "body": sample["body"].decode()}))
        elif path == "/_reset" and method == "POST":
            receipts.reset()
            await _reply(send, 204)
        elif path == "/healthz":
            await _reply(send, 200, b'{"status":"ok"}')
        else:
            await _reply(send, 404)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Webhook receiver for the delivery benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(), host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off"
    )


if __name__ == "__main__":
    main()
