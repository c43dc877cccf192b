"""Server on one core, load on the other: CPU pinning with ``taskset`` where it is available.

The servers under test (hub, ceiling, peer) start under ``taskset -c <server core>``, which
their child processes inherit; this process (the load driver, and the seeding) pins itself to
another core with ``sched_setaffinity``. PostgreSQL is a system service the benchmark does
not own, so its backends run wherever the kernel puts them; the output says so.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Pinning:
    server_core: int | None = None
    driver_core: int | None = None
    reason: str = ""  # why there is no pinning, when there is none

    @property
    def active(self) -> bool:
        return self.server_core is not None

    def prefix(self) -> list[str]:
        """The command prefix that starts a server on its core (empty when not pinning)."""
        return [] if self.server_core is None else ["taskset", "-c", str(self.server_core)]

    def describe(self) -> str:
        if not self.active:
            return f"no CPU pinning ({self.reason})"
        return (
            f"servers pinned to CPU {self.server_core} with taskset, load driver to CPU {self.driver_core}; "
            "PostgreSQL is not pinned"
        )


def choose(wanted: bool, cpus: set[int], taskset: str | None) -> Pinning:
    """Which cores to use, from the CPUs this process may run on and the ``taskset`` found."""
    if not wanted:
        return Pinning(reason="--no-pin")
    if taskset is None:
        return Pinning(reason="taskset not found")
    if len(cpus) < 2:
        return Pinning(reason=f"only {len(cpus)} CPU available")
    first, second = sorted(cpus)[:2]
    return Pinning(server_core=first, driver_core=second)


def apply(wanted: bool) -> Pinning:
    """Pin this process to the driver core and return the plan for the servers."""
    pinning = choose(wanted, set(os.sched_getaffinity(0)), shutil.which("taskset"))
    if pinning.driver_core is not None:
        os.sched_setaffinity(0, {pinning.driver_core})
    return pinning
