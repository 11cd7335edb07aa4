"""A bench baseline: hookgate's gateway with every Redis write confirmed in memory.

The bench runs it between bare Granian and ``hookgate serve`` to split what
hookgate costs per request in two parts. This app verifies, decodes, routes and
packs every request exactly as ``hookgate serve`` does, with the same Granian
options. Its batcher then confirms each request's entries at once, as if Redis had
written them, so the request does not wait for Redis. Its rate over bare's is what
hookgate's own request handling costs. ``hookgate serve``'s rate over this one's is
what the durable write adds: the flush, the Redis round trip and the wait for it.

It skips the dedup check, which happens in Redis, so a repeated delivery gets a
new event id. ``/readyz`` and ``/metrics`` still read ``REDIS_URL``, as in
``hookgate serve``. It responds with 202 to events it never stores, so it must
never receive real webhooks. Run it with ``python -m hookgate.loadtest.nowrite
--config FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from opentelemetry.trace import SpanContext

from hookgate import entry
from hookgate.config import ConfigError, load_config
from hookgate.entry import IngestWriter
from hookgate.gateway import app
from hookgate.gateway.batcher import Batcher
from hookgate.gateway.server import ListenError, run_granian
from hookgate.logs import configure_logging


class MemoryBatcher(Batcher):
    """Confirms each submitted entry as written at once, and stores nothing."""

    def submit(
        self,
        writer: IngestWriter,
        seen_keys: bytes,
        entries: bytes,
        count: int,
        link: SpanContext | None = None,
    ) -> asyncio.Future[list[Any]]:
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        # The ingest script's reply for entries it wrote: status, then an event id
        # that the gateway ignores for a written entry.
        future.set_result([entry.INGEST_WRITTEN, b""] * count)
        self.stats.entries += count
        return future


class MemoryGateway(app.Gateway):
    batcher_class = MemoryBatcher


def create_app() -> app.Gateway:
    """Build a worker's application; Granian calls this in each worker."""
    return app.create_app(MemoryGateway)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hookgate.loadtest.nowrite",
        description="Serve hookgate's gateway with Redis writes confirmed in memory,"
        " for the bench. Never send it real webhooks: it stores nothing.",
    )
    parser.add_argument("--config", required=True, help="hookgate TOML config")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    args = parser.parse_args()
    configure_logging()
    # A broken config stops start-up here, before Granian spawns its worker.
    try:
        load_config(args.config)
    except ConfigError as exc:
        parser.exit(1, f"error: {args.config}: {exc}\n")
    os.environ["HOOKGATE_CONFIG"] = os.path.abspath(args.config)
    target = "hookgate.loadtest.nowrite:create_app"
    try:
        run_granian(target, host=args.host, port=args.port, workers=1)
    except ListenError as exc:
        parser.exit(1, f"error: {exc}\n")


if __name__ == "__main__":
    main()
