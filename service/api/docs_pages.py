"""``/docs`` (Swagger UI) and ``/redoc``, served with no asset from another host.

NHS and charity networks often block CDNs, and FastAPI's default pages load Swagger UI, ReDoc
and the favicon from jsDelivr. The assets come from the ``fastapi-offline`` wheel (Swagger UI 5,
which renders OpenAPI 3.1, ReDoc 2 and a favicon): a maintained package, not a copy in this
repository. Only its static files are used; the app is built as usual.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = "/docs-assets"
_OAUTH_REDIRECT = "/docs/oauth2-redirect"


def install(app: FastAPI, openapi_url: str) -> None:
    static = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")
    favicon = f"{ASSETS}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
            oauth2_redirect_url=_OAUTH_REDIRECT,
            # No online validator badge (it would be fetched from validator.swagger.io).
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get(_OAUTH_REDIRECT, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
