"""AuditEvent search index rows, written in bulk after the event (ADR 0015).

Every access writes an AuditEvent, and its search index rows (the entity, agent, patient, date,
type and the rest: nine or so rows across four index tables, each row in two to four B-trees)
cost more to write than the event itself. They are needed only when someone searches
AuditEvents, which only an administrator may do. So an event is written with its resource and
history rows and a row in ``audit_index_queue``, in the same transaction as before (the audit
guarantee does not change: the event is durable before the response leaves), and its index rows
are written later, in bulk, which costs less per event than one request's worth at a time:

- before any request that could search AuditEvents (``drain``, called by ``api.deps.transact``),
  so a search always sees every event committed before it began, as it did when events were
  indexed at once;
- by the audit writer when it has had nothing to commit for a moment (``index_some``);
- and by the audit writer on every batch once this process has queued more than ``BOUND`` events
  since the queue was last found empty, so sustained load cannot grow the queue without limit
  (PostgreSQL's GIN pending list follows the same pattern).

Concurrent drains are safe: each takes its rows with DELETE ... RETURNING (PostgreSQL skips rows
another drain holds), so every event is indexed exactly once.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from service.audit.record import index_rows
from service.storage.audit_queue import QUEUE, backlog
from service.storage.database import Database
from service.storage.resources import R, ResourceStore

STEP = 500  # events indexed per transaction
BOUND = 20_000  # queued by this process before the audit writer indexes on every batch


def index_some(conn: Connection, limit: int = STEP) -> int:
    """Index up to ``limit`` queued AuditEvents in the caller's (write) transaction; how many."""
    oldest = select(QUEUE.c.rid).order_by(QUEUE.c.rid).limit(limit).with_for_update(skip_locked=True)
    rids = list(conn.execute(delete(QUEUE).where(QUEUE.c.rid.in_(oldest)).returning(QUEUE.c.rid)).scalars())
    if rids:
        rows = conn.execute(select(R.c.rid, R.c.content).where(R.c.rid.in_(rids))).all()
        ResourceStore(conn).write_index_many(
            "AuditEvent", [(row.rid, index_rows(row.content)) for row in rows if row.content]
        )
    backlog.taken(len(rids), empty=len(rids) < limit)
    return len(rids)


def drain(db: Database, step: int = STEP) -> int:
    """Index every queued AuditEvent, ``step`` to a transaction; how many were indexed."""
    total = 0
    while True:
        with db.transaction(write=True) as conn:
            done = index_some(conn, step)
        total += done
        if done < step:
            return total
