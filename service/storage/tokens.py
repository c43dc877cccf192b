"""SQL for OAuth clients, seen assertion ``jti`` values and issued access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.storage.tables import AccessToken, AssertionJti, OAuthClient

C = OAuthClient.__table__  # type: ignore[attr-defined]
J = AssertionJti.__table__  # type: ignore[attr-defined]
T = AccessToken.__table__  # type: ignore[attr-defined]


def get_client(conn: Connection, client_id: str) -> Any | None:
    return conn.execute(select(C).where(C.c.client_id == client_id)).first()


def list_clients(conn: Connection) -> list[Any]:
    return list(conn.execute(select(C).order_by(C.c.client_id)).all())


def upsert_client(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert or update a client; True when it was new."""
    if get_client(conn, values["client_id"]) is None:
        conn.execute(insert(C).values(**values))
        return True
    changes = {k: v for k, v in values.items() if k not in ("client_id", "created_at")}
    conn.execute(update(C).where(C.c.client_id == values["client_id"]).values(**changes))
    return False


def remove_client(conn: Connection, client_id: str) -> bool:
    conn.execute(delete(T).where(T.c.client_id == client_id))
    return conn.execute(delete(C).where(C.c.client_id == client_id)).rowcount > 0


def remember_jti(conn: Connection, client_id: str, jti: str, expires_at: datetime, now: datetime) -> bool:
    """Record a client-assertion jti; False when it was seen before (a replay).

    The primary key decides races: of two concurrent requests with one jti, exactly
    one insert succeeds. A savepoint keeps the caller's transaction usable.
    """
    conn.execute(delete(J).where(J.c.expires_at < now))
    try:
        with conn.begin_nested():
            conn.execute(insert(J).values(client_id=client_id, jti=jti, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def store_token(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(T).values(**values))


def find_token(conn: Connection, token_hash: str) -> Any | None:
    return conn.execute(select(T).where(T.c.token_hash == token_hash)).first()


def purge_expired_tokens(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(T).where(T.c.expires_at < now)).rowcount
