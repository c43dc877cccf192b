"""Running the app under uvicorn, the one way ``serve``, ``demo`` and the test server do it.

uvicorn runs with the hub's bounded HTTP protocol (service/server/protocol.py: header and body
deadlines, a connection cap) and without its access log: request lines carry query strings
(identifiers, NHS numbers).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, cast

import uvicorn
from fastapi import FastAPI

from service.server.protocol import BoundedHttpToolsProtocol, ReadBounds
from service.settings import Settings, get_settings


def settings_for(host: str | None, port: int | None) -> Settings:
    settings = get_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    return settings


def read_bounds(settings: Settings) -> ReadBounds:
    return ReadBounds(
        header_seconds=settings.header_timeout_seconds,
        body_seconds=settings.body_timeout_seconds,
        body_min_rate=settings.body_min_bytes_per_second,
        body_max_seconds=settings.body_max_seconds,
        max_connections=settings.max_connections or None,
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    # uvicorn calls the protocol class with its own keyword arguments; the partial adds the
    # bounds, and pickles (by reference) for worker processes started with spawn.
    protocol = partial(BoundedHttpToolsProtocol, bounds=read_bounds(settings))
    return {
        "host": settings.host,
        "port": settings.port,
        "http": cast("type[asyncio.Protocol]", protocol),
        "lifespan": "on",
        "access_log": False,
        "log_level": settings.log_level.lower(),
    }


def uvicorn_config(app: FastAPI | str, settings: Settings, **options: Any) -> uvicorn.Config:
    """``app`` is the app itself, or (for several worker processes) the import path of a factory."""
    return uvicorn.Config(app, factory=isinstance(app, str), **{**uvicorn_options(settings), **options})


def run_server(application: FastAPI, settings: Settings) -> None:
    uvicorn.run(application, **uvicorn_options(settings))
