"""A search's statement is built once per shape and kept (storage/search_sql.py, ADR 0019): the next
search of that shape, with other values, runs the kept statement and must answer for its own values.

Each pair below runs the first search, then the second with the same shape and other values, and
checks that the second built nothing new and found what its own values select."""

from __future__ import annotations

from typing import Any

import pytest

from service.storage import search_sql
from tests.referrals._workflow_hub import Hub, entries, ok, permit
from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic.example.org/Id/local"
Params = list[tuple[str, str]]


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


def _kept(client: Client, path: str, params: Params) -> list[str]:
    """The ids a search finds, asserting that it ran a statement already kept for its shape."""
    before = set(search_sql._PLANS)
    found = _ids(client.get(path, params=params))
    assert set(search_sql._PLANS) == before, f"{params} built a new statement"
    return found


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    return fhir.client("clinic")


@pytest.fixture
def people(clinic: Client) -> dict[str, dict[str, Any]]:
    def patient(local: str, family: str, birth: str, gender: str) -> dict[str, Any]:
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": LOCAL, "value": local}],
            "name": [{"family": family, "given": ["A"]}],
            "birthDate": birth,
            "gender": gender,
        }
        return ok(clinic.post("/fhir/Patient", json=body), 201)

    return {
        "zoe": patient("l-1", "Zoë", "1988-04-15", "female"),
        "zola": patient("l-2", "Zola", "1988-07-01", "male"),
        "pct": patient("l-3", "Per%cent", "1990-01-01", "other"),
        "under": patient("l-4", "Under_score", "1987-12-31", "unknown"),
    }


PAIRS: list[tuple[Params, set[str], Params, set[str]]] = [
    ([("identifier", f"{LOCAL}|l-1")], {"zoe"}, [("identifier", f"{LOCAL}|l-2")], {"zola"}),
    ([("identifier", "l-3")], {"pct"}, [("identifier", "l-4")], {"under"}),
    ([("gender", "female")], {"zoe"}, [("gender", "male")], {"zola"}),
    ([("gender:not", "female")], {"zola", "pct", "under"}, [("gender:not", "male")], {"zoe", "pct", "under"}),
    ([("family", "zo")], {"zoe", "zola"}, [("family", "per")], {"pct"}),
    ([("family:exact", "Zola")], {"zola"}, [("family:exact", "Under_score")], {"under"}),
    # LIKE's own wildcards are the values' literal characters, in a kept statement as in a new one.
    ([("family:contains", "%")], {"pct"}, [("family:contains", "_")], {"under"}),
    ([("family", "per%")], {"pct"}, [("family", "under_")], {"under"}),
    ([("birthdate", "ge1988-05-01")], {"zola", "pct"}, [("birthdate", "ge1989")], {"pct"}),
    ([("birthdate", "1988")], {"zoe", "zola"}, [("birthdate", "1990")], {"pct"}),
    (
        [("birthdate", "ge1988-01-01"), ("birthdate", "lt1989-01-01")],
        {"zoe", "zola"},
        [("birthdate", "ge1987-01-01"), ("birthdate", "lt1988-01-01")],
        {"under"},
    ),
    ([("gender", "female,male")], {"zoe", "zola"}, [("gender", "other,unknown")], {"pct", "under"}),
]


@pytest.mark.parametrize(("first", "found_first", "second", "found_second"), PAIRS)
def test_a_kept_statement_answers_for_the_values_it_is_given(
    clinic: Client,
    people: dict[str, dict[str, Any]],
    first: Params,
    found_first: set[str],
    second: Params,
    found_second: set[str],
) -> None:
    names = {p["id"]: name for name, p in people.items()}
    assert {names[i] for i in _ids(clinic.get("/fhir/Patient", params=first))} == found_first
    assert {names[i] for i in _kept(clinic, "/fhir/Patient", second)} == found_second


def test_ids_and_last_updated_are_values_too(clinic: Client, people: dict[str, dict[str, Any]]) -> None:
    zoe, zola, pct, under = (people[k] for k in ("zoe", "zola", "pct", "under"))
    assert set(_ids(clinic.get("/fhir/Patient", params=[("_id", f"{zoe['id']},{zola['id']}")]))) == {
        zoe["id"],
        zola["id"],
    }
    assert set(_kept(clinic, "/fhir/Patient", [("_id", f"{pct['id']},{under['id']}")])) == {
        pct["id"],
        under["id"],
    }
    # Created in this order: from zola's lastUpdated on, zola and the two after; from under's, not zoe.
    _ids(clinic.get("/fhir/Patient", params=[("_lastUpdated", f"ge{zoe['meta']['lastUpdated']}")]))
    since_zola = _kept(clinic, "/fhir/Patient", [("_lastUpdated", f"ge{zola['meta']['lastUpdated']}")])
    assert {zola["id"], pct["id"], under["id"]} <= set(since_zola)
    since_under = _kept(clinic, "/fhir/Patient", [("_lastUpdated", f"ge{under['meta']['lastUpdated']}")])
    assert under["id"] in since_under
    assert zoe["id"] not in since_under


def test_every_page_of_a_sorted_search_runs_one_kept_statement(
    clinic: Client, people: dict[str, dict[str, Any]]
) -> None:
    # Pages after the first share a shape and differ in their keyset: each must start where the
    # previous page ended, although the statement was built with another page's keyset.
    order = sorted(people.values(), key=lambda p: p["birthDate"])
    seen: list[str] = []
    response = clinic.get("/fhir/Patient", params={"_sort": "birthdate", "_count": "1"})
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        bundle = response.json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        pages += 1
        before = set(search_sql._PLANS)
        response = clinic.get(following[0])
        if pages > 1:
            assert set(search_sql._PLANS) == before
    assert seen == [p["id"] for p in order]


def test_each_partner_sees_its_own_inbox_through_one_kept_statement(fhir: FhirClients) -> None:
    # Visibility is a value of the statement, never part of it: whichever partner's search built the
    # inbox statement, the other's search through it finds only the other's Tasks.
    hub = Hub.build(fhir)
    other = hub.other_partner
    service = {
        "resourceType": "HealthcareService",
        "active": True,
        "name": "Housing advice",
        "providedBy": {"reference": other.org_ref},
    }
    other_service = (
        f"HealthcareService/{ok(hub.admin.post('/fhir/HealthcareService', json=service), 201)['id']}"
    )
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref, other.org_ref))
    _, task = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    _, other_task = hub.referred(patient, other_service, supportingInfo=[{"reference": consent}])

    def inbox(client: Client, owner: str) -> list[str]:
        return [t["id"] for t in entries(client.get(f"/fhir/Task?owner={owner}&status=requested"))]

    for first, second, first_task, second_task in (
        (hub.partner, other, task, other_task),
        (other, hub.partner, other_task, task),
    ):
        assert inbox(first, first.org_ref) == [first_task["id"]]
        before = set(search_sql._PLANS)
        assert inbox(second, second.org_ref) == [second_task["id"]]
        assert inbox(second, first.org_ref) == []  # the first's inbox, with the second's visibility
        assert set(search_sql._PLANS) == before
