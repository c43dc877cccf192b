"""The peer's own venv: fhirstarter from PyPI, installed once and reused.

fhirstarter pins FastAPI below the hub's version, so it cannot share the hub's venv. The venv
lives in the user's cache (``~/.cache/wraparound-bench/fhirstarter-venv``) and is reused while
its recorded requirements match; uvicorn, uvloop and httptools are pinned to the hub's own
versions so the peer runs under the same server stack as the hub and the ceiling.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

FHIRSTARTER = "fhirstarter==4.2.0"
SAME_AS_HUB = ("uvicorn", "uvloop", "httptools")
STAMP = "bench-requirements.txt"


def default_location() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "wraparound-bench" / "fhirstarter-venv"


def requirements() -> list[str]:
    return [FHIRSTARTER, *(f"{name}=={importlib.metadata.version(name)}" for name in SAME_AS_HUB)]


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(venv: Path) -> Path:
    """Create or refresh the venv when its requirements changed; return its interpreter."""
    wanted = "\n".join(requirements()) + "\n"
    stamp = venv / STAMP
    python = python_of(venv)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"installing the fhirstarter peer into {venv} ({', '.join(requirements())}) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements()],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def versions(python: Path) -> dict[str, str]:
    """Versions of what the peer runs on, for the report (fhirstarter pins its own FastAPI)."""
    names = ("fhirstarter", "fastapi", "starlette", "pydantic", "fhir.resources", "uvicorn")
    script = (
        f"import importlib.metadata as m, json; print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
    )
    out = subprocess.run([str(python), "-c", script], check=True, capture_output=True, text=True).stdout
    loaded: dict[str, str] = json.loads(out)
    return loaded
