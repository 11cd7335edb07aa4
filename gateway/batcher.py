"""Group commit: many requests, one Redis round trip.

Each request packs its entries, hands them to :meth:`Batcher.submit` and awaits
the returned future. A flush sends everything waiting in one write, one
``EVALSHA`` of the ingest script per tenant, and waits for the replies. While it is
in flight, the next batch fills, and at most one more flush may follow it (see
:meth:`Batcher._may_flush`). A future resolves only after Redis confirmed its
entries, so a 202 always means the entries are in the stream.

The flush is pipelined, not transactional (no MULTI): one tenant's failure does not
fail another tenant's entries.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, NamedTuple

import hiredis
import structlog
from opentelemetry.trace import SpanContext, Status, StatusCode

from hookgate import metrics, tracing
from hookgate.entry import IngestWriter
from hookgate.gateway.resp import RedisUnavailable, RespConnection
from hookgate.logs import RateLimiter

log = structlog.get_logger("hookgate.gateway.batcher")


# Flushes in flight at once, and the entries that must wait before a flush may
# follow one already in flight; see Batcher._may_flush. At 16, a bench run at
# 21k requests a second averaged 16.1 entries per round trip, at the edge of the
# budget's 1 in 16. At 32, the average rose to about 18 at the same throughput.
PIPELINE_DEPTH = 2
PIPELINED_BATCH = 32


class Waiting(NamedTuple):
    """One request's entries, packed, with the future that gets their replies."""

    writer: IngestWriter
    seen_keys: bytes
    entries: bytes
    entry_count: int
    future: asyncio.Future[list[Any]]
    # The span context of the request when tracing is on; the flush span links it.
    link: SpanContext | None


class Saturated(RuntimeError):
    """Raised by :meth:`Batcher.submit` when ``max_pending`` entries already wait."""


class WriteFailed(RuntimeError):
    """Set on a future whose entries Redis rejected or never confirmed."""


class BatcherStats:
    """Counts of flushes sent and the entries they carried, read by tests.

    ``/metrics`` exposes the flush sizes and durations as histograms.
    """

    __slots__ = ("entries", "flushes")

    def __init__(self) -> None:
        self.flushes = 0
        self.entries = 0


