"""``python bench/wal_pages.py --kind referral``: SQLite WAL pages written per request, by B-tree.

Timing on a shared 2-core machine moves by a quarter from one run to the next; the pages a write
puts in the WAL do not. Each page a commit dirtied is written to the WAL in full (4 KB), so this is
the write cost a change to the schema or to the rows a request writes can be judged by.

It runs ``bench/asgi_inprocess.py`` under ``strace`` (not a dependency: ``apt install strace``) on a
SQLite file it keeps, reads the page number from every WAL frame header written, and maps the pages
to their tables and indexes with SQLite's ``dbstat`` table. It runs twice, with ``--requests`` and
three times as many, and reports the difference per request sent (warm-up included), so start-up
and seeding cancel out. Prints figures; asserts nothing.

    python bench/wal_pages.py --kind referral --requests 200
    python bench/wal_pages.py --kind create
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

# Run as a script, bench/ is on sys.path rather than the repository root (as for bench/run.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.asgi_inprocess import CONCURRENCY, per_worker

HERE = Path(__file__).resolve().parent


def _sent(requests: int) -> int:
    """The requests ``asgi_inprocess.py --requests N`` sends: its warm-up and its measured run."""
    return CONCURRENCY * sum(per_worker(requests, CONCURRENCY))


_HEADER = re.compile(r'-wal>, "((?:\\x[0-9a-f]{2}){8})"\.*, 24, ')


def _pages(kind: str, requests: int, work: Path) -> tuple[Counter[str], int]:
    """WAL pages written per B-tree, and commits, for one run of ``requests``."""
    db = work / f"{kind}-{requests}.db"
    trace = work / f"{kind}-{requests}.strace"
    command = [sys.executable, str(HERE / "asgi_inprocess.py"), "--kind", kind, "--requests", str(requests)]
    command += ["--concurrency", str(CONCURRENCY)]
    subprocess.run(
        [
            "strace",
            "-f",
            "-e",
            "trace=pwrite64",
            "-y",
            "-x",
            "-s",
            "8",
            "-o",
            str(trace),
            *command,
            "--database",
            f"sqlite:///{db}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    frames: Counter[int] = Counter()
    commits = 0
    with trace.open() as lines:
        for line in lines:
            found = _HEADER.search(line)
            if found is None:
                continue
            header = bytes.fromhex(found.group(1).replace("\\x", ""))
            frames[int.from_bytes(header[:4], "big")] += 1
            commits += int.from_bytes(header[4:8], "big") != 0  # a commit frame records the db size
    with sqlite3.connect(db) as conn:
        owner = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
    by_tree: Counter[str] = Counter()
    for page, count in frames.items():
        by_tree[owner.get(page, "(freed since)")] += count
    return by_tree, commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="referral", choices=["create", "referral", "transaction", "read"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (apt install strace)")
    with tempfile.TemporaryDirectory() as tmp:
        small, small_commits = _pages(args.kind, args.requests, Path(tmp))
        large, large_commits = _pages(args.kind, 3 * args.requests, Path(tmp))
    extra = _sent(3 * args.requests) - _sent(args.requests)
    total = sum(large.values()) - sum(small.values())
    print(
        f"{args.kind} on SQLite: {total / extra:.1f} WAL pages and "
        f"{(large_commits - small_commits) / extra:.2f} commits per request "
        f"({_sent(3 * args.requests)} against {_sent(args.requests)} requests, warm-up included)"
    )
    for name in sorted(large, key=lambda n: small[n] - large[n])[: args.top]:
        pages = (large[name] - small[name]) / extra
        print(f"  {pages:6.1f}  {100 * pages * extra / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
