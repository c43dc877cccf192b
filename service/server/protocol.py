"""uvicorn's HTTP/1.1 protocol with the read deadlines uvicorn lacks (slowloris, slow bodies).

uvicorn (0.54) bounds only the idle time between two requests (``timeout_keep_alive``), and
every byte a client sends cancels even that: a client trickling one header line a second, or
one body byte a second, holds its connection forever. This subclass of the httptools protocol
(what ``uvicorn[standard]`` runs) adds, per connection:

- a **header deadline**: the request line and headers must arrive within ``header_seconds`` of
  the connection opening, or of the first byte of the next request on a kept-alive connection;
- a **body deadline** in the manner of Apache's mod_reqtimeout (``body=20,MinRate=500``): the body
  has ``body_seconds``, and each ``body_min_rate`` bytes received buy one more second, up to
  ``body_max_seconds`` in all — a slow but steady upload finishes, a trickle does not;
- a **connection cap**: past ``max_connections`` open connections (or requests in progress) a
  request is answered 503 with Retry-After at once, as an OperationOutcome.

On expiry the client gets 408 with an OperationOutcome (when no response has started) and the
connection is closed; an app still waiting for the body sees a disconnect. One timer handle per
phase, set and cancelled on the event loop: no threads, nothing per byte but an addition.
Decision and the reverse-proxy settings production still needs: docs/adr/0011-slow-clients.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from service.errors import Issue, operation_outcome

log = logging.getLogger("wraparound.http")

_CONTENT_TYPE = b"application/fhir+json; charset=utf-8"


@dataclass(frozen=True)
class ReadBounds:
    header_seconds: float = 10.0
    body_seconds: float = 20.0
    body_min_rate: int = 500
    body_max_seconds: float = 120.0
    max_connections: int | None = 1000


def _outcome(code: str, diagnostics: str) -> bytes:
    return orjson.dumps(operation_outcome([Issue(code=code, diagnostics=diagnostics)]))


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The app a request gets past the connection cap: 503, and the connection closed."""
    body = _outcome("transient", "The server has too many open connections; retry shortly")
    headers = [
        (b"content-type", _CONTENT_TYPE),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    # RFC 9112 §6.3: without Content-Length or Transfer-Encoding a request has no body.
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        bounds: ReadBounds,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.bounds = bounds
        # The cap is checked here (on_headers_complete) so that the 503 is an OperationOutcome.
        self.limit_concurrency = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_cycle: RequestResponseCycle | None = None
        self._body_deadline = 0.0
        self._body_cap = 0.0

    # Header deadline -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the first byte of a later request on a kept-alive connection
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.bounds.header_seconds, self._headers_expired)

    def _headers_expired(self) -> None:
        self._header_timer = None
        log.info("closed a connection: request headers not received within %ss", self.bounds.header_seconds)
        previous = self.cycle
        if previous is None or previous.response_complete:
            self._answer_408(f"The request headers were not received within {self.bounds.header_seconds} s")
        else:
            # A pipelined request is still being answered: a 408 now would corrupt that response.
            previous.disconnected = True
            self.transport.close()

    def on_headers_complete(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        cap = self.bounds.max_connections
        if cap is not None and (len(self.connections) > cap or len(self.tasks) >= cap):
            log.warning("answered 503: more than %d connections or requests in progress", cap)
            app, self.app = self.app, _overloaded
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    # Body deadline ---------------------------------------------------------------------------
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Pipelined requests start here too, later: their clock starts when they are read.
        if cycle.more_body and _declares_body(cycle.scope["headers"]):  # type: ignore[arg-type]
            self._arm_body_timer(cycle)
        super()._start_asgi_task(cycle, app)

    def _arm_body_timer(self, cycle: RequestResponseCycle) -> None:
        self._cancel_body_timer()
        now = self.loop.time()
        self._body_cycle = cycle
        self._body_deadline = now + self.bounds.body_seconds
        self._body_cap = now + self.bounds.body_max_seconds
        self._body_timer = self.loop.call_at(self._body_deadline, self._body_expired)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._body_cycle is not None and self._body_cycle is self.cycle:
            # Each body_min_rate bytes earn a second; the timer catches up with it when it fires.
            extended = self._body_deadline + len(body) / self.bounds.body_min_rate
            self._body_deadline = min(self._body_cap, extended)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._body_cycle is self.cycle:
            self._cancel_body_timer()

    def _body_expired(self) -> None:
        self._body_timer = None
        cycle = self._body_cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        if self.loop.time() < self._body_deadline:
            self._body_timer = self.loop.call_at(self._body_deadline, self._body_expired)
            return
        self._body_cycle = None
        log.info("closed a connection: request body not received in time")
        started = cycle.response_started
        # The app waiting in receive() now sees http.disconnect; whatever it sends is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        if started:
            self.transport.close()
        else:
            self._answer_408("The request body was not received in time (too slow)")

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._body_cycle = None

    # Both ------------------------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _answer_408(self, diagnostics: str) -> None:
        if self.transport.is_closing():
            return
        body = _outcome("timeout", diagnostics)
        parts = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [
            b"content-type: ", _CONTENT_TYPE, b"\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]  # fmt: skip
        self.transport.write(b"".join(parts))
        self.transport.close()