class Batcher:
    """Collects packed entries and flushes them over one :class:`RespConnection`.

    ``max_pending`` bounds the entries waiting for a flush, ``max_batch`` the entries
    in one flush (a request's entries are never split, so one flush may exceed it by
    the entries of its last request), and ``flush_timeout`` (seconds) how long a
    flush may wait for Redis before every entry in it fails.
    """

    def __init__(
        self,
        connection: RespConnection,
        *,
        max_pending: int,
        max_batch: int,
        flush_timeout: float,
    ) -> None:
        self._connection = connection
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._flush_timeout = flush_timeout
        self._waiting: collections.deque[Waiting] = collections.deque()
        self._waiting_entries = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = BatcherStats()
        self._failures_logged = RateLimiter(per_second=1.0)

    @property
    def waiting(self) -> int:
        """Entries submitted and not yet handed to a flush."""
        return self._waiting_entries

    @property
    def in_flight(self) -> int:
        """Return the number of flushes sent whose replies have not all arrived."""
        return len(self._in_flight)

    @property
    def saturated(self) -> bool:
        return self._waiting_entries >= self._max_pending

    def start(self) -> None:
        # Kept for submit(): asyncio.get_running_loop() makes a getpid() system
        # call on every use in Python 3.11, which a profile showed on the hot path.
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run())

    def submit(
        self,
        writer: IngestWriter,
        seen_keys: bytes,
        entries: bytes,
        count: int,
        link: SpanContext | None = None,
    ) -> asyncio.Future[list[Any]]:
        """Queue ``count`` packed entries of one request, all or none of them.

        ``seen_keys`` and ``entries`` are the entries' keys and values for
        :data:`hookgate.entry.INGEST_SCRIPT`, packed with :func:`hookgate.entry.bulk`
        and :func:`hookgate.entry.pack_entry`. The future gets the script's two
        reply values per entry, in order. ``link`` is the span context of the
        request, for the flush span's links.

        All or nothing, so a request rejected with 503 has written nothing: raises
        :class:`Saturated` when the entries do not fit in the queue. The future
        fails with :class:`WriteFailed` if Redis rejects the script call, or with
        :class:`RedisUnavailable` if Redis cannot be reached in time.
        """
        if self._closing:
            raise Saturated("gateway is shutting down")
        if self._waiting_entries + count > self._max_pending:
            raise Saturated(f"{self._max_pending} entries already waiting for Redis")
        loop = self._loop
        if loop is None:
            loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append(Waiting(writer, seen_keys, entries, count, future, link))
        self._waiting_entries += count
        self._wakeup.set()
        return future

    def _take_batch(self) -> tuple[list[Waiting], int]:
        waiting = self._waiting
        batch = [waiting.popleft()]
        entries = batch[0].entry_count
        while waiting and entries + waiting[0].entry_count <= self._max_batch:
            item = waiting.popleft()
            batch.append(item)
            entries += item.entry_count
        self._waiting_entries -= entries
        return batch, entries

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        in_flight = self._in_flight
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting and self._may_flush():
                batch, entries = self._take_batch()
                task = loop.create_task(self._timed_flush(batch, entries))
                in_flight.add(task)
                task.add_done_callback(self._flush_done)
            if self._closing and not self._waiting and not in_flight:
                return

    def _may_flush(self) -> bool:
        # The first flush leaves at once, however small, so a lone request waits
        # for one round trip only. Once enough entries wait, a second flush may
        # leave before the first one's replies arrive. The worker then handles one
        # batch's replies while Redis runs the next, instead of the two taking turns.
        in_flight = len(self._in_flight)
        if in_flight == 0:
            return True
        if in_flight >= PIPELINE_DEPTH:
            return False
        return self._waiting_entries >= PIPELINED_BATCH or self._closing

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()

    async def _timed_flush(self, batch: list[Waiting], entries: int) -> None:
        started = time.perf_counter()
        try:
            # Only sampled requests carry a link. Most flushes at the default 0.1 %
            # sampler have none and so no span, and skip its bookkeeping.
            if tracing.ENABLED and any(item.link is not None for item in batch):
                await self._traced_flush(batch, entries)
            else:
                await self._flush(batch, entries)
        except asyncio.CancelledError:
            # Only close() cancels a flush, when it ran out of time.
            self._fail(batch, RedisUnavailable("gateway shut down"))
            raise
        metrics.flush_sizes.observe(entries)
        metrics.flush_seconds.observe(time.perf_counter() - started)

    async def _traced_flush(self, batch: list[Waiting], entries: int) -> None:
        links = [item.link for item in batch if item.link is not None]
        with tracing.flush_span(links) as span:
            await self._flush(batch, entries)
            if not span.is_recording():
                # No sampled request in this flush, so no span to mark.
                return
            failed = sum(item.entry_count for item in batch if _failed(item.future))
            if failed:
                span.set_attribute("hookgate.failed_entries", failed)
                span.set_status(Status(StatusCode.ERROR))

    async def _flush(self, batch: list[Waiting], entries: int) -> None:
        stats = self.stats
        stats.flushes += 1
        stats.entries += entries

        # One script call per tenant. Most flushes carry one tenant, whose batch
        # needs no grouping.
        writer = batch[0].writer
        if all(item.writer is writer for item in batch):
            groups = [(writer, batch, entries)]
        else:
            groups = _group(batch)
        payload = b"".join(
            [
                writer.pack(
                    [item.seen_keys for item in items],
                    [item.entries for item in items],
                    count,
                )
                for writer, items, count in groups
            ]
        )

        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._flush_timeout):
                protocol = await self._connection.get()
                replies = await protocol.send(payload, len(groups))
        except TimeoutError:
            # The entries may still reach the stream after this. The 503 makes the
            # provider retry, and the dedup script gives the retry the late entry's
            # event id, so the event is neither lost nor written twice.
            self._connection.drop()
            self._fail(batch, RedisUnavailable("timed out waiting for Redis"))
            self._log_failure(
                "timeout",
                "timeout",
                entries,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return
        except RedisUnavailable as exc:
            self._connection.drop()
            self._fail(batch, exc)
            self._log_failure("unavailable", str(exc), entries)
            return

        for (_, items, count), reply in zip(groups, replies, strict=True):
            if isinstance(reply, list) and len(reply) == 2 * count:
                _deliver(items, reply)
                continue
            error = WriteFailed(
                str(reply)
                if isinstance(reply, hiredis.ReplyError)
                else "unexpected reply to the ingest script"
            )
            self._fail(items, error)
            if str(reply).startswith("NOSCRIPT"):
                # Someone flushed the script cache; a new connection loads it again.
                log.warning("flush.script_missing", batch_size=count)
                self._connection.drop()
            else:
                self._log_failure("rejected", str(error), count)

    def _log_failure(
        self, kind: str, reason: str, batch_size: int, **fields: float
    ) -> None:
        # Rate-limited per kind, because during an outage every flush fails.
        suppressed = self._failures_logged.allow(kind)
        if suppressed is not None:
            log.warning(
                "flush.failed",
                reason=reason,
                batch_size=batch_size,
                suppressed=suppressed,
                **fields,
            )

    def _fail(self, batch: list[Waiting], exc: Exception) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    async def close(self, timeout: float) -> None:
        """Stop taking entries, flush what waits, and stop the flush task."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                for task in self._in_flight:
                    task.cancel()
        self._fail(list(self._waiting), RedisUnavailable("gateway shut down"))
        self._waiting.clear()
        self._waiting_entries = 0
        self._connection.drop()


def _failed(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is not None


def _group(batch: list[Waiting]) -> list[tuple[IngestWriter, list[Waiting], int]]:
    """Split a flush's requests by tenant, keeping their order within each."""
    groups: dict[IngestWriter, list[Waiting]] = {}
    for item in batch:
        groups.setdefault(item.writer, []).append(item)
    return [
        (writer, items, sum(item.entry_count for item in items))
        for writer, items in groups.items()
    ]


def _deliver(items: list[Waiting], reply: list[Any]) -> None:
    if len(items) == 1:
        if not items[0].future.done():
            items[0].future.set_result(reply)
        return
    offset = 0
    for item in items:
        end = offset + 2 * item.entry_count
        if not item.future.done():
            item.future.set_result(reply[offset:end])
        offset = end
