"""Starting and stopping the servers under test as subprocesses on loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.pinning import Pinning
from service.delivery.secrets import generate_key

ROOT = Path(__file__).resolve().parents[1]
NOT_PINNED = Pinning(reason="not asked")


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(database_url: str, port: int) -> dict[str, str]:
    """Settings for the hub under test: production defaults except what would skew the figures."""
    env = dict(os.environ)
    env.update(
        {
            "WRAPAROUND_DATABASE_URL": database_url,
            "WRAPAROUND_BASE_URL": f"http://127.0.0.1:{port}",
            # Rate limits would cap the load driver, not the hub.
            "WRAPAROUND_RATE_LIMIT": "100000000/minute",
            "WRAPAROUND_TOKEN_RATE_LIMIT": "100000/minute",
            "WRAPAROUND_ACCESS_TOKEN_LIFETIME": "7200",
            # WARNING also turns off uvicorn's per-request access log, as for the ceiling server.
            "WRAPAROUND_LOG_LEVEL": "WARNING",
            "WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS": "1",
            "WRAPAROUND_SECRET_KEY": env.get("WRAPAROUND_SECRET_KEY") or generate_key(),
        }
    )
    return env


def wait_ready(
    base_url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0, path: str = "/healthz"
) -> None:
    """Poll ``path`` until it answers 200; fail if ``proc`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base_url}{path}", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} not ready after {timeout:.0f}s")


@contextmanager
def _running(
    args: list[str], env: dict[str, str], port: int, pinning: Pinning = NOT_PINNED
) -> Iterator[Server]:
    base_url = f"http://127.0.0.1:{port}"
    # With taskset the child is taskset's exec'd process: the same pid, so CPU shares still measure it.
    proc = subprocess.Popen([*pinning.prefix(), *args], cwd=ROOT, env=env)
    try:
        wait_ready(base_url, proc)
        yield Server(base_url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def hub(database_url: str, pinning: Pinning = NOT_PINNED, workers: int = 1) -> Iterator[Server]:
    """``wraparound serve --no-worker`` (one uvicorn process, or ``--workers N``), as deployed."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--no-worker",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    with _running(args, hub_env(database_url, port), port, pinning) as server:
        yield server


@contextmanager
def ceiling(pinning: Pinning = NOT_PINNED) -> Iterator[Server]:
    port = free_port()
    args = [sys.executable, "-m", "bench.ceiling", "--port", str(port)]
    with _running(args, dict(os.environ), port, pinning) as server:
        yield server


@contextmanager
def peer(python: Path, database: Path, pinning: Pinning = NOT_PINNED) -> Iterator[Server]:
    """The fhirstarter peer (``bench/peer_fhirstarter.py``) in its own venv, on a SQLite file."""
    port = free_port()
    script = ROOT / "bench" / "peer_fhirstarter.py"
    # fhirstarter's FastAPI/Starlette deprecation warnings at import are noise, not figures.
    args = [str(python), "-W", "ignore", str(script), "--port", str(port)]
    env = {**os.environ, "FHIR_SEQUENCE": "R4B", "PYTHONPATH": ""}
    with _running([*args, "--db", str(database)], env, port, pinning) as server:
        yield server
