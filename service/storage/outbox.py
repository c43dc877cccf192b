"""SQL for the delivery worker: claiming outbox rows with a lease, finishing them, and their attempts.

Claims (docs/adr/0008-delivery.md):
- one statement, ``UPDATE outbox SET lease… WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED])
  RETURNING …``. PostgreSQL skips rows another worker is claiming; SQLite has one writer at a time
  (``BEGIN IMMEDIATE``), so the same statement is atomic there (SQLAlchemy drops SKIP LOCKED on SQLite).
- a row is claimable when it is pending, due, not under a live lease, and no earlier pending row exists
  for the same recipient and focus (a Task's notices arrive in the order they were caused).
- every claim bumps ``fence``; every later write names the fence it holds, so a worker whose lease
  expired (and whose row someone else claimed) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, not_, or_, select, update
from sqlalchemy.orm import aliased

from service.storage.tables import DeliveryAttempt, EndpointConfig, Outbox

OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
ATTEMPT = DeliveryAttempt.__table__  # type: ignore[attr-defined]
CONFIG = EndpointConfig.__table__  # type: ignore[attr-defined]

FINAL_STATES = ("delivered", "pull", "cancelled", "dead")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    organization_id: str
    focus: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: datetime
    due_at: datetime
    message_id: str
    fence: int
    lease_owner: str | None
    lease_until: datetime | None
    finished_at: datetime | None
    endpoint_id: str | None
    adapter: str | None
    last_status: int | None
    last_error: str | None


def _row(r: Any) -> OutboxRow:
    m = r._mapping
    values = {f.name: m[f.name] for f in fields(OutboxRow)}
    values["message_id"] = m["message_id"] or f"msg_{m['id']}"  # rows queued before migration 0005
    return OutboxRow(**values)


def claim(
    conn: Connection,
    *,
    worker: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    exclude_recipients: Iterable[str] = (),
) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows for ``worker`` (skipping recipients at their bulkhead limit)."""
    earlier = aliased(OUTBOX)
    blocked = exists().where(
        earlier.c.organization_id == OUTBOX.c.organization_id,
        earlier.c.focus == OUTBOX.c.focus,
        earlier.c.id < OUTBOX.c.id,
        earlier.c.state == "pending",
    )
    excluded = list(exclude_recipients)
    candidates = (
        select(OUTBOX.c.id)
        .where(
            OUTBOX.c.state == "pending",
            OUTBOX.c.due_at <= now,
            or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now),
            not_(blocked),
            *([OUTBOX.c.organization_id.not_in(excluded)] if excluded else []),
        )
        .order_by(OUTBOX.c.due_at, OUTBOX.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=worker, lease_until=lease_until, fence=OUTBOX.c.fence + 1)
        .returning(*OUTBOX.c)
    ).all()
    return sorted((_row(r) for r in rows), key=lambda r: (r.due_at, r.id))


def _held(row_id: int, fence: int) -> Any:
    return and_(OUTBOX.c.id == row_id, OUTBOX.c.fence == fence, OUTBOX.c.state == "pending")


def _settle_held(conn: Connection, row: OutboxRow, **values: Any) -> bool:
    """Write a claimed row's outcome and drop the lease, only while the claim (its fence) still holds."""
    result = conn.execute(
        update(OUTBOX).where(_held(row.id, row.fence)).values(lease_owner=None, lease_until=None, **values)
    )
    return result.rowcount == 1


def finish(
    conn: Connection,
    row: OutboxRow,
    *,
    state: str,
    now: datetime,
    attempts: int,
    endpoint_id: str | None,
    adapter: str | None,
    status_code: int | None = None,
    error: str | None = None,
) -> bool:
    """End a claimed row (delivered, pull, cancelled, dead); False when the claim was lost."""
    return _settle_held(
        conn,
        row,
        state=state,
        finished_at=now,
        attempts=attempts,
        endpoint_id=endpoint_id,
        adapter=adapter,
        last_status=status_code,
        last_error=error,
    )


def reschedule(
    conn: Connection,
    row: OutboxRow,
    *,
    due_at: datetime,
    attempts: int,
    endpoint_id: str | None,
    adapter: str | None,
    status_code: int | None,
    error: str | None,
) -> bool:
    """Give a claimed row back to the queue for a later attempt; False when the claim was lost."""
    return _settle_held(
        conn,
        row,
        due_at=due_at,
        attempts=attempts,
        endpoint_id=endpoint_id,
        adapter=adapter,
        last_status=status_code,
        last_error=error,
    )


