"""The load test's baseline: an RSGI app that reads the body and responds 202.

It does no routing, verification or Redis work, so its throughput is what Granian
alone costs per request. :func:`serve` starts Granian as ``hookgate serve`` does,
so that the only difference between the two servers is hookgate's own work. Run
it with ``python -m hookgate.loadtest.bare --port N``.
"""

from __future__ import annotations

import argparse
from typing import Any

from hookgate.gateway.server import run_granian
from hookgate.logs import configure_logging

JSON = [("content-type", "application/json")]

# The same length as hookgate's response body for one accepted event, so both
# servers send the same number of bytes back.
ACCEPTED = b'{"event_id":"evt_00000000000000000000000000000000"}'


class Bare:
    """Responds to every HTTP request with 202 after reading its whole body."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        await protocol()
        protocol.response_bytes(202, JSON, ACCEPTED)


def create_app() -> Bare:
    """Build a worker's application. Granian calls this in each worker process."""
    configure_logging()
    return Bare()


def serve(*, host: str, port: int, workers: int) -> None:
    """Run Granian with the baseline app until it is stopped.

    Granian gets the options of ``hookgate serve``, so the comparison measures
    the apps and not a difference in options.
    """
    configure_logging()
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
    args = parser.parse_args()
    serve(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
