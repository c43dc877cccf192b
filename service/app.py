"""The FastAPI application: routers, error handlers, start-up (migrations, definitions)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from service.api import (
    bundle_routes,
    delivery_routes,
    docs_pages,
    errors,
    meta_routes,
    openapi_doc,
    operation_routes,
    resource_routes,
    search_routes,
    token_routes,
)
from service.api.formats import check_format
from service.api.hotpath import HotPath
from service.api.methods import MethodGuard
from service.api.slashes import StripTrailingSlash
from service.api.token_cache import TokenCache
from service.audit.writer import AuditWriter
from service.bootstrap import load_definitions
from service.delivery.secrets import box_for
from service.delivery.worker import Worker
from service.settings import Settings, get_settings
from service.storage.database import Database
from service.web import app as web_app
from service.wiring import wire

OPENAPI_URL = "/openapi.json"

DESCRIPTION = """
Wraparound is a FHIR R4 (4.0.1) hub through which London's HIV clinics send consent-based
referrals and a standardised wellbeing and needs assessment to voluntary-sector partners,
and see each referral's loop close.

**Authentication**: SMART Backend Services. Register a client (`wraparound clients add`),
sign a client assertion (RS384 or ES384), `POST /auth/token`, then press **Authorize** here
and paste the access token. `GET /fhir/metadata` and the SMART configuration need no token.

Errors are always `OperationOutcome` resources.
"""


def create_app(
    settings: Settings | None = None, database: Database | None = None, *, worker: bool = False
) -> FastAPI:
    """The app; ``worker`` runs an in-process delivery worker for the app's lifetime (``serve``)."""
    wire()
    settings = settings or get_settings()
    db = database or Database(settings.database_url)
    # Refuses to build without WRAPAROUND_SECRET_KEY outside development mode (SecretKeyMissing).
    box = box_for(settings)
    # One audit writer per process: read-only requests' AuditEvents are group-committed (ADR 0012).
    audit = AuditWriter(db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.upgrade()
        load_definitions(db)
        stop = asyncio.Event()
        running = asyncio.create_task(Worker(db, settings, box=box).run(stop)) if worker else None
        yield
        if running is not None:
            stop.set()
            await running
        # Uvicorn has finished the in-flight requests by now; commit whatever audit is queued.
        await asyncio.to_thread(audit.close, 30.0)
        if database is None:
            db.dispose()

    app = FastAPI(
        title="Wraparound FHIR hub",
        version=meta_routes.software_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        # WRAPAROUND_DOCS=0 turns /docs, /redoc and /openapi.json off; the pages are served
        # from packaged assets (api/docs_pages.py), so FastAPI's CDN-backed ones are off.
        openapi_url=OPENAPI_URL if settings.docs else None,
        docs_url=None,
        redoc_url=None,
        # Trailing slashes are removed before routing (api/slashes.py), never redirected.
        redirect_slashes=False,
        # FastAPI's native OpenTelemetry looks up the global providers on every request (4 % of a
        # read in py-spy) even when none is configured; the hub exports no telemetry (yet).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Read, create, update and search answered without FastAPI's routing and dependency solving
    # (api/hotpath.py, ADR 0014); innermost, so it sees the routed path and only allowed methods.
    app.add_middleware(HotPath)
    # 405 with Allow for a method a documented path does not serve (api/methods.py); inside the
    # slash stripping, so it sees the path as routed.
    app.add_middleware(MethodGuard, paths=lambda: openapi_doc.path_methods(app))
    app.add_middleware(StripTrailingSlash)
    app.state.settings = settings
    app.state.database = db
    app.state.token_cache = TokenCache()
    app.state.audit_writer = audit
    app.state.secret_box = box
    errors.install(app)
    fhir_deps = [Depends(check_format)]
    app.include_router(meta_routes.router, dependencies=fhir_deps)
    app.include_router(token_routes.router)
    app.include_router(bundle_routes.router, dependencies=fhir_deps)
    app.include_router(operation_routes.router, dependencies=fhir_deps)
    app.include_router(delivery_routes.router, dependencies=fhir_deps)
    # The generic /fhir/{resource_type} routes dispatch every type; the document describes each
    # type as its own paths instead (api/openapi_doc.py): routing and description are separate.
    app.include_router(search_routes.router, dependencies=fhir_deps, include_in_schema=False)
    app.include_router(resource_routes.router, dependencies=fhir_deps, include_in_schema=False)
    openapi_doc.install(app)
    # The web app for people (/app/): its own mounted app, outside the OpenAPI document.
    web_app.install(app, settings, db, box)
    if settings.docs:
        docs_pages.install(app, OPENAPI_URL)
    logging.getLogger("wraparound").setLevel(settings.log_level)
    return app
