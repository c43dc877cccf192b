"""One URL per FHIR path, with or without a trailing slash, answered directly.

FHIR clients build URLs by joining a base and a path; many produce ``/fhir/`` or
``/fhir/Patient/`` (``httpx.Client(base_url=".../fhir").post("")`` posts to ``/fhir/``).
Starlette's default answers those with a 307 redirect, which a client that does not
follow redirects (httpx's default) treats as a failure, and which a POST may not
survive. So the one trailing slash is removed before routing (the contract: "The base
and every path work with or without a trailing slash ... never by a redirect"), and
the app is built with ``redirect_slashes=False``.

Only the API prefixes are rewritten: other mounts (the web app, the docs) keep their
own slash rules.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIXES = ("/fhir/", "/auth/")


class StripTrailingSlash:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.endswith("/") and path.startswith(PREFIXES) and not path.endswith("//"):
                scope = dict(scope)
                scope["path"] = path[:-1]
                raw = scope.get("raw_path")
                if isinstance(raw, bytes) and raw.endswith(b"/"):
                    scope["raw_path"] = raw[:-1]
        await self.app(scope, receive, send)
