"""A client that disconnects mid-body costs one log line, not a traceback (issue 10: log flooding).

Driven over a raw socket against the live server: the request line, headers and part of
the declared body are sent, then the connection is closed.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.clients import Client, FhirClients

# uvicorn's loggers do not propagate to the root logger: listen on them directly.
_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.asgi", "uvicorn.access", "wraparound")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Listening on a logger and its ancestors sees a propagated record more than once.
        if not any(r is record for r in self.records):
            self.records.append(record)

    def disconnects(self) -> list[logging.LogRecord]:
        return [r for r in self.records if "client disconnected" in r.getMessage()]


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    handler = _Recorder()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    return fhir.client("clinic")


def _send_partial(base_url: str, head: str, partial: bytes) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n" + partial)
        time.sleep(0.2)  # let the server start reading the body before the client goes away


def _wait_for(recorder: _Recorder, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(recorder.disconnects()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # anything else the server would log about it arrives by now


def _head(method: str, path: str, content_type: str, token: str | None = None) -> str:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {content_type}",
        "Content-Length: 4000",
        *([f"Authorization: Bearer {token}"] if token else []),
        "",
    ]
    return "\r\n".join(lines)


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/fhir/Patient", "application/fhir+json"),
        ("PUT", "/fhir/Organization/some-org", "application/fhir+json"),
        ("POST", "/fhir", "application/fhir+json"),
        ("POST", "/fhir/Patient/_search", "application/x-www-form-urlencoded"),
    ],
)
def test_disconnect_mid_body_logs_one_line(
    fhir: FhirClients, clinic: Client, recorder: _Recorder, method: str, path: str, content_type: str
) -> None:
    partial = b'{"resourceType": "Patient", "name": [{"family": "Half' if "json" in content_type else b"name="
    for _ in range(3):
        _send_partial(fhir.base_url, _head(method, path, content_type, clinic.token), partial)
    _wait_for(recorder, 3)

    lines = recorder.disconnects()
    assert len(lines) == 3, [r.getMessage() for r in recorder.records]
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in lines)
    assert all(path.split("?")[0] in r.getMessage() for r in lines)
    # No traceback anywhere, no error from uvicorn ("Exception in ASGI application").
    assert [r for r in recorder.records if r.exc_info or r.levelno >= logging.ERROR] == []
    # Nothing stored, and the server keeps serving.
    bundle = clinic.get("/fhir/Patient", params={"_summary": "count"}).json()
    assert bundle["total"] == 0


def test_disconnect_mid_token_request_logs_one_line(fhir: FhirClients, recorder: _Recorder) -> None:
    head = _head("POST", "/auth/token", "application/x-www-form-urlencoded")
    _send_partial(fhir.base_url, head, b"grant_type=client_credentials&client_assertion=eyJ")
    _wait_for(recorder, 1)
    [line] = recorder.disconnects()
    assert line.exc_info is None
    assert "/auth/token" in line.getMessage()
    assert [r for r in recorder.records if r.exc_info or r.levelno >= logging.ERROR] == []
    assert fhir.http.get("/fhir/metadata").status_code == 200
