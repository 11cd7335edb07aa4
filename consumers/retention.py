"""Stream retention: trimming entries that are processed and old enough.

Every consumer process runs :func:`trim_forever`, which trims each tenant's streams
with ``XTRIM MINID``:

- the ingest stream below the oldest entry that some consumer group has not
  acknowledged, and of the acknowledged entries only those older than
  ``ingest_processed_s``, so an unprocessed entry is never trimmed;
- the events and dead-letter streams by age alone (``events_s``, ``dead_s``),
  whether or not a downstream reader or an operator has seen them.

Ages are measured on the Redis server's clock, because the server also stamps the
entry ids with its time in milliseconds. Trimming is idempotent, so several
consumer processes may trim the same streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from hookgate.config import RetentionSettings
from hookgate.keys import INGEST_GROUP, dead_letter_stream, events_stream, ingest_stream

logger = structlog.get_logger()

StreamId = tuple[int, int]

# The largest sequence number of a stream id, an unsigned 64-bit integer.
MAX_SEQUENCE = 2**64 - 1


def parse_id(value: bytes | str) -> StreamId:
    """Parse a stream id ``<ms>-<seq>``. Raises ValueError on any other text."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, sequence = text.partition("-")
    return int(ms), int(sequence)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def next_id(stream_id: StreamId) -> StreamId:
    """Return the smallest stream id greater than ``stream_id``."""
    ms, sequence = stream_id
    if sequence == MAX_SEQUENCE:
        return ms + 1, 0
    return ms, sequence + 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def processed_below(redis: Redis, stream: str) -> StreamId | None:
    """Return an id below which every entry of ``stream`` is acknowledged.

    The bound holds for every consumer group of the stream. For each group it is
    the group's oldest pending entry, or the id after its last-delivered-id when
    nothing is pending, and the smallest of these is returned. This is safe because
    a group reads entries in id order and only its pending entries are
    unacknowledged. XINFO's ``lag`` is not used, because the ids bound the unread
    entries exactly while the lag is null after some deletions.

    Returns None, so that nothing is trimmed, when the stream is missing, when the
    group ``hookgate`` does not exist yet (it is created at id 0 and will read every
    entry), or when a group's state cannot be read.
    """
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except ResponseError:
        # The stream does not exist (yet).
        return None
    names = {_text(group.get("name")) for group in groups}
    if INGEST_GROUP not in names:
        return None

    bound: StreamId | None = None
    for group in groups:
        name = _text(group["name"])
        try:
            candidate = next_id(parse_id(group["last-delivered-id"]))
        except (KeyError, TypeError, ValueError):
            return None
        # XPENDING is read after XINFO GROUPS on purpose. Entries delivered in
        # between have ids above the last-delivered-id read before, so they cannot
        # lower the bound.
        summary: dict[str, Any] = await redis.xpending(stream, name)
        if summary.get("pending"):
            oldest = summary.get("min")
            if oldest is None:
                return None
            candidate = min(candidate, parse_id(oldest))
        bound = candidate if bound is None else min(bound, candidate)
    return bound


async def _server_time_ms(redis: Redis) -> int:
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


async def _trim(redis: Redis, stream: str, below: StreamId) -> int:
    # Exact MINID rather than "~", because with "~" Redis trims only whole radix
    # tree nodes and keeps entries past the retention until a later pass. The exact
    # form costs more only in the one node that the bound falls in, once per pass.
    trimmed: int = await redis.xtrim(stream, minid=format_id(below), approximate=False)
    return trimmed


async def trim_tenant(
    redis: Redis, tenant: str, settings: RetentionSettings
) -> dict[str, int]:
    """Trim the ingest, events and dead-letter streams of ``tenant`` once.

    Returns the number of entries trimmed per stream kind (``ingest``, ``events``,
    ``dead``), leaving out the kinds whose retention is 0. Raises
    :class:`redis.exceptions.RedisError` when a command fails, after trimming the
    streams handled before it.
    """
    now_ms = await _server_time_ms(redis)
    trimmed: dict[str, int] = {}

    if settings.ingest_processed_s:
        stream = ingest_stream(tenant)
        processed = await processed_below(redis, stream)
        if processed is None:
            trimmed["ingest"] = 0
        else:
            cutoff = (now_ms - settings.ingest_processed_s * 1000, 0)
            trimmed["ingest"] = await _trim(redis, stream, min(processed, cutoff))

    by_age = (
        ("events", events_stream(tenant), settings.events_s),
        ("dead", dead_letter_stream(tenant), settings.dead_s),
    )
    for kind, stream, retention_s in by_age:
        if retention_s:
            cutoff = (now_ms - retention_s * 1000, 0)
            trimmed[kind] = await _trim(redis, stream, cutoff)

    return trimmed


async def trim_forever(
    connect: Callable[[], Awaitable[Redis]],
    tenants: Sequence[str],
    settings: RetentionSettings,
    *,
    stop: asyncio.Event,
) -> None:
    """Run :func:`trim_tenant` for every tenant every ``interval_s`` until ``stop``.

    ``connect`` returns the Redis client and is awaited for each tenant, so the
    broker's own connection is used. The first pass runs at once. Like the reclaim
    loop, it stops through the event rather than by task cancellation.
    """
    while not stop.is_set():
        totals = {"ingest": 0, "events": 0, "dead": 0}
        for tenant in tenants:
            if stop.is_set():
                break
            try:
                redis = await connect()
                trimmed = await trim_tenant(redis, tenant, settings)
            except RedisError as exc:
                logger.warning("retention.failed", tenant=tenant, reason=str(exc))
                continue
            for kind, count in trimmed.items():
                totals[kind] += count
        if any(totals.values()):
            logger.info("streams.trimmed", tenants=len(tenants), **totals)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.interval_s)
