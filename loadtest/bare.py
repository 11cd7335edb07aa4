"""The load test's baseline: an RSGI app that reads the body and responds 202.

It does no routing, verification or Redis work, so its throughput is what Granian
alone costs per request. :func:`serve` starts Granian as ``hookgate serve`` does,
so that the only difference between the two servers is hookgate's own work. Run
it with ``python -m hookgate.loadtest.bare --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from hookgate.gateway.server import ListenError, run_granian
from hookgate.gateway.threads import BatchThreads
from hookgate.logs import configure_logging

JSON = [("content-type", "application/json")]

# The same length as hookgate's response body for one accepted event, so both
# servers send the same number of bytes back.
ACCEPTED = b'{"event_id":"evt_00000000000000000000000000000000"}'

BATCH_IO_THREADS_ENV = "HOOKGATE_BARE_BATCH_IO_THREADS"


class Bare:
    """Responds to every HTTP request with 202 after reading its whole body."""

    def __init__(self, *, batch_io_threads: bool = False) -> None:
        # The gateway's batch_io_threads setting, so that a comparison measures
        # the apps and not a difference in scheduling.
        self.batch_threads = BatchThreads() if batch_io_threads else None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._start())

    async def _start(self) -> None:
        if self.batch_threads is not None:
            self.batch_threads.start()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.batch_threads is not None:
            self.batch_threads.stop()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        await protocol()
        protocol.response_bytes(202, JSON, ACCEPTED)


def create_app() -> Bare:
    """Build a worker's application. Granian calls this in each worker process."""
    configure_logging()
    return Bare(batch_io_threads=os.environ.get(BATCH_IO_THREADS_ENV) == "1")


def serve(
    *, host: str, port: int, workers: int, batch_io_threads: bool = False
) -> None:
    """Run Granian with the baseline app until it is stopped.

    Granian gets the options of ``hookgate serve``, so the comparison measures
    the apps and not a difference in options.
    """
    configure_logging()
    # The workers read it in create_app, as the gateway's read their config.
    os.environ[BATCH_IO_THREADS_ENV] = "1" if batch_io_threads else "0"
    run_granian(
        "hookgate.loadtest.bare:create_app", host=host, port=port, workers=workers
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hookgate.loadtest.bare",
        description="Serve the baseline app that responds to every request with 202.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    parser.add_argument(
        "--workers", type=int, default=1, help="Granian worker processes"
    )
    parser.add_argument(
        "--batch-io-threads",
        action="store_true",
        help="run the worker's threads as the gateway's batch_io_threads setting does",
    )
    args = parser.parse_args()
    try:
        serve(
            host=args.host,
            port=args.port,
            workers=args.workers,
            batch_io_threads=args.batch_io_threads,
        )
    except ListenError as exc:
        parser.exit(1, f"error: {exc}\n")


if __name__ == "__main__":
    main()
