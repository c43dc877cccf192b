"""``audit_index_queue``: AuditEvents whose search index rows are still to be written (ADR 0015;
service/audit/indexing.py writes them)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import Connection, insert

from service.storage.tables import AuditIndexQueue

QUEUE = AuditIndexQueue.__table__  # type: ignore[attr-defined]
_INSERT = insert(QUEUE)


class Backlog:
    """Events this process has queued since a drain last found the queue empty (a hint only:
    other processes queue and drain too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.count += n

    def taken(self, n: int, *, empty: bool) -> None:
        with self._lock:
            self.count = 0 if empty else max(0, self.count - n)


backlog = Backlog()


def queue(conn: Connection, rids: Sequence[int]) -> None:
    """Queue these AuditEvents for indexing, in the caller's transaction."""
    if rids:
        conn.execute(_INSERT, [{"rid": rid} for rid in rids])
        backlog.add(len(rids))
