"""The JavaScript clients: installed once per run with ``npm ci`` from the committed lock file, and
run as small Node scripts that read their configuration on stdin and print JSON on stdout.

``npm ci`` runs only when tests/clients/js/node_modules is missing or was installed from another
lock file (its hash is kept beside the modules). Under ``CI=true`` a missing node or npm fails the
run; on a developer's machine without them the JavaScript tests skip and say why.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The shared checks live in a helper module: let pytest explain their failures too.
pytest.register_assert_rewrite("tests.clients._clinic_flow")

from tests.clients._clinic_flow import Flow, RunJs  # noqa: E402
from tests.support.clients import FhirClients  # noqa: E402

JS = Path(__file__).resolve().parent / "js"
MODULES = JS / "node_modules"
STAMP = MODULES / ".wraparound-lock-sha256"
NODE_TIMEOUT = 60  # seconds; a script that hangs fails instead of stalling the suite


def _lock_hash() -> str:
    return hashlib.sha256((JS / "package-lock.json").read_bytes()).hexdigest()


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    reason = "node and npm are needed for the JavaScript client tests (Node 20.19+)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI they must be installed", pytrace=False)
    pytest.skip(reason)


def _install(npm: str) -> None:
    wanted = _lock_hash()
    # Test workers start together: one installs, the others wait on the lock and find it done.
    with (JS / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if STAMP.is_file() and STAMP.read_text() == wanted:
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed ({done.returncode}):\n{done.stderr[-3000:]}", pytrace=False)
        STAMP.write_text(wanted)


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/clients/js/node_modules installed from the lock file."""
    node_bin, npm = _tools()
    _install(npm)
    return node_bin


@pytest.fixture
def run_js(node: str) -> RunJs:
    def run(script: str, config: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            [node, str(JS / script)],
            cwd=JS,
            input=json.dumps(config),
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-4000:]}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    return run


@pytest.fixture
def flow_for(fhir: FhirClients) -> Callable[[str], Flow]:
    return lambda client_name: Flow.build(fhir, client_name)
