"""Paging through search results over real HTTP (http://hl7.org/fhir/R4/http.html#paging).

Links are followed exactly as a client would: absolute URLs from ``Bundle.link``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from service.search.extract import extract_index_rows
from service.search.parse import MAX_COUNT
from service.storage.resources import ResourceStore
from tests.support.clients import Client, FhirClients


def _org(client: Client, name: str) -> str:
    response = client.post("/fhir/Organization", json={"resourceType": "Organization", "name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            return str(link["url"])
    return None


def _page(client: Client, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    return bundle


def _match_ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _walk(client: Client, first: str, relation: str = "next") -> list[list[str]]:
    pages = []
    url: str | None = first
    while url is not None:
        bundle = _page(client, url)
        pages.append(_match_ids(bundle))
        url = _link(bundle, relation)
        assert len(pages) < 100, "paging does not terminate"
    return pages


def test_every_entry_exactly_once_in_order_forward_and_back(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    created = [_org(admin, f"Org {i:02d}") for i in range(45)]
    first = _page(admin, "/fhir/Organization?_count=10&_total=accurate")
    assert first["total"] == 45
    assert _link(first, "previous") is None
    assert _link(first, "self") is not None
    pages = _walk(admin, "/fhir/Organization?_count=10")
    assert [len(p) for p in pages] == [10, 10, 10, 10, 5]
    assert [i for p in pages for i in p] == created  # default order: creation order
    # Walk back from the last page with `previous`.
    url: str | None = "/fhir/Organization?_count=10"
    last: dict[str, Any] = {}
    while url is not None:
        last = _page(admin, url)
        url = _link(last, "next")
    assert _link(last, "previous") is not None
    back = _walk(admin, str(_link(last, "previous")), "previous")
    assert back == list(reversed(pages[:-1]))


def test_sorted_paging_stays_correct_while_data_changes(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    names = [f"M{i:02d}" for i in range(25)]
    by_name = {name: _org(admin, name) for name in reversed(names)}
    expected = [by_name[n] for n in names]
    seen: list[str] = []
    url: str | None = "/fhir/Organization?_sort=name&_count=7"
    step = 0
    while url is not None:
        bundle = _page(admin, url)
        seen.extend(_match_ids(bundle))
        url = _link(bundle, "next")
        # New resources sorting before, between and after the pages already read.
        _org(admin, f"A-new-{step}")
        _org(admin, f"M{step:02d}-new")
        _org(admin, f"Z-new-{step}")
        step += 1
    unchanged = [i for i in seen if i in set(expected)]
    assert unchanged == expected  # none skipped, none repeated, still in order
    assert len(seen) == len(set(seen))


def test_paging_descending_sort_and_filters(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    ids = [_org(admin, f"Charity {i:02d}") for i in range(12)]
    for i in range(5):
        _org(admin, f"Other {i}")
    pages = _walk(admin, "/fhir/Organization?name=charity&_sort=-name&_count=5")
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for p in pages for i in p] == list(reversed(ids))


def test_count_is_capped_and_the_cap_documented(fhir: FhirClients) -> None:
    now = datetime.now(UTC)
    with fhir.db.transaction() as conn:
        store = ResourceStore(conn)
        for i in range(MAX_COUNT + 5):
            body = {"resourceType": "Organization", "name": f"Bulk {i:03d}"}
            store.create("Organization", body, extract_index_rows(body), now=now)
    admin = fhir.client("admin", "hub")
    bundle = _page(admin, f"/fhir/Organization?_count={MAX_COUNT * 5}&_total=accurate")
    assert len(_match_ids(bundle)) == MAX_COUNT
    assert bundle["total"] == MAX_COUNT + 5
    rest = _page(admin, str(_link(bundle, "next")))
    assert len(_match_ids(rest)) == 5
    statement = httpx.get(f"{fhir.base_url}/fhir/metadata").json()
    assert f"capped at {MAX_COUNT}" in statement["rest"][0]["documentation"]


def test_count_zero_returns_only_the_total(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    for i in range(3):
        _org(admin, f"Z {i}")
    bundle = _page(admin, "/fhir/Organization?_count=0")
    assert bundle["total"] == 3
    assert _match_ids(bundle) == []


def test_tampered_cursor_is_400(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    for value in ("garbage", "eyJkIjoic2lkZXdheXMiLCJ2IjpbXX0"):
        response = admin.get("/fhir/Organization", params={"_cursor": value})
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


def test_offset_is_reported_as_unsupported(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    for i in range(3):
        _org(admin, f"Off {i}")
    bundle = _page(admin, "/fhir/Organization?_offset=2")
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "_offset" in outcomes[0]["issue"][0]["diagnostics"]
    assert len(_match_ids(bundle)) == 3
    strict = admin.get("/fhir/Organization?_offset=2", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_total_is_stated_only_when_cheap_or_asked_for(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    for i in range(3):
        _org(admin, f"Total {i}")
    whole = _page(admin, "/fhir/Organization?name=Total&_count=10")
    assert whole["total"] == 3  # the first page holds every match: exact and free
    partial = _page(admin, "/fhir/Organization?name=Total&_count=2")
    assert "total" not in partial  # a COUNT is not run unless asked for
    asked = _page(admin, "/fhir/Organization?name=Total&_count=2&_total=accurate")
    assert asked["total"] == 3
    none = _page(admin, "/fhir/Organization?name=Total&_count=10&_total=none")
    assert "total" not in none


def test_index_driven_pages_count_a_resource_with_two_matching_index_rows_once(fhir: FhirClients) -> None:
    # A filtered search in rid order is answered from the index table alone (search_sql._driven_by_index);
    # each Organization here matches through two index rows, and must still be one entry, once.
    admin = fhir.client("admin", "hub")
    system = "https://example.org/Id/paging"
    created = []
    for i in range(25):
        body = {
            "resourceType": "Organization",
            "name": f"Twice {i:02d}",
            "identifier": [{"system": system, "value": "a"}, {"system": system, "value": "b"}],
        }
        response = admin.post("/fhir/Organization", json=body)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    _org(admin, "Neither")
    query = f"/fhir/Organization?identifier={system}|a,{system}|b&name=twice&_count=10"
    pages = _walk(admin, query)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == created
    last: dict[str, Any] = {}
    url: str | None = query
    while url is not None:
        last = _page(admin, url)
        url = _link(last, "next")
    assert _walk(admin, str(_link(last, "previous")), "previous") == list(reversed(pages[:-1]))
