"""Entry point: ``python bench/run.py --help`` (the Makefile's ``make bench``).

Run as a script, ``bench/`` itself is on ``sys.path`` rather than the repository root,
so the root is added before importing the ``bench`` package.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
