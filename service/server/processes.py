"""``serve --workers N``: N API processes on one listening socket, and at most one delivery worker.

uvicorn's supervisor binds the socket, starts N processes with ``spawn`` (each imports the app
through ``api_app`` and reads its settings from the environment), and replaces any that dies.
The API processes run no delivery worker: the in-process worker runs once, in this supervising
process, on its own thread and event loop (``--no-worker`` turns it off; ``wraparound worker``
processes may run beside it, the outbox claims are safe for any number).

Migrations and the shipped definitions are applied here once, before any API process starts,
so N processes do not race to migrate an empty database. SQLite works too: WAL lets the
processes read concurrently, and writers queue on SQLite's one write lock (``BEGIN IMMEDIATE``,
30 s busy timeout); PostgreSQL is what several processes are for.
"""

from __future__ import annotations

import asyncio
import os
import threading

from fastapi import FastAPI
from uvicorn.supervisors.multiprocess import Multiprocess

from service.settings import Settings, get_settings


def api_app() -> FastAPI:
    """The app of one API process (uvicorn's factory): settings from the environment, no worker."""
    from service.app import create_app

    return create_app(get_settings(), worker=False)


class DeliveryThread:
    """The one delivery worker of a multi-process ``serve``, on a thread of the supervisor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from service.delivery.secrets import box_for
        from service.delivery.worker import Worker
        from service.storage.database import Database

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        db = Database(self._settings.database_url)
        try:
            await Worker(db, self._settings, box=box_for(self._settings)).run(self._stop)
        finally:
            db.dispose()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def prepare_database(settings: Settings) -> None:
    from service.bootstrap import load_definitions
    from service.storage.database import Database
    from service.wiring import wire

    wire()
    db = Database(settings.database_url)
    try:
        db.upgrade()
        load_definitions(db)
    finally:
        db.dispose()


def run_workers(settings: Settings, workers: int, *, delivery: bool) -> None:
    from service.serving import uvicorn_config

    # The API processes read their settings from the environment: pass on the command line's.
    os.environ["WRAPAROUND_HOST"] = settings.host
    os.environ["WRAPAROUND_PORT"] = str(settings.port)
    prepare_database(settings)
    config = uvicorn_config(f"{__name__}:api_app", settings, workers=workers)
    sockets = [config.bind_socket()]
    thread = DeliveryThread(settings) if delivery else None
    if thread is not None:
        thread.start()
    try:
        Multiprocess(config, sockets=sockets).run()
    finally:
        if thread is not None:
            thread.stop()
        for sock in sockets:
            sock.close()
