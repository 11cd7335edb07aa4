"""A naive ingest peer for context: FastAPI on uvicorn, one ``XADD`` per request.

This is what a first version of a webhook receiver often looks like: one uvicorn
worker on uvloop (with httptools when it is installed), a FastAPI route that reads
the body, writes it to a stream with one redis-py asyncio ``XADD`` and responds
202 with a JSON body. It verifies nothing and batches nothing, so it does less per
request than hookgate, but pays one Redis round trip per request. The bench
compares hookgate's accepted rate with this peer's.

Run it with ``python -m hookgate.loadtest.fastapi_peer --port N --redis-url URL``.
"""

from __future__ import annotations

import argparse
import importlib.util
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

STREAM = "peer:ingest"


def create_app(redis_url: str) -> FastAPI:
    """Build the app; its Redis client is opened at start-up and closed at exit."""
    client = redis.Redis.from_url(redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await client.ping()
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/hooks/{source_id}", status_code=202)
    async def ingest(source_id: str, request: Request) -> JSONResponse:
        body = await request.body()
        event_id = f"evt_{uuid.uuid4().hex}"
        await client.xadd(
            STREAM, {"event_id": event_id, "source_id": source_id, "body": body}
        )
        return JSONResponse({"event_id": event_id}, status_code=202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hookgate.loadtest.fastapi_peer",
        description="Serve a FastAPI app that writes every request body with XADD.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    parser.add_argument(
        "--redis-url", required=True, help="Redis to write to, e.g. redis://host:port/0"
    )
    args = parser.parse_args(argv)

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(
        create_app(args.redis_url),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http=http,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
