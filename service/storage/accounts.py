"""SQL for the web app's people: accounts, recovery codes, sessions and failed sign-ins.

The rules (hashing, the second factor, timeouts, lockout) are in ``service/web/``; this module only
reads and writes the rows, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.storage.tables import WebRecoveryCode, WebSession, WebSigninFailure, WebUser

U = WebUser.__table__  # type: ignore[attr-defined]
RC = WebRecoveryCode.__table__  # type: ignore[attr-defined]
S = WebSession.__table__  # type: ignore[attr-defined]
F = WebSigninFailure.__table__  # type: ignore[attr-defined]


# -- accounts --------------------------------------------------------------------------------------------


def user_by_email(conn: Connection, email: str) -> Any | None:
    return conn.execute(select(U).where(U.c.email == email)).first()


def user_by_id(conn: Connection, user_id: str) -> Any | None:
    return conn.execute(select(U).where(U.c.id == user_id)).first()


def list_users(conn: Connection) -> list[Any]:
    return list(conn.execute(select(U).order_by(U.c.organization_id, U.c.email)).all())


def insert_user(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(U).values(**values))


def update_user(conn: Connection, user_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(U).where(U.c.id == user_id).values(**values))


def remove_user(conn: Connection, user_id: str) -> None:
    """The account with its sessions (signed out everywhere) and recovery codes."""
    end_sessions_of(conn, user_id)
    conn.execute(delete(RC).where(RC.c.user_id == user_id))
    conn.execute(delete(U).where(U.c.id == user_id))


def accept_totp_step(conn: Connection, user_id: str, step: int) -> bool:
    """Record ``step`` as the last accepted TOTP step; False when it (or a later one) was used already.

    One conditional UPDATE, so two concurrent sign-ins with one code cannot both win."""
    result = conn.execute(
        update(U).where(U.c.id == user_id, U.c.totp_last_step < step).values(totp_last_step=step)
    )
    return result.rowcount == 1


# -- recovery codes --------------------------------------------------------------------------------------


def replace_recovery_codes(conn: Connection, user_id: str, code_hashes: list[str]) -> None:
    conn.execute(delete(RC).where(RC.c.user_id == user_id))
    if code_hashes:
        conn.execute(insert(RC), [{"user_id": user_id, "code_hash": h} for h in code_hashes])


def use_recovery_code(conn: Connection, user_id: str, code_hash: str) -> bool:
    """Delete the code; True when it existed (so it works once, also under concurrency)."""
    result = conn.execute(delete(RC).where(RC.c.user_id == user_id, RC.c.code_hash == code_hash))
    return result.rowcount == 1


def count_recovery_codes(conn: Connection, user_id: str) -> int:
    return len(conn.execute(select(RC.c.code_hash).where(RC.c.user_id == user_id)).all())


# -- sessions --------------------------------------------------------------------------------------------


def insert_session(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(S).values(**values))


def session_with_user(conn: Connection, token_hash: str) -> Any | None:
    """The session joined to its account (None when either is gone)."""
    return conn.execute(
        select(
            S.c.token_hash,
            S.c.created_at,
            S.c.last_seen_at,
            S.c.expires_at,
            U.c.id.label("user_id"),
            U.c.email,
            U.c.organization_id,
            U.c.role,
        )
        .join(U, U.c.id == S.c.user_id)
        .where(S.c.token_hash == token_hash)
    ).first()


def touch_session(conn: Connection, token_hash: str, now: datetime) -> None:
    conn.execute(update(S).where(S.c.token_hash == token_hash).values(last_seen_at=now))


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(S).where(S.c.token_hash == token_hash))


def end_sessions_of(conn: Connection, user_id: str) -> None:
    conn.execute(delete(S).where(S.c.user_id == user_id))


def purge_sessions(conn: Connection, *, idle_before: datetime, now: datetime) -> int:
    """Drop sessions past either timeout (run at each sign-in: the table stays small without a job)."""
    result = conn.execute(delete(S).where((S.c.expires_at <= now) | (S.c.last_seen_at <= idle_before)))
    return int(result.rowcount or 0)


# -- failed sign-ins -------------------------------------------------------------------------------------


def lock_failures(conn: Connection, email_hash: str, now: datetime) -> Any:
    """The address's failure row, created when missing and locked until the transaction ends.

    Concurrent sign-ins with one address then take turns (PostgreSQL: ``FOR UPDATE``; SQLite serialises
    writers anyway): each sees the count the one before it wrote, so parallel guesses cannot all pass the
    lock check, and two first failures cannot collide on the insert (``ON CONFLICT DO NOTHING``)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(F)
        .values(email_hash=email_hash, failures=0, locked_until=None, updated_at=now)
        .on_conflict_do_nothing(index_elements=[F.c.email_hash])
    )
    return conn.execute(select(F).where(F.c.email_hash == email_hash).with_for_update()).one()


def save_failure(
    conn: Connection, email_hash: str, failures: int, locked_until: datetime | None, now: datetime
) -> None:
    values = {"failures": failures, "locked_until": locked_until, "updated_at": now}
    conn.execute(update(F).where(F.c.email_hash == email_hash).values(**values))


def clear_failures(conn: Connection, email_hash: str) -> None:
    conn.execute(delete(F).where(F.c.email_hash == email_hash))


def purge_failures(conn: Connection, before: datetime, now: datetime) -> None:
    """Forget old failures that no longer lock anything (the table holds every address ever mistyped).

    Rows another sign-in holds are skipped (``SKIP LOCKED``), so concurrent purges never wait on, or
    deadlock with, each other or a sign-in in progress."""
    old = (
        select(F.c.email_hash)
        .where(F.c.updated_at < before, (F.c.locked_until.is_(None)) | (F.c.locked_until < now))
        .with_for_update(skip_locked=True)
    )
    conn.execute(delete(F).where(F.c.email_hash.in_(old.scalar_subquery())))
