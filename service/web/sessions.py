"""Server-side sessions for people: a random token in an HttpOnly cookie, its SHA-256 in ``web_session``.

- The cookie: ``HttpOnly``, ``SameSite=Lax``, ``Path=/app``, ``Secure`` (and the ``__Host-`` name prefix,
  which then needs ``Path=/``) when the hub is reached over https. No ``Max-Age``: closing the browser
  forgets it; the server enforces both timeouts whatever the browser keeps.
- Timeouts: idle (``WRAPAROUND_WEB_SESSION_IDLE_MINUTES``, 30) and absolute
  (``WRAPAROUND_WEB_SESSION_MAX_HOURS``, 12) — OWASP Session Management Cheat Sheet. Background polling
  (the inbox's refresh) does not count as activity, or an open tab would never time out.
- Sign-out deletes the row, so the cookie is worthless even if it was copied; so do removing the account
  and the directory deleting or deactivating the person's Organization (checked on every request).
- The CSRF token is an HMAC keyed by the session token (``csrf``): only the browser holding the cookie
  can know it, and nothing needs storing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from service.settings import Settings
from service.storage import accounts as storage
from service.web.accounts import organization_live
from service.web.signin import Person

COOKIE = "wraparound_session"
SECURE_COOKIE = "__Host-wraparound_session"
# How stale last_seen_at may get before a request writes it again: idle timeouts are exact to a minute,
# and most requests stay reads.
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Session:
    token: str
    person: Person
    created_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.web_session_idle_minutes)


def start(conn: Connection, person: Person, settings: Settings, now: datetime) -> str:
    """A new session (a fresh token at every sign-in: no session fixation); returns the cookie value."""
    storage.purge_sessions(conn, idle_before=now - _idle(settings), now=now)
    token = secrets.token_urlsafe(32)
    storage.insert_session(
        conn,
        {
            "token_hash": _hash(token),
            "user_id": person.user_id,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + timedelta(hours=settings.web_session_max_hours),
        },
    )
    return token


def resume(
    conn: Connection, token: str | None, settings: Settings, now: datetime, *, activity: bool = True
) -> Session | None:
    """The live session for this cookie value, or None (ended, timed out, or the account removed)."""
    if not token or len(token) > 100:
        return None
    row = storage.session_with_user(conn, _hash(token))
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at <= now - _idle(settings):
        storage.delete_session(conn, row.token_hash)
        return None
    if not organization_live(conn, row.organization_id):
        # The directory removed or deactivated the person's organisation: they act for it no longer.
        storage.end_sessions_of(conn, row.user_id)
        return None
    if activity and now - row.last_seen_at >= _TOUCH_EVERY:
        storage.touch_session(conn, row.token_hash, now)
    person = Person(row.user_id, row.email, row.organization_id, row.role)
    return Session(token=token, person=person, created_at=row.created_at)


def end(conn: Connection, token: str | None) -> None:
    if token:
        storage.delete_session(conn, _hash(token))


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def cookie_path(secure: bool) -> str:
    return "/" if secure else "/app"  # the __Host- prefix requires Path=/ (RFC 6265bis 4.1.3.2)
