"""Open-model HTTP/1.1 load at a fixed offered rate, on uvloop and raw sockets.

Arrivals follow a fixed schedule, request i at ``start + i / rate``, whatever the
server does. A request whose turn comes while every connection is busy waits in a
FIFO backlog, and its latency still counts from its scheduled time. A slow server
therefore shows up as latency instead of as fewer requests sent, which is the
coordinated omission that closed-loop generators such as wrk suffer from.

Requests are pre-built bytes (signed before the run), one response is awaited per
connection at a time (keep-alive, no pipelining), and every event id of a 202 is
kept so the caller can look for it in the stream. It connects only to the host
and port it is given; callers pass loopback addresses.

Run ``python -m hookgate.loadtest.openload --port N --rate R`` to offer Standard
Webhooks requests signed with ``--secret`` (or a random one, for the baseline app
of :mod:`hookgate.loadtest.bare`, which checks nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import time
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import msgspec
import uvloop

from hookgate.loadtest._providers import Standard
from hookgate.loadtest._requests import new_secret

# The dispatcher sleeps at least TICK_S between rounds and then sends every
# request that has come due, each timed from its own scheduled moment, so the
# wait counts as latency. Spinning between sends instead kept its core busy. That
# core also runs redis-server, and the starved Redis slowed the gateway's flushes
# until requests queued for 150 ms at half the gateway's rate. uvloop's timers
# have millisecond resolution, and on a KVM guest a halted core takes a
# millisecond or more to wake, so each send may be a few ms late.
TICK_S = 0.001
# A send later than this after its scheduled time counts as a missed schedule.
LATE_AFTER_S = 0.001
# Time the run waits for outstanding responses after the last scheduled send.
DRAIN_TIMEOUT_S = 10.0
START_DELAY_S = 0.05


class _Accepted(msgspec.Struct):
    event_id: str | None = None
    event_ids: list[str] | None = None


_decode_accepted = msgspec.json.Decoder(_Accepted).decode


@dataclass
class OpenLoadResult:
    """Figures of one open-model run. Latencies are in microseconds."""

    offered_rate: float
    duration_s: float
    connections: int
    scheduled: int
    completed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_us: array[int] = field(default_factory=lambda: array("q"))
    accepted_ids: list[str] = field(default_factory=list)
    late_sends: int = 0
    """Requests the generator itself sent more than 1 ms after their schedule."""
    queued: int = 0
    """Requests that found every connection busy and waited for one."""
    unfinished: int = 0
    """Requests without a response when the drain timeout ran out."""
    connection_errors: int = 0
    max_generator_lag_ms: float = 0.0
    elapsed_s: float = 0.0
    """Time from the first scheduled send to the last response or the timeout."""

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def missed_schedule(self) -> int:
        return self.late_sends + self.queued

    @property
    def achieved_rate(self) -> float:
        """Responses per second, over the schedule and the wait for stragglers."""
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, percent: float) -> float:
        """Return the latency below which ``percent`` % of responses fell, in ms."""
        if not self.latencies_us:
            return math.nan
        ordered = sorted(self.latencies_us)
        rank = min(
            len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1)
        )
        return ordered[rank] / 1000

    def summary(self) -> dict[str, Any]:
        return {
            "offered_rate": self.offered_rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "duration_s": self.duration_s,
            "elapsed_s": round(self.elapsed_s, 3),
            "connections": self.connections,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "non_2xx": self.non_2xx,
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "p99_9_ms": self.percentile_ms(99.9),
            "max_ms": max(self.latencies_us, default=0) / 1000,
            "accepted_ids": len(self.accepted_ids),
            "late_sends": self.late_sends,
            "queued": self.queued,
            "missed_schedule": self.missed_schedule,
            "unfinished": self.unfinished,
            "connection_errors": self.connection_errors,
            "max_generator_lag_ms": round(self.max_generator_lag_ms, 3),
        }


class _ResponseError(ValueError):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, load: _OpenLoad) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.scheduled_at = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, scheduled_at: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.scheduled_at = scheduled_at
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            parsed = _parse_response(self.buffer)
        except _ResponseError:
            self.load.result.connection_errors += 1
            assert self.transport is not None
            self.transport.close()
            return
        if parsed is None:
            return
        status, body, used = parsed
        del self.buffer[:used]
        self.busy = False
        self.load.on_response(self, status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.on_lost(self)


def _parse_response(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """Return (status, body, bytes used) once a whole response is buffered."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    try:
        status = int(head[9:12])
    except ValueError:
        raise _ResponseError(f"invalid status line: {head[:40]!r}") from None
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        raise _ResponseError("response without content-length")
    stop = head.find(b"\r\n", start + 2)
    length = int(head[start + 17 : stop if stop >= 0 else len(head)])
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return status, bytes(buffer[end + 4 : total]), total


