"""Signing in at /app/login over real HTTP: the second factor always, one message for every refusal,
lockout with backoff per email address (known or not), codes that work once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from service.delivery.secrets import box_for
from service.web import signin
from service.web.accounts import normalise_email
from tests.support.live import LiveServer
from tests.web._form_client import FormClient, csrf_token
from tests.web._web_world import PASSWORD, World


@pytest.fixture
def web(server: LiveServer) -> Iterator[FormClient]:
    client = FormClient(server.base_url)
    yield client
    client.close()


def _refused(response_text: str) -> bool:
    return signin.REFUSED in response_text


def test_password_and_code_sign_in_and_the_session_cookie_is_locked_down(
    world: World, web: FormClient
) -> None:
    person = world.partner_worker()
    response = web.sign_in(person.email, PASSWORD, person.code())
    assert response.status_code == 303
    assert response.headers["location"] == "/app/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("wraparound_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/app" in cookie
    home = web.get("/app/")
    assert home.status_code == 200
    assert person.email in home.text


@pytest.mark.parametrize("what", ["password", "code", "email"])
def test_a_wrong_password_code_or_email_signs_no_one_in_with_one_message(
    world: World, web: FormClient, what: str
) -> None:
    person = world.partner_worker()
    wrong_code = f"{(int(person.code()) + 1) % 1_000_000:06d}"
    email = "nobody@example.org" if what == "email" else person.email
    response = web.sign_in(
        email,
        "not the password" if what == "password" else PASSWORD,
        wrong_code if what == "code" else person.code(),
    )
    assert response.status_code == 400
    assert _refused(response.text)
    assert "wraparound_session=" not in " ".join(response.headers.get_list("set-cookie"))
    assert web.get("/app/").status_code == 303  # still sent to sign in


def test_a_code_signs_in_once_and_a_recovery_code_works_once(world: World, server: LiveServer) -> None:
    person = world.partner_worker()
    code = person.code()
    first, second = FormClient(server.base_url), FormClient(server.base_url)
    try:
        assert first.sign_in(person.email, PASSWORD, code).status_code == 303
        assert _refused(second.sign_in(person.email, PASSWORD, code).text)  # RFC 6238 5.2: no replay
        recovery = person.recovery_codes[0].upper().replace("-", " ")
        assert second.sign_in(person.email, PASSWORD, recovery).status_code == 303
        third = FormClient(server.base_url)
        assert _refused(third.sign_in(person.email, PASSWORD, person.recovery_codes[0]).text)
        third.close()
    finally:
        first.close()
        second.close()


def test_repeated_failures_lock_the_address_whether_or_not_it_has_an_account(
    world: World, web: FormClient
) -> None:
    person = world.partner_worker()
    for email in (person.email, "nobody@example.org"):
        messages = [web.sign_in(email, "wrong password!", "000000").text for _ in range(signin.LOCK_AFTER)]
        assert all(_refused(m) for m in messages[:-1])
        assert "Too many failed sign-ins" in messages[-1]
    # Locked: even the right password and code are refused, with the same words as for no account.
    locked = web.sign_in(person.email, PASSWORD, person.code())
    assert locked.status_code == 400
    assert "Too many failed sign-ins" in locked.text


def test_lockout_backs_off_and_a_success_clears_it(world: World) -> None:
    person = world.partner_worker()
    db = world.hub.fhir.db
    sealed = box_for(world.settings)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    waits = []
    with db.transaction() as conn:
        for attempt in range(signin.LOCK_AFTER + 2):
            outcome = signin.sign_in(conn, sealed, email=person.email, password="nope", code="1", now=now)
            assert outcome.person is None
            if attempt >= signin.LOCK_AFTER - 1:
                waits.append(outcome.message)
                now += timedelta(minutes=20)  # past any lock, so the next attempt is checked again
    assert waits == [
        "Too many failed sign-ins with this email address. Wait 30 seconds and try again.",
        "Too many failed sign-ins with this email address. Wait 60 seconds and try again.",
        "Too many failed sign-ins with this email address. Wait 2 minutes and try again.",
    ]
    code = pyotp.TOTP(person.secret).at(now)
    with db.transaction() as conn:
        assert signin.sign_in(conn, sealed, email=person.email, password=PASSWORD, code=code, now=now).person
        after = signin.sign_in(conn, sealed, email=person.email, password="nope", code="1", now=now)
    assert after.message == signin.REFUSED  # the count started again


def test_failure_counts_are_kept_under_a_keyed_digest_of_what_was_typed(world: World) -> None:
    # What is typed as an email may be a password typed into the wrong box: the lockout row keeps only
    # an HMAC under the hub's key, which a plain-hash dictionary cannot reverse.
    typed = "Correct-Horse-Battery-Staple"
    box = box_for(world.settings)
    with world.hub.fhir.db.transaction() as conn:
        signin.sign_in(conn, box, email=typed, password="x", code="1", now=datetime.now(UTC))
        keys = {row[0] for row in conn.exec_driver_sql("SELECT email_hash FROM web_signin_failure")}
    address = normalise_email(typed)
    assert box.digest("web-signin-failures", address) in keys
    assert hashlib.sha256(address.encode()).hexdigest() not in keys


def test_the_login_form_needs_its_token_and_a_same_site_origin(world: World, web: FormClient) -> None:
    person = world.partner_worker()
    page = web.get("/app/login")
    data = {"email": person.email, "password": PASSWORD, "code": person.code(), "csrf_token": "forged"}
    assert web.post("/app/login", data).status_code == 400
    data["csrf_token"] = csrf_token(page.text)
    cross_site = web.post("/app/login", data, origin="https://attacker.example")
    assert cross_site.status_code == 403
    assert web.get("/app/").status_code == 303
