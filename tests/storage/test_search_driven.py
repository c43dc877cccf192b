"""When a search page is driven by one index table (search_sql._driven_by_index), and when not."""

from __future__ import annotations

import re
from typing import Any

from service.search.compile import compile_filters
from service.search.parse import parse_search
from service.storage import search_sql
from service.storage.resources import R
from service.storage.search_sql import SortKey


def _driven(params: list[tuple[str, str]]) -> bool:
    query = parse_search("Task", params)
    where = [R.c.resource_type == "Task", R.c.deleted.is_(False), *compile_filters(query, R)]
    return search_sql._driven_by_index(where, [SortKey(R.c.rid, False)], 21) is not None


def test_a_positive_index_condition_drives_the_page() -> None:
    assert _driven([("owner", "Organization/p"), ("status", "requested")])
    assert _driven([("status:not", "completed"), ("owner", "Organization/p")])


def test_conditions_on_the_resource_row_or_only_negative_ones_do_not() -> None:
    assert not _driven([("owner", "Organization/p"), ("_lastUpdated", "gt2026-01-01")])
    assert not _driven([("_id", "abc")])
    assert not _driven([("status:not", "completed")])
    assert not _driven([("owner:missing", "true")])
    assert not _driven([])


def test_subqueries_move_to_the_index_rid_as_the_traversal_would_move_them() -> None:
    # The inbox's shape: owner drives; status and the partner's visibility move onto the index rid.
    # Moved without cloning (rid IN (subquery) on the index rid), they compile to what
    # replacement_traverse gives.
    from service.storage.access import visible_condition

    query = parse_search("Task", [("owner", "Organization/p"), ("status", "requested")])
    conditions = [*compile_filters(query, R), visible_condition(R.c.rid, "p")]
    where = [R.c.resource_type == "Task", R.c.deleted.is_(False), *conditions]
    driven = search_sql._driven_by_index(where, [SortKey(R.c.rid, False)], 21)
    assert driven is not None
    idx_rid = search_sql._index_subquery(conditions[0]).selected_columns[0]  # type: ignore[union-attr]
    traversed = [search_sql._with_rid(c, idx_rid) for c in conditions[1:]]
    matching = search_sql._index_subquery(conditions[0])
    assert matching is not None
    expected = matching.where(*traversed).distinct().order_by(idx_rid.asc()).limit(21)

    def shape(stmt: Any) -> str:  # the SQL with its parameter names left out (clones rename them)
        return re.sub(r":\w+", ":?", str(stmt))

    assert shape(driven) == shape(expected)
    assert "resource_access.organization_id = :?" in shape(driven)


def test_on_sqlite_visibility_is_probed_per_candidate_and_index_conditions_stay_lists() -> None:
    from service.storage.access import visible_condition

    query = parse_search("Task", [("owner", "Organization/p"), ("status", "requested")])
    conditions = [*compile_filters(query, R), visible_condition(R.c.rid, "p")]
    where = [R.c.resource_type == "Task", R.c.deleted.is_(False), *conditions]
    driven = search_sql._driven_by_index(where, [SortKey(R.c.rid, False)], 21, probe=True)
    sql = re.sub(r"\s+", " ", str(driven))
    assert "EXISTS (SELECT resource_access.rid FROM resource_access WHERE" in sql
    assert "resource_access.rid = idx_reference_1.rid" in sql
    assert "idx_reference_1.rid IN (SELECT idx_token_1.rid" in sql


def test_an_audit_search_is_driven_by_its_audit_rows() -> None:
    """AuditEvent parameters read the audit tables through a UNION ALL (storage/audit_index.py); their
    rows exist only for current events, as index rows do, so a patient's trail is fetched by its
    audit_entity rows, not by reading every AuditEvent of the table."""
    query = parse_search("AuditEvent", [("patient", "Patient/p"), ("action", "R")])
    where = [R.c.resource_type == "AuditEvent", R.c.deleted.is_(False), *compile_filters(query, R)]
    driven = search_sql._driven_by_index(where, [SortKey(R.c.rid, False)], 21, probe=True)
    assert driven is not None
    sql = re.sub(r"\s+", " ", str(driven))
    assert sql.startswith("SELECT DISTINCT audit_patient_0.rid FROM (SELECT audit_entity.rid")
    assert "audit_patient_0.rid IN (SELECT audit_action_0.rid FROM (SELECT audit_index.rid" in sql
