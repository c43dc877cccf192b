"""The signed-in person behind a request (from the session cookie), and the CSRF check of a form post."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from service.settings import Settings
from service.storage.database import Database
from service.web import csrf, sessions
from service.web.sessions import Session


class SignInRequired(Exception):
    """No live session: the person is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A state-changing request without the right token."""


def is_secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_base().startswith("https://")


def session_token(request: Request) -> str | None:
    settings: Settings = request.app.state.settings
    return request.cookies.get(sessions.cookie_name(is_secure(request, settings)))


def current_session(request: Request, *, activity: bool = True) -> Session:
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.database
    with db.transaction(write=True) as conn:
        found = sessions.resume(conn, session_token(request), settings, datetime.now(UTC), activity=activity)
    if found is None:
        raise SignInRequired()
    return found


def require_person(request: Request) -> Session:
    """FastAPI dependency for pages that need a person signed in."""
    return current_session(request)


def check_form_token(session: Session, sent: str | None) -> None:
    if not csrf.token_matches(session.token, sent):
        raise CsrfRefused()


def source_of(request: Request) -> str:
    return request.client.host if request.client else ""