def release(conn: Connection, rows: Iterable[OutboxRow]) -> int:
    """Hand back claims without an attempt (graceful shutdown): claimable again at once."""
    released = 0
    for row in rows:
        result = conn.execute(update(OUTBOX).where(_held(row.id, row.fence)).values(lease_until=None))
        released += result.rowcount
    return released


def attempt_values(
    row: OutboxRow,
    *,
    attempt: int,
    started_at: datetime,
    duration_ms: float,
    outcome: str,
    worker: str,
    endpoint_id: str | None,
    status_code: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "outbox_id": row.id,
        "attempt": attempt,
        "started_at": started_at,
        "duration_ms": duration_ms,
        "outcome": outcome,
        "status_code": status_code,
        "error": error,
        "worker": worker,
        "endpoint_id": endpoint_id,
    }


def record_attempts(conn: Connection, attempts: list[dict[str, Any]]) -> None:
    """Insert attempt rows (from :func:`attempt_values`) in one executemany."""
    if attempts:
        conn.execute(insert(ATTEMPT), attempts)


def cancel_pending(
    conn: Connection, *, organization_id: str, focus: str, kinds: Iterable[str], now: datetime, reason: str
) -> int:
    """Cancel undelivered rows (a claim in flight loses its fence and cannot deliver as 'delivered')."""
    result = conn.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.organization_id == organization_id,
            OUTBOX.c.focus == focus,
            OUTBOX.c.kind.in_(list(kinds)),
            OUTBOX.c.state == "pending",
        )
        .values(
            state="cancelled",
            finished_at=now,
            lease_owner=None,
            lease_until=None,
            fence=OUTBOX.c.fence + 1,
            last_error=reason,
        )
    )
    return result.rowcount


def requeue(conn: Connection, ids: Iterable[int], *, due_at: datetime, from_states: Iterable[str]) -> int:
    """Put finished rows back in the queue: pending, a fresh attempt budget (earlier attempts stay
    recorded), no lease, a new fence so no old claim can settle them."""
    result = conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.state.in_(list(from_states)))
        .values(
            state="pending",
            attempts=0,
            due_at=due_at,
            finished_at=None,
            lease_owner=None,
            lease_until=None,
            fence=OUTBOX.c.fence + 1,
        )
    )
    return result.rowcount


def replay(conn: Connection, row_id: int, *, now: datetime) -> bool:
    """Put a dead letter back in the queue (only dead letters replay)."""
    return requeue(conn, [row_id], due_at=now, from_states=("dead",)) == 1


def get(conn: Connection, row_id: int) -> OutboxRow | None:
    found = conn.execute(select(OUTBOX).where(OUTBOX.c.id == row_id)).first()
    return _row(found) if found is not None else None


def listing(
    conn: Connection,
    *,
    state: str | None = None,
    organization_id: str | None = None,
    focus: str | None = None,
    limit: int = 100,
) -> list[OutboxRow]:
    query = select(OUTBOX).order_by(OUTBOX.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OUTBOX.c.state == state)
    if organization_id is not None:
        query = query.where(OUTBOX.c.organization_id == organization_id)
    if focus is not None:
        query = query.where(OUTBOX.c.focus == focus)
    return [_row(r) for r in conn.execute(query).all()]


def attempts_of(conn: Connection, row_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(ATTEMPT).where(ATTEMPT.c.outbox_id == row_id).order_by(ATTEMPT.c.id)).all()
    return [dict(r._mapping) for r in rows]


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state)).all()
    return {state: int(n) for state, n in rows}


def get_config(conn: Connection, endpoint_id: str) -> tuple[str, str] | None:
    """The (adapter slug, ciphertext) of an Endpoint's configuration."""
    found = conn.execute(
        select(CONFIG.c.adapter, CONFIG.c.ciphertext).where(CONFIG.c.endpoint_id == endpoint_id)
    ).first()
    return (found[0], found[1]) if found is not None else None


def put_config(conn: Connection, endpoint_id: str, *, adapter: str, ciphertext: str, now: datetime) -> None:
    updated = conn.execute(
        update(CONFIG)
        .where(CONFIG.c.endpoint_id == endpoint_id)
        .values(adapter=adapter, ciphertext=ciphertext, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(
            insert(CONFIG).values(
                endpoint_id=endpoint_id, adapter=adapter, ciphertext=ciphertext, updated_at=now
            )
        )


def delete_config(conn: Connection, endpoint_id: str) -> bool:
    return conn.execute(CONFIG.delete().where(CONFIG.c.endpoint_id == endpoint_id)).rowcount == 1
