"""Sessions and CSRF over real HTTP: sign-out ends the session server-side, both timeouts end it,
every state-changing request needs a same-site Origin and the page's token, and pages carry the
security headers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from service.storage.tables import WebSession
from service.web.headers import CSP
from tests.support.live import LiveServer
from tests.web._form_client import FormClient, csrf_token
from tests.web._web_world import PASSWORD, World

SESSIONS = WebSession.__table__  # type: ignore[attr-defined]


@pytest.fixture
def signed_in(world: World, server: LiveServer) -> Iterator[FormClient]:
    person = world.partner_worker()
    client = FormClient(server.base_url)
    assert client.sign_in(person.email, PASSWORD, person.code()).status_code == 303
    yield client
    client.close()


def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    signed_in: FormClient, server: LiveServer
) -> None:
    home = signed_in.get("/app/")
    copied = dict(signed_in.http.cookies)
    out = signed_in.post("/app/logout", {"csrf_token": csrf_token(home.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/app/login"
    thief = FormClient(server.base_url)
    for name, value in copied.items():
        thief.http.cookies.set(name, value)
    assert thief.get("/app/").status_code == 303  # the row is gone: the cookie is worthless
    thief.close()


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_idle_and_absolute_timeouts_end_the_session(signed_in: FormClient, world: World, column: str) -> None:
    assert signed_in.get("/app/").status_code == 200
    past = datetime.now(UTC) - timedelta(minutes=world.settings.web_session_idle_minutes + 1)
    if column == "expires_at":
        past = datetime.now(UTC) - timedelta(seconds=1)
    with world.hub.fhir.db.transaction() as conn:
        conn.execute(update(SESSIONS).values({column: past}))
    assert signed_in.get("/app/").status_code == 303


def test_a_cross_site_post_is_refused_before_anything_happens(signed_in: FormClient, world: World) -> None:
    task = world.refer()
    page = signed_in.get(f"/app/referrals/{task['id']}")
    data = {"csrf_token": csrf_token(page.text), "version": "1"}
    refused = signed_in.post(f"/app/referrals/{task['id']}/accept", data, origin="https://evil.example")
    assert refused.status_code == 403
    no_origin_cross = signed_in.http.post(
        f"/app/referrals/{task['id']}/accept", data=data, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert no_origin_cross.status_code == 403
    assert "New" in signed_in.get(f"/app/referrals/{task['id']}").text


def test_a_post_without_the_page_token_is_refused(signed_in: FormClient, world: World) -> None:
    task = world.refer()
    for token in ("", "0" * 64):
        response = signed_in.post(
            f"/app/referrals/{task['id']}/accept", {"csrf_token": token, "version": "1"}
        )
        assert response.status_code == 403
    assert world.hub.partner.get(f"/fhir/Task/{task['id']}").json()["status"] == "requested"


def test_pages_carry_the_security_headers(signed_in: FormClient) -> None:
    for path in ("/app/", "/app/login", "/app/static/app.css"):
        response = signed_in.get(path)
        assert response.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP
        assert "unsafe-inline" not in CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert signed_in.get("/app/").headers["cache-control"] == "no-store"


def test_app_without_a_slash_and_unknown_pages(server: LiveServer) -> None:
    client = FormClient(server.base_url)
    assert client.get("/app").headers["location"] == "/app/"
    assert client.get("/app/").headers["location"] == "/app/login"
    assert client.get("/app/no-such-page").status_code == 404
    client.close()
