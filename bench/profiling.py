"""``--profile DIR``: py-spy samples of the hub during each measured hub scenario, and a summary.

py-spy (``pip install py-spy``; not a dependency of the hub) attaches to the running server's
pid for the measured window and writes collapsed stacks (``--format raw``) to
``DIR/<database>-<scenario>.txt``; ``summarise`` prints the functions with the most samples
on top of the stack (self) and the hub's modules by inclusive share. Sampling costs the
server a few per cent, so a profiled run's figures are not the reported ones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def available() -> bool:
    return shutil.which("py-spy") is not None


@contextmanager
def sampling(pid: int, out: Path, seconds: float, rate: int = 250, *, gil: bool = True) -> Iterator[None]:
    """Sample ``pid`` while the block runs: by default only the thread holding the GIL (where the
    Python CPU goes; 16 threads queued on the GIL or a lock would otherwise each look busy)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            "py-spy",
            "record",
            "-p",
            str(pid),
            "-r",
            str(rate),
            "-d",
            str(int(seconds) + 1),
            "--format",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        try:
            proc.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame.strip())
        out.append((match["func"], match["file"]) if match else (frame, ""))
    return out


def _label(func: str, file: str) -> str:
    short = re.sub(r"^.*?/(site-packages|lib/python3\.\d+)/", "", file)
    short = re.sub(r"^.*?/(service|auth|adapters|bench)/", r"\1/", short)
    return f"{func} ({short})"


def summarise(path: Path, top: int = 25) -> str:
    """Top self-time functions and inclusive shares of a few layers, as text."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if frames[-1][0] in IDLE:
            continue  # a threadpool thread waiting for work, or the audit writer waiting for events
        total += count
        own[_label(*frames[-1])] += count
        seen: set[str] = set()
        for func, file in frames:
            for layer, marker in LAYERS:
                if layer not in seen and marker(func, "/" + file):
                    seen.add(layer)
                    inclusive[layer] += count
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} busy samples (threads waiting for work left out)"]
    lines += [f"  {100 * n / total:5.1f}% incl  {layer}" for layer, n in inclusive.most_common()]
    lines += [f"  {100 * n / total:5.1f}% self  {label}" for label, n in own.most_common(top)]
    return "\n".join(lines)


IDLE = frozenset({"Condition.wait", "wait", "_wait_for_tstate_lock", "select", "poll"})
# py-spy names files relative to their sys.path entry: "sqlalchemy/engine/base.py", "service/rest/...".
Marker = Callable[[str, str], bool]
LAYERS: tuple[tuple[str, Marker], ...] = (
    ("sqlalchemy", lambda f, p: "/sqlalchemy/" in p),
    (
        "sqlite3/psycopg execute",
        lambda f, p: f in ("execute", "executemany") and ("sqlite" in p or "psycopg" in p),
    ),
    ("commit", lambda f, p: f in ("commit", "_commit_impl", "do_commit")),
    ("fastapi routing + dependencies", lambda f, p: "/fastapi/" in p),
    ("starlette", lambda f, p: "/starlette/" in p),
    ("uvicorn/httptools", lambda f, p: "/uvicorn/" in p),
    ("audit (service/audit)", lambda f, p: "/service/audit/" in p),
    ("index extraction (service/search/extract)", lambda f, p: "/service/search/extract" in p),
    ("fhirpath", lambda f, p: "fhirpath" in p),
    (
        "validation (service/rest/validation, fhir.resources)",
        lambda f, p: "validation.py" in p and "/service/rest/" in p,
    ),
    ("pydantic", lambda f, p: "/pydantic" in p),
    ("json (orjson/json)", lambda f, p: "json" in f.lower() and ("orjson" in p or "/json/" in p)),
    ("threadpool hop (anyio to_thread)", lambda f, p: "/anyio/" in p),
)
