"""The AuditEvent indexer's shortcut (record.index_rows) gives exactly the rows the generic FHIRPath
indexer gives, for every shape of event the hub writes."""

from __future__ import annotations

from typing import Any

import pytest

from service.audit import record
from service.search.extract import extract_index_rows
from tests.audit._event_shapes import CLINIC, NOW, PATIENT, built_events


@pytest.mark.parametrize("event", built_events(), ids=lambda e: e["subtype"][0]["code"] + "-" + e["outcome"])
def test_shortcut_rows_equal_the_fhirpath_rows(event: dict[str, Any]) -> None:
    assert record.index_rows(event) == extract_index_rows(event)


def test_an_event_of_another_shape_is_indexed_the_generic_way() -> None:
    event = record.build_event(caller=CLINIC, action="read", now=NOW, status=200, entities=[PATIENT])
    event["meta"] = {"tag": [{"system": "https://example.org/tags", "code": "t"}]}
    rows = record.index_rows(event)
    assert rows == extract_index_rows(event)
    assert any(getattr(row, "param", None) == "_tag" for row in rows)
