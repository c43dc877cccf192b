"""Security headers on every web app response, and the cross-site POST refusal in front of the routes.

- ``Content-Security-Policy``: everything from this origin only; scripts only from files (no inline
  script, no ``eval``), so an injected ``<script>`` cannot run; ``frame-ancestors 'none'`` (and the older
  ``X-Frame-Options: DENY``) against click-jacking; forms post only here.
- ``X-Content-Type-Options: nosniff``; ``Referrer-Policy: same-origin`` (referral URLs never leave the
  site; with ``no-referrer`` browsers send ``Origin: null`` on form posts, which the Origin check refuses);
  ``Cache-Control: no-store`` on pages (special-category data stays out of shared and browser caches).
- A POST whose Origin is another site gets 403 before any route runs (``csrf.same_origin``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web import csrf

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, public_base: str) -> None:
        self.app = app
        self.public_base = public_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in HEADERS]
                headers.extend((k.encode(), v.encode()) for k, v in HEADERS.items())
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        if not csrf.same_origin(Request(scope), self.public_base):
            refusal = PlainTextResponse("Cross-site requests are refused.", status_code=403)
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
