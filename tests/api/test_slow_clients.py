"""Slow clients (issue 10): trickled headers and bodies are answered 408 and closed; others are served.

Driven with real sockets against the live server (the production uvicorn configuration of
service/serving.py) with short bounds. Times are asserted only as generous upper bounds
("closed within"), never as measurements; bench/slow_clients.py measures.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from service.storage.database import Database
from tests.support.live import LiveServer

GENEROUS = 15.0  # seconds: a bound far above the configured ones, for a loaded CI machine
BOUNDS: dict[str, Any] = {
    "header_timeout_seconds": 1.0,
    "body_timeout_seconds": 1.0,
    "body_min_bytes_per_second": 1000,
    "body_max_seconds": 10.0,
}


@pytest.fixture(scope="module")
def bounded(database: Database) -> Iterator[LiveServer]:
    with LiveServer.start(database, **BOUNDS) as live:
        yield live


def _address(live: LiveServer) -> tuple[str, int]:
    host, port = live.base_url.removeprefix("http://").split(":")
    return host, int(port)


def _until_closed(sock: socket.socket, trickle: bytes | None, every: float = 0.2) -> tuple[bytes, float]:
    """Keep trickling ``trickle`` until the server closes; returns what it answered and when."""
    began = time.monotonic()
    answer = b""
    sock.settimeout(every)
    while time.monotonic() - began < GENEROUS:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            if trickle and not answer:
                with contextlib.suppress(OSError):  # the server closed between our read and our write
                    sock.sendall(trickle)
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    return answer, time.monotonic() - began


def _outcome(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def test_trickled_headers_get_408_and_are_closed_while_others_are_served(bounded: LiveServer) -> None:
    answers: list[tuple[bytes, float]] = []

    def loris() -> None:
        with socket.create_connection(_address(bounded), timeout=5) as sock:
            sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n")
            answers.append(_until_closed(sock, b"X-Slow: 1\r\n"))

    attackers = [threading.Thread(target=loris) for _ in range(20)]
    for thread in attackers:
        thread.start()
    time.sleep(0.3)
    with httpx.Client(base_url=bounded.base_url, timeout=10) as http:
        assert http.get("/fhir/metadata").status_code == 200  # served while the slow ones are held
    for thread in attackers:
        thread.join()
    assert len(answers) == 20
    for answer, took in answers:
        assert took < GENEROUS, "the slow client was never closed"
        status, outcome = _outcome(answer)
        assert status == 408
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "timeout"  # type: ignore[index]


def test_a_silent_connection_is_closed_too(bounded: LiveServer) -> None:
    with socket.create_connection(_address(bounded), timeout=5) as sock:
        answer, took = _until_closed(sock, None)
    assert took < GENEROUS
    assert _outcome(answer)[0] == 408


def test_the_header_deadline_restarts_for_each_request_on_a_kept_alive_connection(
    bounded: LiveServer,
) -> None:
    with socket.create_connection(_address(bounded), timeout=5) as sock:
        sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # longer than the header bound, shorter than keep-alive: still open and idle
        sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\n")
        answer, took = _until_closed(sock, b"X-Slow: 1\r\n")
    assert took < GENEROUS
    assert b"HTTP/1.1 408" in answer


def test_a_trickled_body_gets_408_and_is_closed_while_others_are_served(bounded: LiveServer) -> None:
    head = (
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 10000\r\n\r\n"
    )
    with socket.create_connection(_address(bounded), timeout=5) as sock:
        sock.sendall(head + b"grant_type=")
        with httpx.Client(base_url=bounded.base_url, timeout=10) as http:
            assert http.get("/fhir/metadata").status_code == 200
        answer, took = _until_closed(sock, b"a")
    assert took < GENEROUS
    status, outcome = _outcome(answer)
    assert status == 408
    assert outcome["issue"][0]["code"] == "timeout"  # type: ignore[index]


def test_a_slow_but_steady_body_is_read_to_the_end(bounded: LiveServer) -> None:
    # 8 000 bytes over about 1.6 s: past the 1 s body allowance, but each 2 000 bytes earn 2 s more.
    body = b"grant_type=client_credentials&x=" + b"a" * (8000 - 32)
    head = (
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with socket.create_connection(_address(bounded), timeout=10) as sock:
        sock.sendall(head)
        for start in range(0, len(body), 2000):
            time.sleep(0.4)
            sock.sendall(body[start : start + 2000])
        answer, _ = _until_closed(sock, None)
    # The token endpoint read it all and answered on its merits (a form without an assertion).
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"invalid_request" in answer or b"invalid_client" in answer


def test_past_the_connection_cap_requests_get_503_with_retry_after(database: Database) -> None:
    with LiveServer.start(database, max_connections=4, header_timeout_seconds=5.0) as live:
        idle = [socket.create_connection(_address(live), timeout=5) for _ in range(5)]
        try:
            time.sleep(0.3)  # let the server accept them all
            with httpx.Client(base_url=live.base_url, timeout=10) as http:
                refused = http.get("/fhir/metadata")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            assert refused.json()["issue"][0]["code"] == "transient"
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + GENEROUS
        status = 0
        while time.monotonic() < deadline and status != 200:
            with httpx.Client(base_url=live.base_url, timeout=10) as http:
                status = http.get("/fhir/metadata").status_code
            time.sleep(0.1)
        assert status == 200  # the cap counts open connections: closing them frees it
