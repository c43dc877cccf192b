"""Resource versions: create, read, update, delete and history, with their index rows.

Every write bumps ``version_id`` with a conditional UPDATE (``WHERE version_id = old``),
so two writers racing on one resource cannot both win: the loser sees zero rows and
gets a conflict, never a lost update.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

import uuid_utils
from sqlalchemy import Connection, String, bindparam, exists, func, literal_column, select, union_all, update
from sqlalchemy.exc import IntegrityError

from service.errors import Conflict
from service.fhir.instant import fhir_instant
from service.search.types import IndexRow
from service.storage import audit_index, driver, locks
from service.storage.access import first_grants, granted_column, visible_condition
from service.storage.bulk import BulkInsert
from service.storage.driverselect import DriverSelect
from service.storage.index_rows import ROW_TABLES
from service.storage.tables import (
    IdxDate,
    IdxNumber,
    IdxReference,
    IdxString,
    IdxToken,
    IdxUri,
    Resource,
    ResourceHistory,
)

R = Resource.__table__  # type: ignore[attr-defined]
H = ResourceHistory.__table__  # type: ignore[attr-defined]
INDEX_TABLES = (
    IdxToken.__table__,  # type: ignore[attr-defined]
    IdxString.__table__,  # type: ignore[attr-defined]
    IdxDate.__table__,  # type: ignore[attr-defined]
    IdxReference.__table__,  # type: ignore[attr-defined]
    IdxNumber.__table__,  # type: ignore[attr-defined]
    IdxUri.__table__,  # type: ignore[attr-defined]
)


@dataclass(frozen=True)
class Stored:
    """One version of a resource as stored."""

    rid: int
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: dict[str, Any] | None


def new_id() -> str:
    """A resource's server-assigned id: random (UUIDv4), so it says nothing about when or in what
    order resources were made."""
    return str(uuid.uuid4())


def new_event_id() -> str:
    """An AuditEvent's id: time-ordered (UUIDv7), so a batch of events lands on one leaf of the
    (type, id) index instead of one random leaf per event (ADR 0024). It tells no more than the
    event's own ``recorded``."""
    return str(uuid_utils.uuid7())


def _fresh_id(resource_type: str) -> str:
    return new_event_id() if resource_type == "AuditEvent" else new_id()


