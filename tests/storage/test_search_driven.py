"""When a search page is driven by one index table (search_sql._driven_by_index), and when not."""

from __future__ import annotations

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
