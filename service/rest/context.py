"""Everything one interaction needs, for the length of one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from service.access.caller import Caller
from service.fhir.instant import fhir_instant
from service.storage.resources import ResourceStore


@dataclass
class Context:
    conn: Connection
    caller: Caller
    base_url: str  # the FHIR base, e.g. https://hub.example/fhir
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS: Endpoint addresses on loopback/private hosts (dev, tests).
    allow_private_endpoints: bool = False
    # Results a validation rule worked out that its after-write hook needs again (the
    # rule and the hook of one write run back to back in this transaction).
    memo: dict[str, Any] = field(default_factory=dict)
    # A read-only interaction (read, vread, search, history) runs in a read transaction; its
    # AuditEvents collect here and are committed by the audit writer before the response
    # leaves (service.audit.writer, ADR 0012). A write records them in its own transaction.
    read_only: bool = False
    audit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def instant(self) -> str:
        """``now`` as FHIR instant text."""
        return fhir_instant(self.now)

    @property
    def store(self) -> ResourceStore:
        return ResourceStore(self.conn)
