"""The web app attacked by a hostile user and read by a privacy officer, over real HTTP (a live server):
other organisations' referrals by id and by tampered forms, more of an assessment than the partner's
view, the wrong role, accounts and organisations that are gone, consent withdrawn, stored markup, open
redirects, CSRF, sessions, sign-in races and replays, caching, audit, logs and error pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.storage.resources import R
from service.storage.tables import WebSigninFailure
from service.web import accounts, referral_page, signin
from service.web.assessment_view import _texts
from tests.support.live import LiveServer
from tests.web._form_client import FormClient, csrf_token
from tests.web._web_world import PASSWORD, Person, World

FAILURES = WebSigninFailure.__table__  # type: ignore[attr-defined]
TEMPLATES = Path(__file__).resolve().parents[2] / "service" / "web" / "templates"
ACTIONS = ("accept", "reject", "contact-attempted", "contacted", "hold", "resume", "complete", "withdrawal")


@pytest.fixture
def clients(server: LiveServer) -> Iterator[Callable[[Person], FormClient]]:
    made: list[FormClient] = []

    def signed_in(person: Person) -> FormClient:
        client = FormClient(server.base_url)
        made.append(client)
        assert client.sign_in(person.email, PASSWORD, person.code()).status_code == 303
        return client

    yield signed_in
    for client in made:
        client.close()


def _task(world: World, task_id: str) -> dict[str, Any]:
    body: dict[str, Any] = world.hub.partner.get(f"/fhir/Task/{task_id}").json()
    return body


def _events(world: World) -> list[dict[str, Any]]:
    with world.hub.fhir.db.transaction() as conn:
        rows = conn.execute(select(R.c.content).where(R.c.resource_type == "AuditEvent")).all()
    return [r[0] for r in rows if r[0] is not None]


def _by(events: list[dict[str, Any]], email: str) -> list[dict[str, Any]]:
    return [e for e in events if e["agent"][0]["who"].get("identifier", {}).get("value") == email]


# -- tenancy and roles ---------------------------------------------------------------------------------


def test_another_organisation_gets_404_for_every_action_and_nothing_changes(
    world: World, clients: Callable[[Person], FormClient]
) -> None:
    task = world.refer()
    before = _task(world, task["id"])
    other = clients(world.other_partner_worker())
    token = csrf_token(other.get("/app/").text)  # its own valid token: only tenancy can stop it
    for action in ACTIONS:
        for version in (before["meta"]["versionId"], "999", ""):
            data = {"csrf_token": token, "version": version, "reason": "x", "outcome": "x"}
            moved = other.post(f"/app/referrals/{task['id']}/{action}", data)
            assert moved.status_code == 404, (action, version)
            assert "Ada Okafor" not in moved.text
    for path in (
        "/app/referrals/..%2F..%2Ffhir%2FPatient",
        "/app/referrals/" + "a" * 65,
        "/app/referrals/x y",
    ):
        assert other.get(path).status_code == 404
    after = _task(world, task["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"]
    consents = world.hub.clinic.get(f"/fhir/Consent?patient={task['for']['reference']}").json()
    assert all(e["resource"]["provision"]["type"] == "permit" for e in consents["entry"])
    # A second clinic sees none of the first clinic's referrals either.
    org = world.hub.admin.post(
        "/fhir/Organization", json={"resourceType": "Organization", "name": "Clinic B"}
    )
    clinic_b = clients(world.person("bea.clinic", org.json()["id"], "clinic"))
    assert "Ada Okafor" not in clinic_b.get("/app/").text
    assert clinic_b.get(f"/app/referrals/{task['id']}").status_code == 404


def test_a_post_without_the_version_it_showed_is_refused(
    world: World, clients: Callable[[Person], FormClient]
) -> None:
    task = world.refer()
    partner = clients(world.partner_worker())
    token = csrf_token(partner.get(f"/app/referrals/{task['id']}").text)
    for version in ("", "1abc", 'W/"1"'):
        blind = partner.post(f"/app/referrals/{task['id']}/accept", {"csrf_token": token, "version": version})
        assert blind.status_code == 412, version
    assert _task(world, task["id"])["status"] == "requested"


def test_a_clinic_cannot_act_as_a_partner_nor_a_partner_see_a_clinics_page(
    world: World, clients: Callable[[Person], FormClient]
) -> None:
    task = world.refer()
    clinic = clients(world.clinic_worker())
    page = clinic.get(f"/app/referrals/{task['id']}").text
    for action in ACTIONS:
        data = {"csrf_token": csrf_token(page), "version": "1", "reason": "x", "outcome": "x"}
        assert clinic.post(f"/app/referrals/{task['id']}/{action}", data).status_code == 403, action
    assert _task(world, task["id"])["meta"]["versionId"] == task["meta"]["versionId"]
    partner = clients(world.partner_worker())
    inbox = partner.get("/app/?partner=Partner+A").text
    assert "Positive screens" not in inbox
    assert "PHQ-4" not in inbox
    assert "Feeling nervous" not in partner.get(f"/app/referrals/{task['id']}").text


def test_the_partner_page_shows_no_more_of_the_assessment_than_the_api_partner_view(
    world: World, clients: Callable[[Person], FormClient]
) -> None:
    task = world.refer()
    request = world.hub.partner.get(f"/fhir/{task['focus']['reference']}").json()
    ref = next(
        i["reference"] for i in request["supportingInfo"] if i["reference"].startswith("Questionnaire")
    )
    whole = world.hub.clinic.get(f"/fhir/{ref}").json()
    view = world.hub.partner.get(f"/fhir/{ref}").json()
    texts = _texts(whole["questionnaire"])

    def link_ids(items: list[dict[str, Any]]) -> set[str]:
        found: set[str] = set()
        for item in items:
            found.add(item["linkId"])
            found |= link_ids(item.get("item", []))
            for answer in item.get("answer", []):
                found |= link_ids(answer.get("item", []))
        return found

    shown, withheld = link_ids(view["item"]), link_ids(whole["item"]) - link_ids(view["item"])
    assert withheld, "the partner's view withholds nothing: the test would prove nothing"
    page = clients(world.partner_worker()).get(f"/app/referrals/{task['id']}").text
    # The name is on the page, not in its title: titles go into browser history and synced accounts.
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert "Okafor" not in title.group(1)
    assert "Ada Okafor" in page
    kept_texts = {texts.get(i) for i in shown}
    for link_id in withheld:
        text = texts.get(link_id)
        if text and text not in kept_texts:
            assert text not in page, f"{link_id} ({text!r}) is not in the partner's view"
    for link_id in shown:
        if texts.get(link_id):
            assert texts[link_id].replace("'", "&#39;") in page


# -- people and organisations that are gone, consent withdrawn -------------------------------------------


def test_a_removed_account_is_signed_out_at_once_and_cannot_sign_in(
    world: World, clients: Callable[[Person], FormClient], server: LiveServer
) -> None:
    person = world.partner_worker()
    partner = clients(person)
    assert partner.get("/app/").status_code == 200
    with world.hub.fhir.db.transaction() as conn:
        assert accounts.remove_user(conn, person.email)
    assert partner.get("/app/").headers["location"] == "/app/login"
    again = FormClient(server.base_url)
    assert again.sign_in(person.email, PASSWORD, person.code()).status_code == 400
    again.close()


@pytest.mark.parametrize("how", ["deleted", "deactivated"])
def test_people_of_an_organisation_the_directory_removed_are_signed_out(
    world: World, clients: Callable[[Person], FormClient], server: LiveServer, how: str
) -> None:
    task = world.refer()
    person = world.partner_worker()
    partner = clients(person)
    assert partner.get(f"/app/referrals/{task['id']}").status_code == 200
    org = world.hub.partner.org_ref
    if how == "deleted":
        assert world.hub.admin.delete(f"/fhir/{org}").status_code in (200, 204)
    else:
        body = {**world.hub.admin.get(f"/fhir/{org}").json(), "active": False}
        assert world.hub.admin.put(f"/fhir/{org}", json=body).status_code == 200
    gone = partner.get(f"/app/referrals/{task['id']}")
    assert gone.status_code == 303
    assert "Ada Okafor" not in gone.text
    again = FormClient(server.base_url)
    refused = again.sign_in(person.email, PASSWORD, person.code())
    assert refused.status_code == 400
    assert "wraparound_session" not in refused.headers.get("set-cookie", "")
    again.close()


def test_consent_withdrawn_at_the_clinic_hides_the_person_from_the_partners_pages(
    world: World, clients: Callable[[Person], FormClient]
) -> None:
    task = world.refer()
    partner = clients(world.partner_worker())
    assert "07700 900123" in partner.get(f"/app/referrals/{task['id']}").text
    request = world.hub.clinic.get(f"/fhir/{task['focus']['reference']}").json()
    consent_ref = next(
        i["reference"] for i in request["supportingInfo"] if i["reference"].startswith("Consent")
    )
    consent = world.hub.clinic.get(f"/fhir/{consent_ref}").json()
    assert (
        world.hub.clinic.put(f"/fhir/{consent_ref}", json={**consent, "status": "inactive"}).status_code
        == 200
    )
    page = partner.get(f"/app/referrals/{task['id']}")
    assert page.status_code == 200  # the Task stays the partner's record, cancelled
    for detail in ("Ada", "Okafor", "07700 900123", "Facing eviction", "voicemail", "Do you need help"):
        assert detail not in page.text, detail
        assert detail not in partner.get("/app/").text, detail
        assert detail not in partner.get("/app/rows").text, detail
    assert "Cancelled" in page.text


# -- markup, redirects -----------------------------------------------------------------------------------

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'"


def test_stored_markup_in_any_field_is_shown_as_text(
    world: World, clients: Callable[[Person], FormClient]
) -> None:
    service = world.hub.admin.get(f"/fhir/{world.housing}").json()
    world.hub.admin.put(f"/fhir/{world.housing}", json={**service, "name": f"Housing {XSS}"})
    task = world.refer(family=f"Okafor{XSS}", given=XSS, reason=XSS, instruction=XSS, urgency=XSS)
    partner = clients(world.partner_worker())
    partner.act(task["id"], "accept")
    partner.act(task["id"], "hold", reason=XSS)
    partner.act(task["id"], "resume")
    partner.act(task["id"], "complete", outcome=XSS)
    other = world.refer()
    partner.act(other["id"], "reject", reason=XSS)
    clinic = clients(world.clinic_worker())
    pages = {
        "inbox": partner.get("/app/").text,
        "rows": partner.get("/app/rows").text,
        "referral": partner.get(f"/app/referrals/{task['id']}").text,
        "rejected": partner.get(f"/app/referrals/{other['id']}").text,
        "tracker": clinic.get("/app/").text,
        "clinic referral": clinic.get(f"/app/referrals/{task['id']}").text,
        "clinic rejected": clinic.get(f"/app/referrals/{other['id']}").text,
    }
    for name, html in pages.items():
        assert "<script>alert" not in html, name
        assert "<img src=x" not in html, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, name  # shown, as text
    assert pages["referral"].count("&lt;script&gt;") >= 4  # name, reason, instruction, hold reason, outcome
    # Nothing in the templates or the code opts out of Jinja's autoescaping.
    from service.web.pages import TEMPLATES as ENV

    assert ENV.env.autoescape is True  # Starlette's default, for every template
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "autoescape false" not in text, template.name
    for module in (TEMPLATES.parent).glob("*.py"):
        assert "Markup(" not in module.read_text(), module.name


def test_no_page_redirects_off_the_site(world: World, server: LiveServer) -> None:
    person = world.partner_worker()
    web = FormClient(server.base_url)
    try:
        for path in (
            "/app//evil.example",
            "/app/login?next=https://evil.example",
            "/app/?next=//evil.example",
        ):
            location = web.get(path).headers.get("location", "/app/")
            assert location.startswith("/app"), path
            assert not location.startswith("//"), path
        page = web.get("/app/login?next=https://evil.example&return_to=https://evil.example")
        data = {"email": person.email, "password": PASSWORD, "code": person.code()}
        data["csrf_token"] = csrf_token(page.text)
        data["next"] = "https://evil.example"
        signed = web.post("/app/login?next=https://evil.example", data)
        assert signed.headers["location"] == "/app/"
        task = world.refer()
        done = web.get(f"/app/referrals/{task['id']}?done=https://evil.example")
        assert done.status_code == 200
        assert "evil.example" not in done.text
    finally:
        web.close()


# -- CSRF and sessions -----------------------------------------------------------------------------------


def test_a_form_token_works_only_in_its_own_session_and_only_from_this_site(
    world: World, clients: Callable[[Person], FormClient], server: LiveServer
) -> None:
    task = world.refer()
    victim = clients(world.partner_worker())
    attacker = clients(world.person("ann.partner", world.hub.partner.organization_id, "partner"))
    foreign = csrf_token(attacker.get(f"/app/referrals/{task['id']}").text)  # same organisation even
    login_page = FormClient(server.base_url)
    login_token = csrf_token(login_page.get("/app/login").text)
    login_page.close()
    own = csrf_token(victim.get(f"/app/referrals/{task['id']}").text)
    url = f"/app/referrals/{task['id']}/accept"
    for token in (foreign, login_token, own.upper(), own[:-1]):
        assert victim.post(url, {"csrf_token": token, "version": "1"}).status_code == 403
    for headers in (
        {"Origin": "null"},
        {"Origin": server.base_url.replace("127.0.0.1", "localhost")},
        {"Origin": server.base_url + ".evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        sent = victim.http.post(url, data={"csrf_token": own, "version": "1"}, headers=headers)
        assert sent.status_code == 403, headers
    # Sign-out is a POST with the token too: a cross-site page cannot sign the person out.
    assert victim.post("/app/logout", {"csrf_token": foreign}).status_code == 403
    assert victim.post("/app/logout", {"csrf_token": own}, origin="https://evil.example").status_code == 403
    assert victim.get("/app/").status_code == 200
    assert _task(world, task["id"])["status"] == "requested"


def test_sign_in_issues_a_new_session_and_ends_the_one_the_browser_held(
    world: World, server: LiveServer
) -> None:
    person = world.partner_worker()
    web = FormClient(server.base_url)
    try:
        web.http.cookies.set("wraparound_session", "planted-by-an-attacker", domain="127.0.0.1", path="/app")
        assert web.sign_in(person.email, PASSWORD, person.code()).status_code == 303
        first = web.http.cookies.get("wraparound_session")
        assert first
        assert first != "planted-by-an-attacker"
        copy = FormClient(server.base_url)
        copy.http.cookies.set("wraparound_session", first, domain="127.0.0.1", path="/app")
        assert copy.get("/app/").status_code == 200
        assert web.get("/app/login").status_code == 303  # signed in: the form sends them home
        # A login form opened earlier (another tab), posted while the browser still holds a session.
        tab = FormClient(server.base_url)
        token = csrf_token(tab.get("/app/login").text)
        web.http.cookies.set("wraparound_login", tab.http.cookies["wraparound_login"], path="/app/login")
        tab.close()
        code = _next_code(person)
        data = {"email": person.email, "password": PASSWORD, "code": code, "csrf_token": token}
        assert web.post("/app/login", data).status_code == 303
        assert web.http.cookies.get("wraparound_session") != first
        assert copy.get("/app/").status_code == 303  # the earlier session ended with the new sign-in
        copy.close()
    finally:
        web.close()


def _next_code(person: Person) -> str:
    """A code of a step not used yet (the current one may have been spent by an earlier sign-in)."""
    import time

    import pyotp

    return pyotp.TOTP(person.secret).at(int(time.time()) + 30)


def test_over_https_the_cookie_is_secure_and_host_prefixed(world: World, database: Any) -> None:
    person = world.partner_worker()
    with LiveServer.start(database, base_url="https://hub.example") as live:
        web = FormClient(live.base_url)
        try:
            # Behind a TLS proxy: httpx keeps Secure cookies from plain http, so they are sent by hand.
            page = web.get("/app/login")
            login = re.search(r"wraparound_login=([^;]+)", page.headers["set-cookie"])
            assert login is not None
            assert "Secure" in page.headers["set-cookie"]
            data = {"email": person.email, "password": PASSWORD, "code": person.code()}
            signed = web.http.post(
                "/app/login",
                data={**data, "csrf_token": csrf_token(page.text)},
                headers={"Origin": "https://hub.example", "Cookie": f"wraparound_login={login.group(1)}"},
            )
            assert signed.status_code == 303
            cookie = next(c for c in signed.headers.get_list("set-cookie") if "wraparound_session" in c)
            assert cookie.startswith("__Host-wraparound_session=")
            for flag in ("HttpOnly", "Secure", "Path=/", "SameSite=lax"):
                assert flag in cookie, flag
            assert "Max-Age" not in cookie
            assert "expires" not in cookie.lower()
            assert "Domain" not in cookie
        finally:
            web.close()


# -- sign-in: enumeration, races, replays ------------------------------------------------------------------


def test_an_unknown_address_costs_the_same_argon2_work_and_gets_the_same_answer(
    world: World, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.web import credentials

    person = world.partner_worker()
    verified: list[str] = []
    real = credentials._HASHER

    class Counting:
        def verify(self, hash_: str, password: str) -> bool:
            verified.append(hash_[:9])
            return real.verify(hash_, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(credentials, "_HASHER", Counting())
    answers = {}
    for email in (person.email, "no.account@example.org"):
        web = FormClient(server.base_url)
        verified.clear()
        answer = web.sign_in(email, "a wrong password", "123456")
        answers[email] = (answer.status_code, re.sub(r'value="[^"]*"', "", answer.text), len(verified))
        assert verified
        assert all(h.startswith("$argon2id") for h in verified)
        web.close()
    assert answers[person.email] == answers["no.account@example.org"]


def _race(count: int, attempt: Callable[[int], tuple[int, str]]) -> list[tuple[int, str]]:
    """``count`` sign-ins released at once from their own threads; their status codes and pages."""
    barrier = threading.Barrier(count)
    results: list[tuple[int, str]] = [(0, "")] * count

    def run(i: int) -> None:
        results[i] = attempt(i)

    def waiting(i: int) -> None:
        barrier.wait(timeout=60)
        run(i)

    threads = [threading.Thread(target=waiting, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _prepared_posts(
    server: LiveServer, count: int, data: dict[str, str]
) -> list[Callable[[], tuple[int, str]]]:
    posts: list[Callable[[], tuple[int, str]]] = []
    for _ in range(count):
        web = FormClient(server.base_url)
        token = csrf_token(web.get("/app/login").text)

        def post(web: FormClient = web, token: str = token) -> tuple[int, str]:
            try:
                answer = web.post("/app/login", {**data, "csrf_token": token})
                return answer.status_code, answer.text
            finally:
                web.close()

        posts.append(post)
    return posts


def test_concurrent_wrong_guesses_are_each_counted_and_never_fail_the_server(
    world: World, server: LiveServer
) -> None:
    posts = _prepared_posts(server, 8, {"email": "target@example.org", "password": "guess!", "code": "1"})
    answers = _race(8, lambda i: posts[i]())
    assert [status for status, _ in answers] == [400] * 8
    # One guess at a time per address: exactly LOCK_AFTER were checked, the rest met the lock.
    refused = [text for _, text in answers if signin.REFUSED in text]
    assert len(refused) == signin.LOCK_AFTER - 1
    with world.hub.fhir.db.transaction() as conn:
        row = conn.execute(select(FAILURES)).one()
    assert row.failures == signin.LOCK_AFTER
    assert row.locked_until is not None


@pytest.mark.parametrize("factor", ["totp", "recovery"])
def test_one_code_used_by_two_sign_ins_at_once_signs_in_only_one(
    world: World, server: LiveServer, factor: str
) -> None:
    person = world.partner_worker()
    code = person.code() if factor == "totp" else person.recovery_codes[3]
    posts = _prepared_posts(server, 4, {"email": person.email, "password": PASSWORD, "code": code})
    answers = _race(4, lambda i: posts[i]())
    assert sorted(status for status, _ in answers) == [303, 400, 400, 400]


def test_a_code_from_an_earlier_step_is_refused_once_a_later_one_was_used(world: World) -> None:
    import pyotp

    from service.delivery.secrets import box_for

    person = world.partner_worker()
    now = datetime.now(UTC)
    totp = pyotp.TOTP(person.secret)
    with world.hub.fhir.db.transaction() as conn:
        box = box_for(world.settings)
        later = signin.sign_in(conn, box, email=person.email, password=PASSWORD, code=totp.at(now), now=now)
        assert later.person is not None
        earlier = totp.at(now - timedelta(seconds=30))  # still inside the drift window
        again = signin.sign_in(conn, box, email=person.email, password=PASSWORD, code=earlier, now=now)
    assert again.person is None
    assert again.message == signin.REFUSED


# -- caching, audit, logs, error pages ---------------------------------------------------------------------


def test_every_page_and_answer_with_personal_data_says_no_store(
    world: World, clients: Callable[[Person], FormClient], server: LiveServer
) -> None:
    task = world.refer()
    partner = clients(world.partner_worker())
    anonymous = FormClient(server.base_url)
    answers = [
        partner.get("/app/"),
        partner.get("/app/rows"),
        partner.get(f"/app/referrals/{task['id']}"),
        partner.get("/app/referrals/no-such-task"),
        partner.act(task["id"], "complete", outcome="x"),  # refused: the page with the rule
        partner.act(task["id"], "accept"),  # the redirect
        partner.get("/app/no-such-page"),
        anonymous.get("/app/login"),
    ]
    anonymous.close()
    for answer in answers:
        assert answer.headers.get("cache-control") == "no-store", answer.request.url
    out = partner.post("/app/logout", {"csrf_token": csrf_token(partner.get("/app/").text)})
    assert out.headers["clear-site-data"] == '"cache"'
    assert "no-store" not in partner.get("/app/static/app.css").headers.get("cache-control", "")


def test_page_views_actions_and_sign_ins_are_audited_as_the_person_at_the_organisation(
    world: World, clients: Callable[[Person], FormClient], server: LiveServer
) -> None:
    task = world.refer()
    person = world.partner_worker()
    partner = clients(person)
    before = len(_by(_events(world), person.email))
    for path in ("/app/", "/app/rows", f"/app/referrals/{task['id']}"):
        partner.get(path)
        now = len(_by(_events(world), person.email))
        assert now > before, f"{path} was not audited"
        before = now
    partner.act(task["id"], "accept")
    other = clients(world.other_partner_worker())
    other.get(f"/app/referrals/{task['id']}")  # refused: audited as a failure, as the person
    bad = FormClient(server.base_url)
    bad.sign_in(person.email, "a wrong password", "000000")
    bad.sign_in("no.account@example.org", "a wrong password", "000000")
    bad.close()
    partner.post("/app/logout", {"csrf_token": csrf_token(partner.get("/app/").text)})
    events = _events(world)
    web = [e for e in events if e["agent"][0].get("altId") == "wraparound-web"]
    assert web
    assert all(e["agent"][0]["who"]["identifier"]["system"].endswith("/Id/user") for e in web)
    mine = _by(events, person.email)
    assert all(e["agent"][0]["who"]["reference"] == world.hub.partner.org_ref for e in mine)
    codes = [(e["subtype"][0]["code"], e["outcome"]) for e in mine]
    assert ("update", "0") in codes
    assert ("search", "0") in codes
    assert ("read", "0") in codes
    assert ("110122", "0") in codes
    assert ("110122", "4") in codes
    assert ("110123", "0") in codes
    theirs = [(e["subtype"][0]["code"], e["outcome"]) for e in _by(events, "oli.other@example.org")]
    assert ("read", "4") in theirs
    assert not any("no.account" in str(e) for e in events)  # an address with no account is kept nowhere


def test_nothing_personal_reaches_the_logs(
    world: World,
    clients: Callable[[Person], FormClient],
    server: LiveServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    task = world.refer()
    partner = clients(world.partner_worker())
    partner.get(f"/app/referrals/{task['id']}")
    partner.act(task["id"], "reject", reason="Moved away from Lambeth")
    stranger = FormClient(server.base_url)
    stranger.sign_in("pat.partner@example.org", "a wrong password", "000000")
    stranger.close()
    served = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    for secret in ("Ada", "Okafor", "07700", "9000000009", "Lambeth", "eviction", "pat.partner", PASSWORD):
        assert not any(secret in line for line in served), secret


def test_a_failure_shows_no_stack_trace_and_keeps_the_headers(
    world: World,
    clients: Callable[[Person], FormClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sqlalchemy.exc import OperationalError

    task = world.refer()
    partner = clients(world.partner_worker())

    def bug(ctx: Any, task_id: str) -> Any:
        raise RuntimeError("Ada Okafor, HIV positive, 07700 900123")

    def outage(ctx: Any, task_id: str) -> Any:
        raise OperationalError("SELECT secret FROM patient", {}, Exception("postgresql://u:pw@db"))

    for broken, status in ((bug, 500), (outage, 503)):
        monkeypatch.setattr(referral_page, "load", broken)
        page = partner.get(f"/app/referrals/{task['id']}")
        assert page.status_code == status
        assert "There is a problem" in page.text
        for leak in ("Traceback", "RuntimeError", "Ada Okafor", "SELECT", "postgresql://", ".py"):
            assert leak not in page.text, leak
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged
    assert "referral_routes.py" in logged
    assert "Ada Okafor" not in logged
    assert "pw@db" not in logged
