"""A real uvicorn server in a background thread, on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from service.delivery.secrets import generate_key
from service.serving import uvicorn_config
from service.settings import Settings
from service.storage.database import Database

# One Fernet key per test process: adapter secrets are encrypted at rest as in production.
TEST_SECRET_KEY = generate_key()


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    app: Any = None  # the served FastAPI app, for tests that look inside it

    @classmethod
    @contextmanager
    def start(cls, database: Database, *, worker: bool = False, **overrides: Any) -> Iterator[LiveServer]:
        from service.app import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        settings = Settings(
            database_url=database.url,
            base_url=base,
            allow_private_endpoints=True,
            rate_limit="100000/minute",
            token_rate_limit="100000/minute",
            secret_key=TEST_SECRET_KEY,
        ).model_copy(update=overrides)
        app = create_app(settings, database=database, worker=worker)
        # The production server configuration (serving.py): the bounded protocol, no access log.
        config = uvicorn_config(app, settings, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        try:
            yield cls(base, settings, app)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
