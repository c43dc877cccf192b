"""Schemathesis against the live hub, once per identity, bounded for CI (``make schemathesis``).

Issue 10: the OpenAPI document must tell the truth. The hub runs as ``wraparound serve --no-worker``
on a fresh SQLite database seeded through the API (``tests/contract/hub.py``); schemathesis then
reads ``/openapi.json`` from it and runs every check it has, first as a clinic, then as a
partner (two SMART clients, ``Authorization: Bearer``). Each run is bounded by examples per
operation and by a wall-clock budget, so the CI step takes about three minutes on two cores.

``python tests/contract/run_schemathesis.py --help``; exit status 0 only when every run found nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

if TYPE_CHECKING:
    from tests.contract.hub import Identity

CONFIG = Path(__file__).with_name("schemathesis.toml")


def _root_on_path() -> None:
    # Run as a script, tests/contract is on sys.path, not the repository root.
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=5, help="test cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=70, help="seconds per identity (wall clock)")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed (reproducible runs)")
    # One worker: schemathesis' workers are threads, and hypothesis describes strategies with ast.parse,
    # which on CPython 3.11 can fail under threads with "AST constructor recursion depth mismatch"
    # (https://github.com/python/cpython/issues/106905); CI hit it once in three runs with two workers.
    parser.add_argument("--workers", default="1", help="schemathesis workers (threads: see above)")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--identity", action="append", help="clinic or partner (default: both)")
    parser.add_argument("--report-dir", type=Path, help="keep schemathesis' JUnit reports here")
    parser.add_argument("extra", nargs="*", help="more schemathesis options (after --)")
    return parser.parse_args()


def main() -> int:
    _root_on_path()
    from tests.contract import hub

    args = _arguments()
    results: dict[str, tuple[int, str]] = {}
    with tempfile.TemporaryDirectory(prefix="wraparound-st-") as tmp:
        work = Path(tmp)
        database_url = f"sqlite:///{work / 'hub.db'}"
        began = time.monotonic()
        with hub.serve(database_url, work / "server.log") as base_url:
            world = hub.seed(base_url, database_url)
            print(f"hub at {base_url}, seeded in {time.monotonic() - began:.1f}s", flush=True)
            for identity in world.identities:
                if not args.identity or identity.name in args.identity:
                    results[identity.name] = _run(base_url, identity, args, work)
        log = (work / "server.log").read_text(errors="replace")
        if "Traceback" in log:
            print("the hub logged a traceback:\n" + log[-4000:], file=sys.stderr)
            results["server log"] = (1, "")
    for name, (rc, figures) in results.items():
        print(f"schemathesis as {name}: {'passed' if rc == 0 else f'FAILED (exit {rc})'}{figures}")
    return 0 if results and not any(rc for rc, _ in results.values()) else 1


def _run(base_url: str, identity: Identity, args: argparse.Namespace, work: Path) -> tuple[int, str]:
    report = (args.report_dir or work) / f"junit-{identity.name}.xml"
    command = [
        str(Path(sys.executable).with_name("st")),
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--max-examples",
        str(args.max_examples),
        "--max-time",
        str(args.max_time),
        "--seed",
        str(args.seed),
        "--workers",
        args.workers,
        "--phases",
        args.phases,
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--request-timeout",
        "30",
        *args.extra,
    ]
    print(f"\n== schemathesis as {identity.name} ==", flush=True)
    began = time.monotonic()
    # The token reaches schemathesis through its config file's ${WRAPAROUND_ST_AUTHORIZATION},
    # not the command line, where any local user could read it. In the temporary folder:
    # schemathesis keeps its example database in the working directory.
    env = {**os.environ, "WRAPAROUND_ST_AUTHORIZATION": f"Bearer {identity.token}"}
    rc = subprocess.call(command, cwd=work, env=env)
    print(f"== {identity.name}: exit {rc} after {time.monotonic() - began:.0f}s ==", flush=True)
    return rc, _figures(report)


def _figures(report: Path) -> str:
    if not report.exists():
        return ""
    # Schemathesis' own report, written a moment ago: one test case per operation.
    suite = ElementTree.parse(report).getroot()
    return f" ({suite.get('tests')} operations, {suite.get('failures')} failed, {suite.get('errors')} errors)"


if __name__ == "__main__":
    sys.exit(main())
