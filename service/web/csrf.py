"""Cross-site request forgery: every state-changing request needs a same-origin Origin and a token.

Two independent checks (OWASP CSRF Prevention Cheat Sheet):
1. *Origin*: a POST whose ``Origin`` (or, without one, ``Sec-Fetch-Site``) says another site is refused
   before anything else — browsers send ``Origin`` on every cross-origin POST.
2. *Token*: a hidden form field. Signed in, it is an HMAC of a fixed label keyed by the session token,
   which only the browser holding the HttpOnly cookie knows. Before sign-in (the login form itself, so
   nobody can sign a victim in to an attacker's account), it is the same HMAC keyed by a random
   pre-session cookie. Starlette-level CSRF middlewares (starlette-csrf) read the token from a header,
   which plain HTML forms cannot send without JavaScript; the app must work without it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

FIELD = "csrf_token"
LOGIN_COOKIE = "wraparound_login"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_for(key: str, purpose: str = "session") -> str:
    return hmac.new(key.encode(), f"wraparound-csrf:{purpose}".encode(), hashlib.sha256).hexdigest()


def new_login_key() -> str:
    return secrets.token_urlsafe(24)


def token_matches(key: str | None, sent: str | None, purpose: str = "session") -> bool:
    if not key or not sent:
        return False
    return hmac.compare_digest(token_for(key, purpose), sent)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_base: str) -> bool:
    """Whether a state-changing request comes from this site (the address it was sent to, or the
    configured public one behind a proxy)."""
    if request.method in _SAFE_METHODS:
        return True
    origin = request.headers.get("origin")
    if origin is not None:
        ours = {_origin_of(str(request.base_url)), _origin_of(public_base)}
        return origin.lower() in ours
    fetch_site = request.headers.get("sec-fetch-site")
    # No Origin: an older browser or a non-browser client; Sec-Fetch-Site, when present, still tells.
    return fetch_site in (None, "same-origin", "none")
