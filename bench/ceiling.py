"""The ceiling of the stack: a trivial FastAPI app under the same uvicorn settings as the hub.

``POST /echo`` parses the posted JSON and returns it; ``GET /blob/{name}`` serialises a stored
JSON document (as the hub serves reads from stored JSON). Nothing else happens, so its
throughput bounds what any FastAPI + uvicorn service can do on one process here.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

JSON = "application/fhir+json"


def create_ceiling_app() -> FastAPI:
    app = FastAPI(title="ceiling", openapi_url=None, docs_url=None, redoc_url=None)
    blobs: dict[str, Any] = {}

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        document = orjson.loads(await request.body())
        return Response(orjson.dumps(document), media_type=JSON)

    @app.put("/blob/{name}")
    async def store(name: str, request: Request) -> Response:
        blobs[name] = orjson.loads(await request.body())
        return Response(status_code=204)

    @app.get("/blob/{name}")
    async def fetch(name: str) -> Response:
        return Response(orjson.dumps(blobs[name]), media_type=JSON)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Ceiling server for the benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same call `wraparound serve` makes (service/cli.py), with the same log level.
    uvicorn.run(create_ceiling_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
