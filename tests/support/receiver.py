"""A real HTTP receiver on loopback for delivery tests (webhooks, FHIR push, anything that POSTs).

    with Receiver.start() as rx:
        rx.script(Reply(503, {"Retry-After": "7"}), Reply.delayed(5.0), Reply.trickle(b"slow"))
        ... deliver to rx.url("/hook") ...
        [first, second, third] = rx.wait_for(3, timeout=5)
        assert first.headers["webhook-id"] == ...

Each request is answered by the next scripted :class:`Reply`; once the script is exhausted, by the
``handler`` callback if one is set (it gets the :class:`RecordedRequest` and returns a Reply: build a
small FHIR server on top of it), else by ``default`` (200, empty). Every request is recorded, whole
body included, before it is answered. The server is a ``ThreadingHTTPServer`` (a thread per
connection, HTTP/1.1 keep-alive) on 127.0.0.1 and a free port; it only listens on IPv4 loopback.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[["RecordedRequest"], "Reply"]

# Where redirects point by default: the cloud metadata address an SSRF is usually after.
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # the request target as sent, query string included
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    time: float  # time.monotonic() when the request was fully read

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    """How to answer one request."""

    status: int = 200
    # Sent as given; "Transfer-Encoding: chunked" sends the body chunked (no Content-Length),
    # otherwise Content-Length is added unless given.
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before sending anything (to provoke timeouts)
    # Seconds between body bytes; None sends the body at once. Headers (with the full
    # Content-Length) go out first, so only a total deadline stops a trickle.
    trickle_interval: float | None = None

    @classmethod
    def delayed(cls, seconds: float, status: int = 200, **kwargs: Any) -> Reply:
        return cls(status, delay=seconds, **kwargs)

    @classmethod
    def trickle(cls, body: bytes = b"x" * 60, interval: float = 1.0, status: int = 200) -> Reply:
        return cls(status, body=body, trickle_interval=interval)

    @classmethod
    def redirect(cls, location: str = METADATA_URL, status: int = 302) -> Reply:
        return cls(status, {"Location": location})


class Receiver:
    def __init__(self, server: ThreadingHTTPServer, *, default: Reply, handler: Handler | None) -> None:
        self._server = server
        self.port: int = server.server_address[1]
        self.default = default
        self.handler = handler
        self._lock = threading.Condition()
        self._script: list[Reply] = []
        self._requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # exceptions raised by ``handler`` (answered with 500)
        self.connections = 0  # TCP connections accepted (a refused-before-connect test wants 0)
        self.stopped = threading.Event()

    @classmethod
    @contextmanager
    def start(cls, *, default: Reply | None = None, handler: Handler | None = None) -> Iterator[Receiver]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler, bind_and_activate=True)
        server.daemon_threads = True
        receiver = cls(server, default=default or Reply(), handler=handler)
        server.receiver = receiver  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield receiver
        finally:
            # Wakes delayed and trickling answers so their threads end instead of writing later.
            receiver.stopped.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def script(self, *replies: Reply | int) -> None:
        """Queue answers for the next requests, in order (an int is a bare status)."""
        with self._lock:
            self._script.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of what has been received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests have arrived; AssertionError after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= n, timeout=timeout):
                raise AssertionError(f"expected {n} requests within {timeout}s, got {len(self._requests)}")
            return list(self._requests)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            if self._script:
                return self._script.pop(0)
            handler = self.handler
        if handler is None:
            return self.default
        try:
            return handler(request)
        except Exception as exc:  # surfaced through ``errors`` so the test can fail on it
            self.errors.append(exc)
            return Reply(500, body=b"receiver handler failed")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stderr noise; tests read rx.requests instead

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = RecordedRequest(self.command, self.path, headers, self._read_body(), time.monotonic())
        reply = receiver._record(request)
        if reply.delay and receiver.stopped.wait(reply.delay):
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            names = {name.lower() for name in reply.headers}
            chunked = reply.headers.get("Transfer-Encoding", "").lower() == "chunked"
            if not chunked and "content-length" not in names:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if chunked:
                # No Content-Length: the client only learns the size by reading.
                for i in range(0, len(reply.body), 1024):
                    piece = reply.body[i : i + 1024]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            if reply.trickle_interval is None:
                self.wfile.write(reply.body)
                return
            self.wfile.flush()
            for i in range(len(reply.body)):
                self.wfile.write(reply.body[i : i + 1])
                self.wfile.flush()
                if receiver.stopped.wait(reply.trickle_interval):
                    break
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (deadline, size cap): expected in these tests.
            self.close_connection = True

    do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _serve

    def setup(self) -> None:
        super().setup()
        self.server.receiver._connected()  # type: ignore[attr-defined]

    def handle(self) -> None:
        # A client hanging up between keep-alive requests is not an error.
        with contextlib.suppress(TimeoutError, ConnectionError):
            super().handle()
