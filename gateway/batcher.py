"""Group commit: many requests, one Redis round trip.

Each request packs its ``XADD`` commands, hands them to :meth:`Batcher.submit` and
awaits the returned future. One flush at a time sends every waiting command in one
write and waits for all their replies; while it is in flight, the next batch fills.
A future resolves only after Redis confirmed its own entry, so a 202 always means
the entry is in the stream.

The flush is pipelined, not transactional (no MULTI): one entry's failure does not
fail its neighbours.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import hiredis
import structlog
from opentelemetry.trace import SpanContext, Status, StatusCode

from hookgate import metrics, tracing
from hookgate.gateway.resp import RedisUnavailable, RespConnection
from hookgate.logs import RateLimiter

log = structlog.get_logger("hookgate.gateway.batcher")


Waiting = tuple[bytes, "asyncio.Future[Any]", SpanContext | None]


class Saturated(RuntimeError):
    """Raised by :meth:`Batcher.submit` when ``max_pending`` entries already wait."""


class WriteFailed(RuntimeError):
    """Set on a future whose entry Redis rejected or never confirmed."""


class BatcherStats:
    """Counters read by health checks, tests and the load test harness."""

    __slots__ = ("entries", "failed_entries", "flushes", "max_batch_seen")

    def __init__(self) -> None:
        self.flushes = 0
        self.entries = 0
        self.failed_entries = 0
        self.max_batch_seen = 0


class Batcher:
    """Collects packed commands and flushes them over one :class:`RespConnection`.

    ``max_pending`` bounds the entries waiting for a flush, ``max_batch`` the entries
    in one flush, and ``flush_timeout`` (seconds) how long a flush may wait for
    Redis before every entry in it fails.
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
        # Each command waits with its future and, when tracing is on, the span
        # context of its request, which the flush span links to.
        self._waiting: collections.deque[Waiting] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = BatcherStats()
        self._failures_logged = RateLimiter(per_second=1.0)

    @property
    def waiting(self) -> int:
        """Entries submitted and not yet handed to a flush."""
        return len(self._waiting)

    @property
    def saturated(self) -> bool:
        return len(self._waiting) >= self._max_pending

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit_many(
        self, commands: list[bytes], link: SpanContext | None = None
    ) -> list[asyncio.Future[Any]]:
        """Queue all of ``commands`` or none of them; see :meth:`submit`.

        All or nothing, so a request rejected with 503 has written nothing.
        """
        if self._closing:
            raise Saturated("gateway is shutting down")
        if len(self._waiting) + len(commands) > self._max_pending:
            raise Saturated(f"{self._max_pending} entries already waiting for Redis")
        return [self.submit(command, link) for command in commands]

    def submit(
        self, command: bytes, link: SpanContext | None = None
    ) -> asyncio.Future[Any]:
        """Queue one packed command; the future gets its Redis reply.

        ``link`` is the span context of the request, for the flush span's links.

        Raises :class:`Saturated` when the queue is full. The future fails with
        :class:`WriteFailed` if Redis rejects the command, or with
        :class:`RedisUnavailable` if Redis cannot be reached in time.
        """
        if self._closing:
            raise Saturated("gateway is shutting down")
        if len(self._waiting) >= self._max_pending:
            raise Saturated(f"{self._max_pending} entries already waiting for Redis")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((command, future, link))
        self._wakeup.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                count = min(len(self._waiting), self._max_batch)
                batch = [self._waiting.popleft() for _ in range(count)]
                started = time.perf_counter()
                if tracing.ENABLED:
                    await self._traced_flush(batch)
                else:
                    await self._flush(batch)
                metrics.flush_sizes.observe(count)
                metrics.flush_seconds.observe(time.perf_counter() - started)
            if self._closing:
                return

    async def _traced_flush(self, batch: list[Waiting]) -> None:
        links = [link for _, _, link in batch if link is not None]
        with tracing.flush_span(links) as span:
            await self._flush(batch)
            failed = sum(1 for _, future, _ in batch if _failed(future))
            if failed:
                span.set_attribute("hookgate.failed_entries", failed)
                span.set_status(Status(StatusCode.ERROR))

    async def _flush(self, batch: list[Waiting]) -> None:
        stats = self.stats
        stats.flushes += 1
        stats.entries += len(batch)
        if len(batch) > stats.max_batch_seen:
            stats.max_batch_seen = len(batch)

        started = time.perf_counter()
        payload = b"".join([command for command, _, _ in batch])
        try:
            async with asyncio.timeout(self._flush_timeout):
                protocol = await self._connection.get()
                replies = await protocol.send(payload, len(batch))
        except TimeoutError:
            # The entries may still reach the stream after this. The 503 makes the
            # provider retry, and the dedup script gives the retry the late entry's
            # event id, so the event is neither lost nor written twice.
            self._connection.drop()
            self._fail(batch, RedisUnavailable("timed out waiting for Redis"))
            suppressed = self._failures_logged.allow("timeout")
            if suppressed is not None:
                log.warning(
                    "flush.failed",
                    reason="timeout",
                    batch_size=len(batch),
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    suppressed=suppressed,
                )
            return
        except RedisUnavailable as exc:
            self._connection.drop()
            self._fail(batch, exc)
            suppressed = self._failures_logged.allow("unavailable")
            if suppressed is not None:
                log.warning(
                    "flush.failed",
                    reason=str(exc),
                    batch_size=len(batch),
                    suppressed=suppressed,
                )
            return

        scripts_missing = False
        for (_, future, _), reply in zip(batch, replies, strict=True):
            if isinstance(reply, hiredis.ReplyError):
                stats.failed_entries += 1
                scripts_missing |= str(reply).startswith("NOSCRIPT")
                if not future.done():
                    future.set_exception(WriteFailed(str(reply)))
            elif not future.done():
                future.set_result(reply)
        if scripts_missing:
            # Someone flushed the script cache; a new connection loads it again.
            log.warning("flush.script_missing", batch_size=len(batch))
            self._connection.drop()

    def _fail(self, batch: list[Waiting], exc: Exception) -> None:
        self.stats.failed_entries += len(batch)
        for _, future, _ in batch:
            if not future.done():
                future.set_exception(exc)

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
        self._fail(list(self._waiting), RedisUnavailable("gateway shut down"))
        self._waiting.clear()
        self._connection.drop()


def _failed(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is not None
