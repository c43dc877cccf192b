"""``/app/login`` (one form: email, password, one-time code) and ``/app/logout``.

A wrong password, an unknown email and a wrong code all get one message (``signin.REFUSED``). The
login form is protected against CSRF too (a pre-session cookie keys its token), so nobody can sign a
victim in to an account of theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.delivery.secrets import SecretBox
from service.settings import Settings
from service.storage.database import Database
from service.web import csrf, sessions, signin, signin_audit
from service.web.current import (
    CsrfRefused,
    SignInRequired,
    current_session,
    is_secure,
    session_token,
    source_of,
)
from service.web.pages import render

router = APIRouter()
_LOGIN_PATH = "/app/login"


def _login_page(request: Request, *, error: str = "", email: str = "", status: int = 200) -> Response:
    settings: Settings = request.app.state.settings
    key = request.cookies.get(csrf.LOGIN_COOKIE) or csrf.new_login_key()
    response = render(
        request,
        "login.html",
        {"csrf_token": csrf.token_for(key, "login"), "error": error, "email": email},
        status=status,
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        key,
        path=_LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=is_secure(request, settings),
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    try:
        current_session(request, activity=False)
    except SignInRequired:
        return _login_page(request)
    return RedirectResponse("/app/", status_code=303)


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.database
    box: SecretBox = request.app.state.secret_box
    if not csrf.token_matches(request.cookies.get(csrf.LOGIN_COOKIE), csrf_token, "login"):
        return _login_page(
            request, error="The sign-in form had expired. Please try again.", email=email, status=400
        )
    if not email.strip() or not password or not code.strip():
        return _login_page(
            request, error="Enter your email address, password and one-time code.", email=email, status=400
        )
    now = datetime.now(UTC)
    with db.transaction(write=True) as conn:
        outcome = signin.sign_in(conn, box, email=email, password=password, code=code, now=now)
        token = None
        if outcome.person is not None:
            # Whatever session this browser held before ends: one person, one live session per browser.
            sessions.end(conn, session_token(request))
            token = sessions.start(conn, outcome.person, settings, now)
        if outcome.account is not None:
            signin_audit.write(
                conn,
                "login",
                outcome.account,
                succeeded=token is not None,
                source=source_of(request),
                now=now,
            )
    if token is None:
        return _login_page(request, error=outcome.message, email=email, status=400)
    secure = is_secure(request, settings)
    response = RedirectResponse("/app/", status_code=303)
    response.set_cookie(
        sessions.cookie_name(secure),
        token,
        path=sessions.cookie_path(secure),
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path=_LOGIN_PATH)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=128)] = "") -> Response:
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.database
    token = session_token(request)
    if token and not csrf.token_matches(token, csrf_token):
        raise CsrfRefused()
    now = datetime.now(UTC)
    with db.transaction(write=True) as conn:
        ending = sessions.resume(conn, token, settings, now, activity=False)
        sessions.end(conn, token)
        if ending is not None:
            signin_audit.write(
                conn, "logout", ending.person, succeeded=True, source=source_of(request), now=now
            )
    secure = is_secure(request, settings)
    response = RedirectResponse("/app/login", status_code=303)
    response.delete_cookie(sessions.cookie_name(secure), path=sessions.cookie_path(secure))
    # The browser drops what it kept of the pages (no-store already keeps them out of its cache).
    response.headers["Clear-Site-Data"] = '"cache"'
    return response
