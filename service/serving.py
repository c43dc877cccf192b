"""Running the app under uvicorn, the one way both `serve` and `demo` do it."""

from __future__ import annotations

from fastapi import FastAPI

from service.settings import Settings, get_settings


def settings_for(host: str | None, port: int | None) -> Settings:
    settings = get_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    return settings


def run_server(application: FastAPI, settings: Settings) -> None:
    import uvicorn

    # No uvicorn access log: request lines carry query strings (identifiers, NHS numbers).
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
