"""What a person sees when the web app fails, and what the log keeps of it.

- A bug: a plain "There is a problem" page (500), never a stack trace or the error's message. Caught
  inside ``SecurityHeaders``, so the page carries the CSP and ``no-store`` like every other page (the
  framework's own last-resort handler sits outside every middleware and sends bare text without them).
- The database unavailable (PostgreSQL restarting, the network to it cut): 503 with ``Retry-After``, as
  the API answers (``api.errors``), not a 500.
- The log gets the error's type and where it was raised (file, line, function), never its message or
  the values in play: a message can carry a patient's name or an answer (special-category data).
"""

from __future__ import annotations

import logging
import traceback

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web.pages import render

log = logging.getLogger("wraparound.web")
UNAVAILABLE = "The service is busy or its database is unavailable. Try again shortly."
BROKEN = "Something went wrong on our side. Nothing you did caused it; try again, or go back."


def where(exc: BaseException) -> str:
    """The frames an error passed through, as ``file:line in function`` (no message, no values)."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames))


class CatchAll:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise  # half a page went out already: nothing better can be sent
            outage = isinstance(exc, OperationalError | InterfaceError)
            status = 503 if outage else 500
            log.error("web app %s: %s at %s", status, type(exc).__name__, where(exc))
            response = render(
                Request(scope),
                "problem.html",
                {"status": status, "message": UNAVAILABLE if outage else BROKEN},
                status=status,
            )
            if outage:
                response.headers["Retry-After"] = "5"
            await response(scope, receive, send)
