"""ResourceStore on the real test database (SQLite or PostgreSQL): versions, conflicts, index upkeep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from service.access.caller import Caller
from service.audit.record import build_event, index_rows
from service.errors import Conflict
from service.search.compile import compile_filters
from service.search.extract import extract_index_rows
from service.search.parse import parse_search
from service.storage import access, search_sql
from service.storage.access import A
from service.storage.database import Database
from service.storage.resources import INDEX_TABLES, H, R, ResourceStore, Stored
from service.storage.search_sql import Criteria

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _patient(family: str, gender: str = "female") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://clinic.example.org/Id/local", "value": family.lower()}],
        "name": [{"family": family}],
        "gender": gender,
    }


def _create(
    store: ResourceStore, body: dict[str, Any], now: datetime = T0, resource_id: str | None = None
) -> Any:
    return store.create(
        body["resourceType"], body, extract_index_rows(body), now=now, resource_id=resource_id
    )


def _index(conn: Connection, rid: int) -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = {}
    for table in INDEX_TABLES:
        rows = conn.execute(select(table).where(table.c.rid == rid)).mappings().all()
        out[table.name] = {
            tuple(v for k, v in sorted(r.items()) if k not in ("id", "pk", "rid", "resource_type"))
            for r in rows
        }
    return out


def _strings(conn: Connection, rid: int) -> set[str]:
    table = next(t for t in INDEX_TABLES if t.name.endswith("string"))
    return {r.value for r in conn.execute(select(table).where(table.c.rid == rid, table.c.param == "family"))}


def test_create_stamps_id_and_meta_without_touching_the_input(clean_database: Database) -> None:
    body = {**_patient("Ada"), "id": "ignored", "meta": {"versionId": "9", "profile": ["http://x"]}}
    with clean_database.transaction() as conn:
        stored = _create(ResourceStore(conn), body)
    assert stored.version_id == 1
    assert stored.content["id"] == stored.id != "ignored"
    assert stored.content["meta"] == {
        "versionId": "1",
        "lastUpdated": "2026-01-01T12:00:00.000Z",
        "profile": ["http://x"],
    }
    assert body["meta"]["versionId"] == "9"  # the caller's dict is not mutated
    with clean_database.transaction(write=False) as conn:
        current = ResourceStore(conn).current("Patient", stored.id)
    assert current is not None
    assert current.content == stored.content
    assert current.rid == stored.rid


def test_update_bumps_version_and_keeps_every_version(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        v1 = _create(store, _patient("Ada"))
        v2 = store.update(
            v1, _patient("Byron"), extract_index_rows(_patient("Byron")), now=T0 + timedelta(seconds=1)
        )
        v3 = store.update(
            v2, _patient("Lovelace"), extract_index_rows(_patient("Lovelace")), now=T0 + timedelta(seconds=2)
        )
    assert (v2.version_id, v3.version_id) == (2, 3)
    assert v3.rid == v1.rid
    with clean_database.transaction(write=False) as conn:
        store = ResourceStore(conn)
        old = store.version("Patient", v1.id, 1)
        assert old is not None
        assert old.content is not None
        assert old.content["name"][0]["family"] == "Ada"
        assert store.version("Patient", v1.id, 4) is None
        versions, total = store.history("Patient", v1.id, since=None, at_or_before=None, limit=10, offset=0)
        assert total == 3
        assert [(s.version_id, method) for s, method in versions] == [(3, "PUT"), (2, "PUT"), (1, "POST")]
        since, since_total = store.history(
            "Patient", v1.id, since=T0 + timedelta(seconds=1), at_or_before=None, limit=10, offset=0
        )
        assert since_total == 2
        assert [s.version_id for s, _ in since] == [3, 2]


def test_stale_version_raises_conflict_and_changes_nothing(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        v1 = _create(store, _patient("Ada"))
        store.update(v1, _patient("Byron"), extract_index_rows(_patient("Byron")), now=T0)
    with pytest.raises(Conflict), clean_database.transaction() as conn:
        ResourceStore(conn).update(v1, _patient("Lost"), extract_index_rows(_patient("Lost")), now=T0)
    with pytest.raises(Conflict), clean_database.transaction() as conn:
        ResourceStore(conn).delete(v1, now=T0)
    with clean_database.transaction(write=False) as conn:
        current = ResourceStore(conn).current("Patient", v1.id)
        assert current is not None
        assert current.version_id == 2
        assert current.content is not None
        assert current.content["name"][0]["family"] == "Byron"
        assert _strings(conn, v1.rid) == {"byron"}


def test_duplicate_client_id_raises_conflict(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        _create(ResourceStore(conn), _patient("Ada"), resource_id="fixed-id")
    with pytest.raises(Conflict), clean_database.transaction() as conn:
        _create(ResourceStore(conn), _patient("Byron"), resource_id="fixed-id")
    with clean_database.transaction(write=False) as conn:
        current = ResourceStore(conn).current_for_write("Patient", "fixed-id")
        assert current is not None
        assert current.content is not None
        assert current.content["name"][0]["family"] == "Ada"


def test_index_rows_are_replaced_on_update(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        v1 = _create(store, _patient("Ada", "female"))
        before = _index(conn, v1.rid)
        changed = _patient("Byron", "male")
        store.update(v1, changed, extract_index_rows(changed), now=T0)
        after = _index(conn, v1.rid)
    assert _strings_of(before) >= {"ada"}
    assert "ada" not in _strings_of(after)
    assert "byron" in _strings_of(after)
    tokens = set(after["idx_token"])
    assert any("male" in row for row in tokens)
    assert not any("female" in row for row in tokens)
    assert sum(len(v) for v in after.values()) == len(extract_index_rows(changed))


def _strings_of(index: dict[str, set[tuple[Any, ...]]]) -> set[Any]:
    return {v for row in index["idx_string"] for v in row}


def test_delete_removes_index_rows_and_search_matches(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        keep = _create(store, _patient("Keep"))
        gone = _create(store, _patient("Gone"))
        assert sum(len(v) for v in _index(conn, gone.rid).values()) > 0
        tombstone = store.delete(gone, now=T0 + timedelta(seconds=5))
        assert tombstone.deleted
        assert tombstone.version_id == 2
        assert tombstone.content is None
        assert sum(len(v) for v in _index(conn, gone.rid).values()) == 0
        assert sum(len(v) for v in _index(conn, keep.rid).values()) > 0
    with clean_database.transaction(write=False) as conn:
        store = ResourceStore(conn)
        current = store.current("Patient", gone.id)
        assert current is not None
        assert current.deleted
        rows, _ = search_sql.page(conn, Criteria.fixed("Patient", []), limit=10)
        assert [s.id for s in rows] == [keep.id]
        assert search_sql.count(conn, Criteria.fixed("Patient", [])) == 1
        versions, total = store.history("Patient", gone.id, since=None, at_or_before=None, limit=10, offset=0)
        assert total == 2
        assert [(s.deleted, method) for s, method in versions] == [(True, "DELETE"), (False, "POST")]
        deleted_row = conn.execute(select(R.c.deleted).where(R.c.rid == gone.rid)).scalar_one()
        assert deleted_row is True


def test_update_after_delete_revives_with_next_version(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        v1 = _create(store, _patient("Ada"))
        tomb = store.delete(v1, now=T0)
        revived = store.update(tomb, _patient("Ada"), extract_index_rows(_patient("Ada")), now=T0)
        assert revived.version_id == 3
        assert not revived.deleted
        assert _strings(conn, v1.rid) == {"ada"}


def test_rollback_leaves_nothing(clean_database: Database) -> None:
    def write_then_fail() -> None:
        with clean_database.transaction() as conn:
            _create(ResourceStore(conn), _patient("Ghost"))
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with clean_database.transaction(write=False) as conn:
        assert search_sql.count(conn, Criteria.fixed("Patient", [])) == 0
        versions, total = ResourceStore(conn).history(
            "Patient", None, since=None, at_or_before=None, limit=5, offset=0
        )
        assert (versions, total) == ([], 0)


def test_create_many_writes_each_resource_its_history_and_the_same_index_rows_as_create(
    clean_database: Database,
) -> None:
    families = ["Adeyemi", "Byrne", "Chowdhury"]
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        many = store.create_many(
            "Patient", [(_patient(f), extract_index_rows(_patient(f))) for f in families], now=T0
        )
        single = _create(store, _patient("Adeyemi"))
        assert [s.content["name"][0]["family"] for s in many if s.content] == families
        assert len({s.id for s in many}) == 3
        for stored in many:
            current = store.current("Patient", stored.id)
            assert current is not None
            assert (current.rid, current.version_id, current.content) == (stored.rid, 1, stored.content)
            versions, _ = store.history(
                "Patient", stored.id, since=None, at_or_before=None, limit=10, offset=0
            )
            assert [(v.version_id, method) for v, method in versions] == [(1, "POST")]
        assert _index(conn, many[0].rid) == _index(conn, single.rid)
        assert _index(conn, many[1].rid) != _index(conn, many[2].rid)


def test_audit_event_ids_sort_in_the_order_they_were_made_and_other_ids_are_random(
    clean_database: Database,
) -> None:
    # Time-ordered AuditEvent ids put a batch's rows on one leaf of the (type, id) index (ADR 0024).
    event = {"resourceType": "AuditEvent", "recorded": "2026-01-01T12:00:00Z"}
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        events = [
            *store.create_many("AuditEvent", [(event, [])] * 3, now=T0),
            store.create("AuditEvent", event, [], now=T0),
            *store.create_many("AuditEvent", [(event, [])] * 3, now=T0),
        ]
        patients = store.create_many("Patient", [(_patient("Ada"), [])] * 3, now=T0)
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == 7
    assert {uuid.UUID(i).version for i in ids} == {7}
    assert {uuid.UUID(p.id).version for p in patients} == {4}


def test_a_create_and_its_audit_event_go_in_with_the_same_statements(clean_database: Database) -> None:
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement.split("(")[0].split()[-1])

    body = _patient("Ada")
    entity = Stored(0, "Patient", "p-1", 1, T0, False, None)
    audit_event = build_event(
        caller=Caller(client_id="c", organization_id="o", role="clinic", scopes="", jti="j"),
        action="create",
        now=T0,
        status=200,
        entities=[entity],
    )
    with clean_database.transaction() as conn:
        event.listen(conn, "before_cursor_execute", count)
        stored = ResourceStore(conn).create(
            "Patient",
            body,
            extract_index_rows(body),
            now=T0,
            resource_id="p-1",
            audit=(audit_event, index_rows(audit_event)),
        )
        event.remove(conn, "before_cursor_execute", count)
        audit_rows = conn.execute(select(R.c.id, R.c.content).where(R.c.resource_type == "AuditEvent")).all()
        history = conn.execute(select(H.c.resource_type).where(H.c.version_id == 1)).scalars().all()
        by_entity = compile_filters(parse_search("AuditEvent", [("entity", "Patient/p-1/_history/1")]), R)
        found = search_sql.page(conn, Criteria.fixed("AuditEvent", by_entity), limit=5)[0]
    assert stored.id == "p-1"
    assert stored.resource_type == "Patient"
    assert inserts.count("resource") == 1  # one statement for both rows
    assert inserts.count("resource_history") == 1
    assert len(audit_rows) == 1
    assert uuid.UUID(audit_rows[0].id).version == 7  # ADR 0024
    assert audit_rows[0].content["entity"][0]["what"]["reference"] == "Patient/p-1/_history/1"
    assert sorted(history) == ["Patient"]  # an AuditEvent's version 1 is its resource row (ADR 0025)
    assert [s.id for s in found] == [audit_rows[0].id]  # its index rows went in too


def test_a_create_writes_its_first_grants_in_one_insert_with_its_other_rows(
    clean_database: Database,
) -> None:
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement.split("(")[0].split()[-1])

    body = _patient("Ada")
    grants = [("org-clinic", "requester"), ("org-partner", "owner"), ("org-clinic", "requester")]
    with clean_database.transaction() as conn:
        event.listen(conn, "before_cursor_execute", count)
        stored = ResourceStore(conn).create("Patient", body, extract_index_rows(body), now=T0, grants=grants)
        plain = _create(ResourceStore(conn), _patient("Byrne"))
        event.remove(conn, "before_cursor_execute", count)
        rows = conn.execute(select(A.c.rid, A.c.organization_id, A.c.reason, A.c.valid_until)).all()
        # The grant counts for visibility as grant()'s upsert would.
        assert access.has_access(conn, stored.rid, "org-partner")
        assert not access.has_access(conn, stored.rid, "org-other")
        # A later grant for the same (organisation, reason) still extends the first one.
        later = T0 + timedelta(days=30)
        access.grant(conn, stored.rid, "org-partner", "owner", valid_until=later)
        extended = conn.execute(
            select(A.c.valid_until).where(A.c.rid == stored.rid, A.c.organization_id == "org-partner")
        ).scalar_one()
    assert sorted((r.rid, r.organization_id, r.reason, r.valid_until) for r in rows) == [
        (stored.rid, "org-clinic", "requester", None),
        (stored.rid, "org-partner", "owner", None),
    ]  # the repeated pair once; nothing for the create without grants
    assert plain.rid not in {r.rid for r in rows}
    assert inserts.count("resource_access") == 1  # both grants in one statement
    assert extended == later


def test_a_create_with_grants_sends_its_rows_after_the_returning_in_one_pipeline(
    postgres_database: Database, pipelines: list[int]
) -> None:
    body = _patient("Ada")
    with postgres_database.transaction() as conn:
        stored = ResourceStore(conn).create(
            "Patient", body, extract_index_rows(body), now=T0, grants=[("org-clinic", "author")]
        )
        assert access.has_access(conn, stored.rid, "org-clinic")
    assert pipelines == [1]  # history, index rows and the grant together: one round trip


def _event_history(store: ResourceStore, event_id: str) -> list[tuple[int, str, Any]]:
    versions, total = store.history("AuditEvent", event_id, since=None, at_or_before=None, limit=10, offset=0)
    assert total == len(versions)
    return [(v.version_id, method, v.content and v.content.get("outcome")) for v, method in versions]


def test_an_audit_events_first_version_is_read_from_its_resource_row(clean_database: Database) -> None:
    event = {"resourceType": "AuditEvent", "recorded": "2026-01-01T12:00:00Z", "outcome": "0"}
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        [stored] = store.create_many("AuditEvent", [(event, [])], now=T0)
        copied = conn.execute(select(H.c.rid).where(H.c.rid == stored.rid)).all()
        assert copied == []  # no second copy of the document
        assert _event_history(store, stored.id) == [(1, "POST", "0")]
        again = store.version("AuditEvent", stored.id, 1)
        assert again is not None
        assert (again.rid, again.content, again.last_updated) == (stored.rid, stored.content, T0)
        assert store.version("AuditEvent", stored.id, 2) is None
        types, total = store.history("AuditEvent", None, since=None, at_or_before=None, limit=10, offset=0)
        assert total == 1
        assert [v.id for v, _ in types] == [stored.id]
        assert (
            store.history(
                "AuditEvent", None, since=T0 + timedelta(seconds=1), at_or_before=None, limit=10, offset=0
            )[1]
            == 0
        )


def test_an_audit_event_written_with_a_history_row_is_listed_once(clean_database: Database) -> None:
    event = {"resourceType": "AuditEvent", "recorded": "2026-01-01T12:00:00Z", "outcome": "0"}
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        [stored] = store.create_many("AuditEvent", [(event, [])], now=T0)
        # As every event was stored before ADR 0025: its version 1 copied to resource_history too.
        conn.execute(
            H.insert().values(
                rid=stored.rid,
                version_id=1,
                resource_type="AuditEvent",
                id=stored.id,
                last_updated=T0,
                method="POST",
                content=stored.content,
            )
        )
        assert _event_history(store, stored.id) == [(1, "POST", "0")]


def test_changing_an_audit_event_keeps_its_first_version(clean_database: Database) -> None:
    """The API never changes an AuditEvent; if the hub's own tools do, version 1 is copied first."""
    event = {"resourceType": "AuditEvent", "recorded": "2026-01-01T12:00:00Z", "outcome": "0"}
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        [stored] = store.create_many("AuditEvent", [(event, [])], now=T0)
        second = store.update(stored, {**event, "outcome": "4"}, [], now=T0 + timedelta(seconds=1))
        assert _event_history(store, stored.id) == [(2, "PUT", "4"), (1, "POST", "0")]
        first = store.version("AuditEvent", stored.id, 1)
        assert first is not None
        assert first.content == stored.content
        store.delete(second, now=T0 + timedelta(seconds=2))
        assert [v for v, _, _ in _event_history(store, stored.id)] == [3, 2, 1]