class _OpenLoad:
    def __init__(
        self, host: str, port: int, requests: Sequence[bytes], rate: float, count: int
    ) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.rate = rate
        self.count = count
        self.loop = asyncio.get_running_loop()
        self.idle: deque[_Connection] = deque()
        self.backlog: deque[tuple[int, float]] = deque()
        self.statuses: Counter[int] = Counter()
        self.outstanding = 0
        self.done = asyncio.Event()
        self.dispatching = True
        self.result = OpenLoadResult(rate, count / rate, 0, count)

    async def connect(self, connections: int) -> None:
        for _ in range(connections):
            _, protocol = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
            self.idle.append(protocol)
        self.result.connections = connections

    async def run(self) -> OpenLoadResult:
        interval = 1 / self.rate
        start = time.perf_counter() + START_DELAY_S
        index = 0
        while index < self.count:
            now = time.perf_counter()
            while index < self.count and start + index * interval <= now:
                self.submit(index, start + index * interval, now)
                index += 1
            if index < self.count:
                delay = start + index * interval - time.perf_counter()
                await asyncio.sleep(max(delay, TICK_S))
        self.dispatching = False
        if self.outstanding:
            try:
                await asyncio.wait_for(self.done.wait(), DRAIN_TIMEOUT_S)
            except TimeoutError:
                self.result.unfinished = self.outstanding
        self.result.elapsed_s = time.perf_counter() - start
        self.result.statuses = dict(self.statuses)
        return self.result

    def submit(self, index: int, scheduled_at: float, now: float) -> None:
        self.outstanding += 1
        lag = now - scheduled_at
        if lag > LATE_AFTER_S:
            self.result.late_sends += 1
        self.result.max_generator_lag_ms = max(
            self.result.max_generator_lag_ms, lag * 1000
        )
        if self.idle:
            self.idle.popleft().send(self.requests[index], scheduled_at)
        else:
            self.result.queued += 1
            self.backlog.append((index, scheduled_at))

    def on_response(self, connection: _Connection, status: int, body: bytes) -> None:
        now = time.perf_counter()
        self.result.latencies_us.append(int((now - connection.scheduled_at) * 1e6))
        self.statuses[status] += 1
        self.result.completed += 1
        if status == 202:
            accepted = _decode_accepted(body)
            if accepted.event_id is not None:
                self.result.accepted_ids.append(accepted.event_id)
            if accepted.event_ids is not None:
                self.result.accepted_ids.extend(accepted.event_ids)
        self._finish_one()
        self._next(connection)

    def on_lost(self, connection: _Connection) -> None:
        with_request = connection.busy
        if connection in self.idle:
            self.idle.remove(connection)
        if with_request:
            self.result.connection_errors += 1
            self._finish_one()
        # A replacement keeps the offered concurrency; its connect is not timed.
        if self.dispatching or self.backlog:
            self.loop.create_task(self._replace())

    async def _replace(self) -> None:
        try:
            _, protocol = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        except OSError:
            self.result.connection_errors += 1
            return
        self._next(protocol)

    def _next(self, connection: _Connection) -> None:
        if self.backlog:
            index, scheduled_at = self.backlog.popleft()
            connection.send(self.requests[index], scheduled_at)
        else:
            self.idle.append(connection)

    def _finish_one(self) -> None:
        self.outstanding -= 1
        if not self.dispatching and self.outstanding == 0:
            self.done.set()

    def close(self) -> None:
        for connection in list(self.idle):
            if connection.transport is not None:
                connection.transport.close()


async def offer(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    duration_s: float,
    connections: int,
) -> OpenLoadResult:
    """Send ``rate * duration_s`` of ``requests`` on schedule and wait for replies.

    ``requests`` needs at least that many items, each a whole HTTP/1.1 request;
    none is sent twice. Raises ``ValueError`` when there are too few, and
    ``OSError`` when a connection cannot be opened.
    """
    count = round(rate * duration_s)
    if len(requests) < count:
        raise ValueError(f"{len(requests)} requests given, {count} needed")
    load = _OpenLoad(host, port, requests, rate, count)
    await load.connect(connections)
    # A collection pause would show up as the server's latency, so none runs
    # during the schedule.
    gc.collect()
    gc.disable()
    try:
        return await load.run()
    finally:
        gc.enable()
        load.close()


def run_offer(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    duration_s: float,
    connections: int,
) -> OpenLoadResult:
    """Run :func:`offer` on a new uvloop event loop."""
    return uvloop.run(
        offer(
            host,
            port,
            requests,
            rate=rate,
            duration_s=duration_s,
            connections=connections,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hookgate.loadtest.openload",
        description="Offer signed Standard Webhooks requests at a fixed rate.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address")
    parser.add_argument("--port", type=int, required=True, help="server TCP port")
    parser.add_argument("--source", default="bench", help="source id in the URL")
    parser.add_argument(
        "--secret-env",
        default=None,
        metavar="NAME",
        help="environment variable with the source's whsec_ secret; without it the"
        " requests are signed with a random secret",
    )
    parser.add_argument(
        "--rate", type=float, required=True, help="offered requests per second"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="length of the schedule in s"
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="keep-alive connections"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="also write the summary, every latency in µs and every accepted event"
        " id to this JSON file",
    )
    args = parser.parse_args(argv)

    secret = os.environ[args.secret_env] if args.secret_env else new_secret()
    builder = Standard(args.source, secret)
    host_header = f"{args.host}:{args.port}"
    count = round(args.rate * args.duration)
    requests = [builder.build().raw(host_header) for _ in range(count)]
    result = run_offer(
        args.host,
        args.port,
        requests,
        rate=args.rate,
        duration_s=args.duration,
        connections=args.connections,
    )
    summary = result.summary()
    if args.output is not None:
        document = {
            "summary": summary,
            "latencies_us": result.latencies_us.tolist(),
            "accepted_ids": result.accepted_ids,
        }
        args.output.write_text(json.dumps(document))
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0 if result.non_2xx == 0 and result.unfinished == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
