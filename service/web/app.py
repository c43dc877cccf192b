"""The web app for people, mounted under ``/app`` (its own ASGI app: its own middleware, error pages and
no OpenAPI document, so the FHIR API's description and handlers are untouched)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from service.delivery.secrets import SecretBox
from service.errors import FhirError
from service.settings import Settings
from service.storage.database import Database
from service.web import auth_routes, referral_routes
from service.web.current import CsrfRefused, SignInRequired
from service.web.failures import UNAVAILABLE, CatchAll
from service.web.headers import SecurityHeaders
from service.web.pages import render

STATIC = Path(__file__).parent / "static"


def create_web_app(settings: Settings, database: Database, box: SecretBox) -> FastAPI:
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    web.state.settings = settings
    web.state.database = database
    web.state.secret_box = box
    # Inside the security headers (added first, so it runs second): error pages carry them too.
    web.add_middleware(CatchAll)
    web.add_middleware(SecurityHeaders, public_base=settings.public_base())
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    web.include_router(auth_routes.router)
    web.include_router(referral_routes.router)

    @web.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        if request.url.path.endswith("/rows"):
            return Response(status_code=401)  # the background refresh stops; the page says why
        return RedirectResponse("/app/login", status_code=303)

    @web.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return _problem(
            request, 403, "This form had expired or did not come from this site. Go back and try again."
        )

    @web.exception_handler(FhirError)
    async def domain_error(request: Request, exc: FhirError) -> Response:
        if exc.status == 404:
            return _problem(
                request, 404, "There is no such referral, or it is not shared with your organisation."
            )
        if exc.status == 503:
            return _problem(request, 503, UNAVAILABLE)
        return _problem(request, exc.status, exc.diagnostics)

    @web.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return _problem(request, 404, "There is no page at this address.")
        return _problem(request, exc.status_code, str(exc.detail))

    @web.exception_handler(RequestValidationError)
    async def bad_form(request: Request, exc: RequestValidationError) -> Response:
        return _problem(request, 400, "The form could not be read. Go back and try again.")

    return web


def _problem(request: Request, status: int, message: str) -> Response:
    return render(request, "problem.html", {"status": status, "message": message}, status=status)


def install(app: FastAPI, settings: Settings, database: Database, box: SecretBox) -> None:
    """Mount the web app at /app (and send /app to /app/: the API never redirects, but people type it)."""

    async def to_app(request: Request) -> Response:
        return RedirectResponse("/app/", status_code=308)

    app.add_api_route("/app", to_app, methods=["GET"], include_in_schema=False)
    app.mount("/app", create_web_app(settings, database, box))
