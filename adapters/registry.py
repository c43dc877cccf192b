"""Adapters are discovered through the ``wraparound.adapters`` entry-point group.

The built-ins register exactly as a third-party package does (``[project.entry-points]`` in
pyproject.toml), so ``wraparound adapters list`` shows whatever is installed. An entry point names a
class satisfying :class:`adapters.base.Adapter`; the registry instantiates it once (adapters are
stateless) and keys it by its ``Endpoint.connectionType``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from adapters.base import Adapter, ConnectionType

GROUP = "wraparound.adapters"
log = logging.getLogger("wraparound.adapters")


@dataclass(frozen=True)
class Registry:
    adapters: tuple[Adapter, ...]
    broken: tuple[tuple[str, str], ...] = ()  # (entry point name, error type) for those that failed

    def by_connection_type(self, system: str | None, code: str | None) -> Adapter | None:
        for adapter in self.adapters:
            if adapter.connection_type == ConnectionType(system or "", code or ""):
                return adapter
        return None

    def by_slug(self, slug: str) -> Adapter | None:
        return next((a for a in self.adapters if a.slug == slug), None)


def discover() -> Registry:
    """Load every installed adapter; one that fails to load is reported, never fatal to the rest."""
    loaded: list[Adapter] = []
    broken: list[tuple[str, str]] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            factory = point.load()
            adapter = factory()
        except Exception as exc:  # a broken third-party package must not stop delivery to others
            log.warning("adapter %s failed to load: %s", point.name, type(exc).__name__)
            broken.append((point.name, type(exc).__name__))
            continue
        if not isinstance(adapter, Adapter):
            broken.append((point.name, "does not satisfy adapters.base.Adapter"))
            continue
        if any(a.connection_type == adapter.connection_type for a in loaded):
            broken.append((point.name, f"duplicate connection type {adapter.connection_type}"))
            continue
        loaded.append(adapter)
    return Registry(tuple(loaded), tuple(broken))


@cache
def installed() -> Registry:
    """The process-wide registry (discovered once)."""
    return discover()
