"""The AuditEvent indexer's shortcut (record.index_rows) gives exactly the rows the generic FHIRPath
indexer gives, for every shape of event the hub writes."""

from __future__ import annotations

from typing import Any

import pytest

from service.audit import record
from service.search.extract import extract_index_rows
from service.storage import audit_index
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


def _variants() -> list[dict[str, Any]]:
    """Every built shape, and each again with another time, other entities and a second agent:
    the shortcut keeps the repeating parts of one event for the next, so each is split twice."""
    out: list[dict[str, Any]] = []
    for event in built_events():
        later = {**event, "recorded": "2026-12-01T14:21:00.004Z"}
        other = {
            **event,
            "entity": [
                *event.get("entity", []),
                {"what": {"reference": "Patient/abc/_history/4"}},  # the same Patient again
                {"what": {"reference": "https://other.example/fhir/Patient/p2"}},
                {"what": {"reference": "Task/t-9"}},
                {"what": "not-a-reference"},
            ],
        }
        twice = {
            **event,
            "agent": [*event["agent"], {"who": {"reference": "Patient/abc"}, "altId": "second"}],
        }
        no_date = {k: v for k, v in event.items() if k != "recorded"}
        out += [event, event, later, other, twice, twice, no_date]
    odd = built_events()[0]
    out += [
        {**odd, "action": {"code": "R"}},  # not a plain string: indexed the general way
        {**odd, "agent": [{"who": "Organization/x"}]},
        {**odd, "subtype": [*odd["subtype"], {"system": "https://example.org/s", "code": "x"}]},
        {**odd, "source": {"observer": {"reference": "Device/d-1"}}},
    ]
    return out


@pytest.mark.parametrize("event", _variants())
def test_the_audit_writers_split_equals_splitting_the_general_rows(event: dict[str, Any]) -> None:
    assert record.audit_rows(event) == audit_index.split_rows(record.index_rows(event))


def test_every_element_a_built_event_may_have_is_either_keyed_or_added_per_event() -> None:
    assert record.FIXED_ELEMENTS | record.PER_EVENT_ELEMENTS == record._BUILT
    assert not record.FIXED_ELEMENTS & record.PER_EVENT_ELEMENTS
