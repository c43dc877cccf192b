"""Working a referral in the web app without a browser: every action is the domain's Task transition
(the same rules and effects as the API), authorised by tenancy, minimised and audited as the person."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from service.storage.resources import R
from tests.support.live import LiveServer
from tests.web._form_client import FormClient, csrf_token
from tests.web._web_world import PASSWORD, Person, World


def _signed_in(server: LiveServer, person: Person) -> FormClient:
    client = FormClient(server.base_url)
    assert client.sign_in(person.email, PASSWORD, person.code()).status_code == 303
    return client


@pytest.fixture
def partner(world: World, server: LiveServer) -> Iterator[FormClient]:
    client = _signed_in(server, world.partner_worker())
    yield client
    client.close()


def _task(world: World, task_id: str) -> dict[str, Any]:
    response = world.hub.partner.get(f"/fhir/Task/{task_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_inbox_and_referral_page_show_the_partners_minimised_view(
    partner: FormClient, world: World
) -> None:
    task = world.refer()
    inbox = partner.get("/app/").text
    assert "Ada Okafor" in inbox
    assert "Housing advice" in inbox
    assert "0 of 5 working days" in inbox
    page = partner.get(f"/app/referrals/{task['id']}").text
    assert "07700 900123" in page
    assert "Do not leave voicemail" in page
    assert "Do you need help with housing?" in page
    assert "Feeling nervous" not in page  # PHQ-4 is not the housing service's to see
    assert "Permits sharing with Partner A" in page


def test_accept_contact_and_complete_move_the_task_as_the_api_would(
    partner: FormClient, world: World
) -> None:
    task = world.refer()
    assert partner.act(task["id"], "accept").status_code == 303
    assert partner.act(task["id"], "contact-attempted").status_code == 303
    assert _task(world, task["id"])["businessStatus"]["coding"][0]["code"] == "contact-attempted"
    assert partner.act(task["id"], "contacted").status_code == 303
    assert _task(world, task["id"])["status"] == "in-progress"
    assert partner.act(task["id"], "complete", outcome="Housing officer appointment kept").status_code == 303
    final = _task(world, task["id"])
    assert final["status"] == "completed"
    assert final["output"][0]["valueString"] == "Housing officer appointment kept"
    # The ServiceRequest followed (referrals.task_rules), as after an API PUT.
    request = world.hub.clinic.get(f"/fhir/{task['focus']['reference']}").json()
    assert request["status"] == "completed"


def test_an_invalid_move_shows_the_rule_that_stopped_it(partner: FormClient, world: World) -> None:
    task = world.refer()
    refused = partner.act(task["id"], "complete", outcome="Done")
    assert refused.status_code == 422
    assert "Task status cannot move from &#39;requested&#39; to &#39;completed&#39;" in refused.text
    no_reason = partner.act(task["id"], "reject", reason="")
    assert no_reason.status_code == 422
    assert "needs a statusReason" in no_reason.text
    assert _task(world, task["id"])["status"] == "requested"


def test_a_stale_page_cannot_overwrite_a_newer_change(partner: FormClient, world: World) -> None:
    task = world.refer()
    page = partner.get(f"/app/referrals/{task['id']}")
    assert partner.act(task["id"], "accept").status_code == 303
    stale = partner.post(
        f"/app/referrals/{task['id']}/contacted", {"csrf_token": csrf_token(page.text), "version": "1"}
    )
    assert stale.status_code == 412
    assert "Someone changed this referral" in stale.text


def test_another_partner_sees_nothing_and_gets_404(world: World, server: LiveServer) -> None:
    task = world.refer()
    other = _signed_in(server, world.other_partner_worker())
    try:
        assert "Ada Okafor" not in other.get("/app/").text
        page = other.get(f"/app/referrals/{task['id']}")
        assert page.status_code == 404
        assert "Ada Okafor" not in page.text
        home = other.get("/app/")
        moved = other.post(
            f"/app/referrals/{task['id']}/accept", {"csrf_token": csrf_token(home.text), "version": "1"}
        )
        assert moved.status_code == 404
    finally:
        other.close()
    assert _task(world, task["id"])["status"] == "requested"


def test_a_clinic_sees_its_referrals_flags_and_timeline_but_cannot_act(
    world: World, server: LiveServer, partner: FormClient
) -> None:
    task = world.refer()
    partner.act(task["id"], "accept")
    clinic = _signed_in(server, world.clinic_worker())
    try:
        tracker = clinic.get("/app/").text
        assert "Ada Okafor" in tracker
        assert "Partner A" in tracker
        assert "Accepted" in tracker
        assert "Positive PHQ-4 screen" in tracker
        page = clinic.get(f"/app/referrals/{task['id']}").text
        assert "Feeling nervous" in page  # the clinic sees its whole assessment
        assert "Accept referral" not in page
        forbidden = clinic.post(
            f"/app/referrals/{task['id']}/complete",
            {"csrf_token": csrf_token(page), "version": "2", "outcome": "x"},
        )
        assert forbidden.status_code == 403
    finally:
        clinic.close()


def test_a_recorded_withdrawal_cancels_the_referral_and_ends_access(
    partner: FormClient, world: World
) -> None:
    task = world.refer()
    assert partner.act(task["id"], "withdrawal").status_code == 303
    page = partner.get(f"/app/referrals/{task['id']}").text
    assert "Cancelled" in page
    assert "07700 900123" not in page  # the partner's access to the person's details ended
    consents = world.hub.clinic.get(f"/fhir/Consent?patient={task['for']['reference']}").json()["entry"]
    assert any(e["resource"]["provision"]["type"] == "deny" for e in consents)


def test_every_action_is_audited_as_the_person_at_the_organisation(partner: FormClient, world: World) -> None:
    task = world.refer()
    partner.act(task["id"], "accept")
    with world.hub.fhir.db.transaction() as conn:
        events = [
            r[0] for r in conn.execute(select(R.c.content).where(R.c.resource_type == "AuditEvent")).all()
        ]
    mine = [
        e
        for e in events
        if e["agent"][0]["who"].get("identifier", {}).get("value") == "pat.partner@example.org"
    ]
    updates = [e for e in mine if e["subtype"][0]["code"] == "update"]
    assert updates, "the accept was not audited as the person"
    who = updates[0]["agent"][0]["who"]
    assert who["identifier"]["system"] == "https://wraparound.org.uk/fhir/Id/user"
    assert who["reference"] == world.hub.partner.org_ref
    assert any(e["subtype"][0]["code"] == "read" for e in mine)
