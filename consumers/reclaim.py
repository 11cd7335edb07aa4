"""Reclaiming entries that a consumer read and never acknowledged.

A consumer that crashes, or whose publish failed, leaves its entries in the
group's pending list. Every consumer process runs :func:`reclaim_forever`, which
claims entries that stayed pending longer than the visibility timeout
(``XAUTOCLAIM``) and handles them as if they were new. An entry delivered more than
``max_deliveries`` times is poison: it goes to the dead-letter stream instead of
failing forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from faststream.redis import RedisBroker
from faststream.redis.message import DefaultStreamMessage, RedisStreamMessage
from redis.exceptions import RedisError

from hookgate import metrics
from hookgate.entry import EntryError, IngestEntry
from hookgate.keys import INGEST_GROUP, ingest_stream
from hookgate.logs import RateLimiter

logger = structlog.get_logger()

# Entries claimed per XAUTOCLAIM call.
CLAIM_COUNT = 100


class PoisonEntryError(EntryError):
    """Raised for an entry delivered too often without being acknowledged."""


EntryHandler = Callable[
    [tuple[IngestEntry | EntryError, RedisStreamMessage]], Awaitable[None]
]
DeadLetter = Callable[[str, RedisStreamMessage, EntryError], Awaitable[None]]


async def reclaim_once(
    broker: RedisBroker,
    tenant: str,
    consumer_name: str,
    *,
    parse: Callable[[DefaultStreamMessage], Awaitable[RedisStreamMessage]],
    decode: Callable[[RedisStreamMessage], IngestEntry | EntryError],
    handle: EntryHandler,
    dead_letter: DeadLetter,
    visibility_timeout_ms: int,
    max_deliveries: int,
) -> int:
    """Claim and handle every entry of ``tenant`` pending past the timeout.

    Returns the number of entries claimed.
    """
    redis = await broker.connect()
    stream = ingest_stream(tenant)
    start = "0-0"
    claimed = 0
    while True:
        reply: Any = await redis.xautoclaim(
            stream,
            INGEST_GROUP,
            consumer_name,
            min_idle_time=visibility_timeout_ms,
            start_id=start,
            count=CLAIM_COUNT,
        )
        next_id, entries = reply[0], reply[1]
        for entry_id, fields in entries:
            if fields is None:
                continue
            claimed += 1
            raw: DefaultStreamMessage = {
                "type": "stream",
                "channel": stream,
                "message_ids": [entry_id],
                "data": fields,
            }
            message = await parse(raw)
            deliveries = await message.get_delivery_count()
            if deliveries > max_deliveries:
                poison = PoisonEntryError(
                    f"delivered {deliveries} times without being acknowledged"
                )
                await dead_letter(tenant, message, poison)
                continue
            await handle((decode(message), message))
        if next_id in (b"0-0", "0-0"):
            return claimed
        start = next_id


async def reclaim_forever(
    broker: RedisBroker,
    tenants: Mapping[str, EntryHandler],
    consumer_name: str,
    *,
    stop: asyncio.Event,
    interval_s: float,
    **options: Any,
) -> None:
    """Run :func:`reclaim_once` for every tenant every ``interval_s`` until ``stop``.

    Stopping goes through an event rather than task cancellation, because under
    FastStream's shutdown (0.7.8, anyio) a cancelled sleep here was observed not to
    end the loop.
    """
    # A Redis outage fails every pass, so each tenant logs at most one line per 30 s.
    failures_logged = RateLimiter(per_second=1 / 30)
    while not stop.is_set():
        for tenant, handle in tenants.items():
            try:
                claimed = await reclaim_once(
                    broker, tenant, consumer_name, handle=handle, **options
                )
            except RedisError as exc:
                suppressed = failures_logged.allow(tenant)
                if suppressed is not None:
                    logger.warning(
                        "reclaim.failed",
                        tenant=tenant,
                        reason=str(exc),
                        suppressed=suppressed,
                    )
                continue
            if claimed:
                metrics.reclaimed[tenant] += claimed
                logger.info("entries.reclaimed", tenant=tenant, count=claimed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