def _stamp(content: dict[str, Any], resource_id: str, version: int, now: datetime) -> dict[str, Any]:
    out = dict(content)
    out["id"] = resource_id
    meta = dict(out.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = fhir_instant(now)
    out["meta"] = meta
    return out


def row_to_stored(row: Sequence[Any]) -> Stored:
    """A row that starts with ``COLUMNS`` (a Core ``Row`` or a DriverSelect tuple) as a Stored."""
    return Stored(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


# Types whose version 1 is not copied to resource_history (ADR 0025): the hub writes an AuditEvent on
# every request and never changes it, so its one version is its resource row. Their history is
# resource_history's rows plus that version 1 where resource_history has none (events written before,
# and events the hub's own tools updated, have it there).
UNCOPIED_FIRST_VERSION = frozenset({audit_index.AUDIT})


@lru_cache(maxsize=64)  # one per resource type asked for
def _versions(resource_type: str) -> Any:
    """Every stored version of ``resource_type``'s resources, with resource_history's columns."""
    copied = select(
        H.c.rid, H.c.version_id, H.c.resource_type, H.c.id, H.c.last_updated, H.c.method, H.c.content
    ).where(H.c.resource_type == resource_type)
    if resource_type not in UNCOPIED_FIRST_VERSION:
        return _built(copied.subquery("versions"))
    first = select(
        R.c.rid,
        R.c.version_id,
        R.c.resource_type,
        R.c.id,
        R.c.last_updated,
        literal_column("'POST'", String()).label("method"),
        R.c.content,
    ).where(
        R.c.resource_type == resource_type,
        R.c.version_id == 1,
        ~exists().where(H.c.rid == R.c.rid, H.c.version_id == 1),
    )
    return _built(union_all(copied, first).subquery("versions"))


def _built(versions: Any) -> Any:
    _ = versions.c  # its columns made now, not lazily by two threads at once (as audit_index.source's)
    return versions


# Resource, history and index rows go in as multi-row inserts through the driver (storage/bulk.py):
# through Core each row cost 35-60 us of Python, and every request writes a dozen of them.
# RETURNING rid is matched back by type and id: a multi-row RETURNING promises no order.
_RESOURCE_ROWS = BulkInsert(
    R,
    ("resource_type", "id", "version_id", "last_updated", "deleted", "content"),
    returning=("rid", "resource_type", "id"),
)
_HISTORY_ROWS = BulkInsert(
    H, ("rid", "version_id", "resource_type", "id", "last_updated", "method", "content")
)
# One per kind of index row; the row dataclass's fields are its table's columns, in field order.
_INDEX_ROWS = {
    kind: BulkInsert(model.__table__, ("rid", "resource_type", *(f.name for f in fields(kind))))  # type: ignore[attr-defined]
    for kind, model in ROW_TABLES.items()
}

COLUMNS = (R.c.rid, R.c.resource_type, R.c.id, R.c.version_id, R.c.last_updated, R.c.deleted, R.c.content)
_SELECT_CURRENT = select(*COLUMNS).where(R.c.resource_type == bindparam("rtype"), R.c.id == bindparam("rid_"))
_SELECT_CURRENT_GRANTED = select(
    *COLUMNS, granted_column(R.c.rid, bindparam("org", type_=String())).label("granted")
).where(R.c.resource_type == bindparam("rtype"), R.c.id == bindparam("rid_"))
_BUMP = (
    update(R)
    .where(R.c.rid == bindparam("w_rid"), R.c.version_id == bindparam("w_version"))
    .values(
        version_id=bindparam("version_id"),
        last_updated=bindparam("last_updated"),
        deleted=bindparam("deleted"),
        content=bindparam("content"),
    )
)


# The reads by id every request makes, run through the driver (storage/driverselect.py).
_CURRENT = DriverSelect(_SELECT_CURRENT)
_CURRENT_GRANTED = DriverSelect(_SELECT_CURRENT_GRANTED)


def _deletes(tables: Sequence[Any]) -> dict[str, tuple[str, ...]]:
    """Per dialect, ``DELETE FROM <table> WHERE rid = ?`` for each table."""
    return {
        dialect: tuple(f"DELETE FROM {table.name} WHERE rid = {driver.mark(dialect)}" for table in tables)
        for dialect in ("sqlite", "postgresql")
    }


_CLEAR_INDEX = _deletes(INDEX_TABLES)
_CLEAR_AUDIT = _deletes((audit_index.AI, audit_index.AE))


class ResourceStore:
    """SQL for resources and their versions, on one connection inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- reads -----------------------------------------------------------------
    def current(self, resource_type: str, resource_id: str) -> Stored | None:
        row = _CURRENT.first(self.conn, {"rtype": resource_type, "rid_": resource_id})
        return row_to_stored(row) if row else None

    def current_with_access(
        self, resource_type: str, resource_id: str, organization_id: str
    ) -> tuple[Stored | None, bool]:
        """The current version and whether the organisation has an access row for it (one query)."""
        row = _CURRENT_GRANTED.first(
            self.conn, {"rtype": resource_type, "rid_": resource_id, "org": organization_id}
        )
        return (row_to_stored(row), bool(row[7])) if row else (None, False)

    def current_for_write(self, resource_type: str, resource_id: str) -> Stored | None:
        """The current version, with writers to this id serialised until commit.

        Without the lock two unconditional PUTs read the same version and the later one
        fails the version check (409) although FHIR lets the last writer win; with it the
        second waits, then reads and bumps the first one's version. It also covers ids
        that do not exist yet (update-as-create). SQLite writers are already serialised.
        """
        locks.lock(self.conn, f"resource:{resource_type}/{resource_id}")
        return self.current(resource_type, resource_id)

    def by_rids(self, rids: Sequence[int]) -> dict[int, Stored]:
        if not rids:
            return {}
        rows = self.conn.execute(select(*COLUMNS).where(R.c.rid.in_(list(rids)))).all()
        return {r.rid: row_to_stored(r) for r in rows}

    def version(self, resource_type: str, resource_id: str, version_id: int) -> Stored | None:
        V = _versions(resource_type)
        row = self.conn.execute(
            select(V.c.rid, V.c.resource_type, V.c.id, V.c.version_id, V.c.last_updated, V.c.content).where(
                V.c.id == resource_id, V.c.version_id == version_id
            )
        ).first()
        if row is None:
            return None
        return Stored(
            rid=row.rid,
            resource_type=row.resource_type,
            id=row.id,
            version_id=row.version_id,
            last_updated=row.last_updated,
            deleted=row.content is None,
            content=row.content,
        )

    def history(
        self,
        resource_type: str,
        resource_id: str | None,
        *,
        since: datetime | None,
        at_or_before: datetime | None,
        limit: int,
        offset: int,
        visible_to: str | None = None,
    ) -> tuple[list[tuple[Stored, str]], int]:
        """Versions newest first, with the HTTP method that made each, and the total."""
        V = _versions(resource_type)
        cond = []
        if resource_id is not None:
            cond.append(V.c.id == resource_id)
        if since is not None:
            cond.append(V.c.last_updated >= since)
        if at_or_before is not None:
            cond.append(V.c.last_updated <= at_or_before)
        if visible_to is not None:
            cond.append(visible_condition(V.c.rid, visible_to))
        total = self.conn.execute(select(func.count()).select_from(V).where(*cond)).scalar_one()
        rows = self.conn.execute(
            select(V)
            .where(*cond)
            .order_by(V.c.last_updated.desc(), V.c.rid.desc(), V.c.version_id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        out = [
            (
                Stored(
                    rid=r.rid,
                    resource_type=r.resource_type,
                    id=r.id,
                    version_id=r.version_id,
                    last_updated=r.last_updated,
                    deleted=r.content is None,
                    content=r.content,
                ),
                r.method,
            )
            for r in rows
        ]
        return out, int(total)

    # -- writes ----------------------------------------------------------------
    def create(
        self,
        resource_type: str,
        content: dict[str, Any],
        index_rows: audit_index.EventRows,
        *,
        now: datetime,
        resource_id: str | None = None,
        audit: tuple[dict[str, Any], audit_index.EventRows] | None = None,
        grants: Sequence[tuple[str, str]] = (),
    ) -> Stored:
        """Version 1 of a resource; ``audit``: its AuditEvent (content and index rows), written in
        the same statements (a create and its event are one insert per table, not two); ``grants``:
        the (organisation, reason) access grants it starts with, written with its other rows."""
        rid_ = resource_id or _fresh_id(resource_type)
        items: list[tuple[str, str, dict[str, Any], audit_index.EventRows]] = [
            (resource_type, rid_, content, index_rows)
        ]
        if audit is not None:
            items.append(("AuditEvent", new_event_id(), *audit))
        try:
            return self._create_rows(items, now, grants)[0]
        except IntegrityError:
            # Another transaction created this id first (e.g. a racing update-as-create).
            raise Conflict(
                f"{resource_type}/{rid_} was created by another request; read it and retry"
            ) from None

    def create_many(
        self,
        resource_type: str,
        items: Sequence[tuple[dict[str, Any], audit_index.EventRows]],
        *,
        now: datetime,
    ) -> list[Stored]:
        """Create several resources of one type in a handful of statements (multi-row inserts), for the
        hub's own bulk writes (the audit writer's batches, a delivery worker's disclosure AuditEvents).
        Ids are always new: time-ordered for AuditEvents, random for anything else."""
        return self._create_rows(
            [(resource_type, _fresh_id(resource_type), content, rows) for content, rows in items], now
        )

    def _create_rows(
        self,
        items: Sequence[tuple[str, str, dict[str, Any], audit_index.EventRows]],
        now: datetime,
        grants: Sequence[tuple[str, str]] = (),
    ) -> list[Stored]:
        """Version 1 of each (type, id, content, index rows), in order: one insert for the resources,
        one for their history, one per index table, and one for ``grants`` (of the first item)."""
        if not items:
            return []
        dialect = self.conn.dialect
        stamped = [(rtype, rid_, _stamp(content, rid_, 1, now), rows) for rtype, rid_, content, rows in items]
        processed = [
            _RESOURCE_ROWS.process(dialect, (rtype, rid_, 1, now, False, doc))
            for rtype, rid_, doc, _ in stamped
        ]
        returned = _RESOURCE_ROWS.execute(self.conn, processed)
        by_key = {(row[1], row[2]): row[0] for row in returned}  # (rid, resource_type, id)
        rids = [by_key[rtype, rid_] for rtype, rid_, _, _ in stamped]
        # The history row's timestamp and document are the resource row's, as the driver takes them:
        # the same column types, so processing them again (serialising each document twice) would
        # give the same values (tests/storage/test_bulk_insert.py).
        history = [
            (rid, 1, rtype, rid_, row[3], "POST", row[5])
            for rid, row, (rtype, rid_, _, _) in zip(rids, processed, stamped, strict=True)
            if rtype not in UNCOPIED_FIRST_VERSION
        ]
        index = [(rid, rtype, rows) for rid, (rtype, _, _, rows) in zip(rids, stamped, strict=True)]
        # Everything after the RETURNING is sent together (one round trip on PostgreSQL).
        driver.run_all(
            self.conn,
            [
                *_HISTORY_ROWS.statements(self.conn, history),
                *self._index_statements(index),
                *first_grants(self.conn, rids[0], grants),
            ],
        )
        return [
            Stored(rid, rtype, rid_, 1, now, False, doc)
            for rid, (rtype, rid_, doc, _) in zip(rids, stamped, strict=True)
        ]

    def update(
        self,
        old: Stored,
        content: dict[str, Any],
        index_rows: Iterable[IndexRow],
        *,
        now: datetime,
    ) -> Stored:
        version = old.version_id + 1
        doc = _stamp(content, old.id, version, now)
        first = self._copy_first_version(old)
        self._bump(old, version, now, deleted=False, content=doc)
        driver.run_all(
            self.conn,
            [
                *first,
                *self._history(old.rid, old.resource_type, old.id, version, now, "PUT", doc),
                *self._clear_index(old.rid, old.resource_type),
                *self._index_statements([(old.rid, old.resource_type, index_rows)]),
            ],
        )
        return Stored(old.rid, old.resource_type, old.id, version, now, False, doc)

    def delete(self, old: Stored, *, now: datetime) -> Stored:
        version = old.version_id + 1
        first = self._copy_first_version(old)
        self._bump(old, version, now, deleted=True, content=None)
        driver.run_all(
            self.conn,
            [
                *first,
                *self._history(old.rid, old.resource_type, old.id, version, now, "DELETE", None),
                *self._clear_index(old.rid, old.resource_type),
            ],
        )
        return Stored(old.rid, old.resource_type, old.id, version, now, True, None)

    def _bump(self, old: Stored, version: int, now: datetime, *, deleted: bool, content: Any) -> None:
        result = self.conn.execute(
            _BUMP,
            {
                "w_rid": old.rid,
                "w_version": old.version_id,
                "version_id": version,
                "last_updated": now,
                "deleted": deleted,
                "content": content,
            },
        )
        if result.rowcount != 1:
            raise Conflict(
                f"{old.resource_type}/{old.id} was changed by another request; read it again and retry"
            )

    def _copy_first_version(self, old: Stored) -> list[driver.Statement]:
        """Before version 1 of an ``UNCOPIED_FIRST_VERSION`` type is replaced, its history row (the
        API never changes an AuditEvent; the hub's own tools might)."""
        if old.resource_type not in UNCOPIED_FIRST_VERSION or old.version_id != 1:
            return []
        copied = self.conn.execute(select(H.c.rid).where(H.c.rid == old.rid, H.c.version_id == 1)).first()
        if copied is not None:  # written before ADR 0025
            return []
        return self._history(old.rid, old.resource_type, old.id, 1, old.last_updated, "POST", old.content)

    def _history(
        self, rid: int, rtype: str, rid_: str, version: int, now: datetime, method: str, doc: Any
    ) -> list[driver.Statement]:
        row = _HISTORY_ROWS.process(self.conn.dialect, (rid, version, rtype, rid_, now, method, doc))
        return _HISTORY_ROWS.statements(self.conn, [row])

    def _clear_index(self, rid: int, rtype: str) -> list[driver.Statement]:
        # Six statements on every update and delete, sent with the rest of the write (driver.run_all).
        dialect = self.conn.dialect.name
        sqls = [*_CLEAR_INDEX[dialect]]
        if rtype == audit_index.AUDIT:  # append-only through the API; the hub's own tools may not be
            sqls.extend(_CLEAR_AUDIT[dialect])
        return [(sql, (rid,), None) for sql in sqls]

    def _index_statements(
        self, items: Iterable[tuple[int, str, audit_index.EventRows]]
    ) -> list[driver.Statement]:
        """Index rows of several resources (rid, type, rows): one multi-row insert per index table.
        Only an AuditEvent's rows may come already split (``audit_index.SplitRows``)."""
        dialect = self.conn.dialect
        buckets: dict[type[Any], list[tuple[Any, ...]]] = {}
        audit: list[tuple[Any, ...]] = []
        entities: list[tuple[Any, ...]] = []
        for rid, rtype, rows in items:
            if rtype == audit_index.AUDIT:
                # Most of an AuditEvent's rows go to its own compact tables (storage/audit_index.py).
                own, entity, rows = audit_index.split(dialect, rid, rows)
                audit.append(own)
                entities.extend(entity)
            elif isinstance(rows, audit_index.SplitRows):
                raise TypeError(f"split index rows given for a {rtype}")
            for row in rows:
                kind = type(row)
                buckets.setdefault(kind, []).append(
                    _INDEX_ROWS[kind].process(dialect, (rid, rtype, *vars(row).values()))
                )
        out: list[driver.Statement] = []
        if audit:
            out.extend(audit_index.INDEX_ROWS.statements(self.conn, audit))
        if entities:
            out.extend(audit_index.ENTITY_ROWS.statements(self.conn, entities))
        for kind, values in buckets.items():
            out.extend(_INDEX_ROWS[kind].statements(self.conn, values))
        return out
