"""``wraparound serve --workers 2`` on PostgreSQL: requests are answered by two different processes.

Which process answered is read from the kernel, not from the app: for each answered request the
test finds, in /proc, the process that holds the server side of that very TCP connection. Only
processes started by the ``serve`` process count, and the supervising process itself must hold none.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.servers import free_port
from tests.support.live import TEST_SECRET_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "PostgreSQL only: several API processes are for PostgreSQL (CI runs the PostgreSQL suite)"
        )
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc to see which process holds a connection")
    return database_url


def _children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return inode
    return None


def _holder(inode: str, pids: set[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        try:
            if any(os.readlink(fd) == target for fd in fds.iterdir()):
                return pid
        except OSError:
            continue
    return None


def _answered_by(port: int, supervisor: int) -> int | None:
    """One request on a fresh connection; the pid of the process that held it (None: not served)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/fhir/metadata")
        response = conn.getresponse()
        response.read()
    except OSError:
        return None  # not listening yet
    finally:
        client_port = conn.sock.getsockname()[1] if conn.sock else None
    try:
        assert response.status == 200
        assert client_port is not None
        inode = _server_side_inode(port, client_port)  # the connection is still open (keep-alive)
        assert inode is not None
        holder = _holder(inode, _children(supervisor) | {supervisor})
        assert holder is not None, "an answered connection held by no process of serve"
        return holder
    finally:
        conn.close()


def test_two_api_processes_answer_requests(postgres_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRAPAROUND_")}
    env.update(
        PYTHONPATH=str(ROOT),
        WRAPAROUND_DATABASE_URL=postgres_url,
        WRAPAROUND_SECRET_KEY=TEST_SECRET_KEY,
    )
    serve = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    holders: list[int | None] = []
    try:
        # Spawned processes import the app from scratch: allow a loaded machine its time.
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len({h for h in holders if h is not None}) < 2:
            assert serve.poll() is None, "serve exited early"
            holder = _answered_by(port, serve.pid)
            if holder is None:
                time.sleep(0.2)
            holders.append(holder)
    finally:
        serve.terminate()
        output, _ = serve.communicate(timeout=60)
    answered = {h for h in holders if h is not None}
    assert len(answered) == 2, output
    assert serve.pid not in answered  # the supervisor only supervises (and delivers)
    assert answered <= _recorded_children(output)
    assert "2 API processes; delivery worker: one, in the supervising process" in output
    assert serve.returncode == 0, output  # SIGTERM stops the processes and the delivery worker cleanly


def _recorded_children(output: str) -> set[int]:
    # uvicorn logs "Started server process [PID]" for each API process it starts.
    return {
        int(line.rsplit("[", 1)[1].rstrip("]"))
        for line in output.splitlines()
        if "Started server process [" in line
    }
