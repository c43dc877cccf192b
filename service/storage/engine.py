"""Engine creation for SQLite (WAL, the embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


# Connections kept open per process. Requests run in Starlette's threadpool (40 threads), plus the
# audit writer and the delivery worker: with a smaller pool every request past it opened and closed a
# connection of its own (for SQLite, four PRAGMAs each time; 4 % of a loaded read's CPU in py-spy).
# 20 kept and 20 more on demand covers the threadpool. On PostgreSQL reads have a pool of their own
# (``make_engine(reads=True)``, ADR 0021), so size its max_connections for
# 2 x (POOL_SIZE + MAX_OVERFLOW) x API processes, plus the workers; each pool opens only as many as
# its concurrent requests need.
POOL_SIZE = 20
MAX_OVERFLOW = 20


def make_engine(url: str, *, reads: bool = False) -> Engine:
    """``reads``: PostgreSQL only, the engine for read transactions (ADR 0021). Its statements run in
    autocommit, each its own transaction, on sessions whose every transaction is read-only: psycopg
    sends ``BEGIN`` and ``COMMIT`` as round trips of their own, two of a read by id's three."""
    url = normalise_url(url)
    # hide_parameters: SQL errors must never carry resource values (NHS numbers, names) into logs.
    kwargs: dict[str, Any] = {
        "json_serializer": _json_serializer,
        "json_deserializer": orjson.loads,
        "hide_parameters": True,
    }
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if memory:
            kwargs["poolclass"] = StaticPool
        else:
            kwargs |= {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    # Search statements have the same text for every organisation and code, but the best plan
    # depends on the values (a partner's 20k Tasks vs a clinic's 3): after five executions
    # psycopg would prepare them and PostgreSQL could settle on one generic plan (25x slower
    # for the partner inbox). Custom plans every time; planning costs well under a millisecond.
    options = "-c plan_cache_mode=force_custom_plan"
    if reads:
        # Under READ COMMITTED each statement took its own snapshot inside a read transaction too,
        # so autocommit sees what the transaction saw. The session default keeps BEGIN READ ONLY's
        # guard: a write slipped into a read fails loudly rather than commit unaudited.
        options += " -c default_transaction_read_only=on"
        kwargs["isolation_level"] = "AUTOCOMMIT"
    kwargs["connect_args"] = {"options": options}
    # No pool_pre_ping: a round trip on every checkout cost 196 us of a 208 us checkout, on every
    # request. Only a connection idle for IDLE_PING_SECONDS is pinged (after a quiet spell is when
    # a restarted or failed-over server is likely to have dropped it). A connection that dies under
    # load fails its first statement instead: SQLAlchemy then invalidates the whole pool, that
    # request gets 503 with Retry-After (api/errors.py) and the next ones reconnect.
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, **kwargs)
    _ping_when_idle(engine)
    return engine


IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(type(exc).__name__) from None


_BEGIN = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}

# SQLite's automatic checkpoint, in WAL pages, on every Connection (``_configure_sqlite``).
WAL_AUTOCHECKPOINT_PAGES = 10000


def _configure_sqlite(engine: Engine) -> None:
    # WAL lets readers proceed during a write; write transactions BEGIN IMMEDIATE, taking the
    # write lock up front so two writers serialise instead of failing on lock upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below take over
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # A multi-row insert inside a write journals the old contents of every existing page it
        # changes, so that the statement alone can be undone; past 64 KB SQLite spilled that journal
        # to a file in /var/tmp, outside the database's directory and whatever protects it, with
        # special-category rows in its pages. A referral's idx_reference insert (random ids, a leaf
        # page a row in each index) did so in most referrals. In memory, nothing leaves.
        cur.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint every 10,000 WAL pages (40 MB) instead of 1,000: a checkpoint syncs and copies
        # what the WAL holds, and every AuditEvent batch and create dirties pages across a dozen
        # indexes, so at the default a commit of 16 AuditEvents took 1.75 ms, at 10,000 0.98 ms.
        # The loop's kept writer keeps it too (ADR 0026): its commit finishes what the audit writer
        # thread's checkpoints leave, so that the WAL starts again from its beginning.
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        # A WAL that a burst (or a hub from before ADR 0026) grew past 64 MB goes back to that size
        # when it next starts again from its beginning; below it, SQLite reuses the file as it is.
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers pass execution option sqlite_begin="IMMEDIATE"; readers stay DEFERRED.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight to the driver: through exec_driver_sql this BEGIN cost 20-40 us, on every request.
        try:
            conn.connection.dbapi_connection.execute(_BEGIN[mode])
        except Exception as exc:
            # Wrapped as SQLAlchemy would (OperationalError: 503; a disconnect invalidates), as
            # storage/driver.py does: a raw sqlite3 error reached the client as a 500.
            conn._handle_dbapi_exception(exc, _BEGIN[mode], (), None, None)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
