"""Start-up: load Wraparound's own definitions (code systems, value sets, the
assessment Questionnaire...) from ``fhir_profiles`` idempotently, by id and content."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fhir_profiles import load_conformance
from service.search.extract import extract_index_rows
from service.storage import locks
from service.storage.database import Database
from service.storage.resources import ResourceStore

log = logging.getLogger("wraparound.bootstrap")


def _same(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if stored is None:
        return False
    strip = {"meta"}
    return {k: v for k, v in stored.items() if k not in strip} == {
        k: v for k, v in wanted.items() if k not in strip
    }


def load_definitions(db: Database) -> int:
    """Create or update each shipped definition whose content changed; returns how many."""
    changed = 0
    with db.transaction() as conn:
        locks.lock(conn, "bootstrap:definitions")
        store = ResourceStore(conn)
        now = datetime.now(UTC)
        for resource in load_conformance():
            rtype, rid = resource["resourceType"], resource["id"]
            current = store.current(rtype, rid)
            if current is not None and not current.deleted and _same(current.content, resource):
                continue
            if current is None:
                store.create(rtype, resource, extract_index_rows(resource), now=now, resource_id=rid)
            else:
                store.update(current, resource, extract_index_rows(resource), now=now)
            changed += 1
    if changed:
        log.info("loaded %d definitions", changed)
    return changed
