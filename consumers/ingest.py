"""Handling of ingest entries: decode, convert, publish once, or dead-letter.

The functions here build the parser, decoder and handlers that
:mod:`hookgate.consumers.app` attaches to each tenant's subscriber, and the
per-entry handler that the reclaim loop calls for entries it claimed. An entry is
acknowledged only after its event was published, or after it was dead-lettered.

Entries are delivered at least once: a crash between the publish and the XACK
leaves the entry pending, and a reclaim processes it again. The publish is keyed by
``event_id`` (:data:`PUBLISH_ONCE_SCRIPT`), so the second processing publishes
nothing.

This module reads and writes Redis only through the broker's connection, and it
never logs bodies, headers or secrets.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from typing import Any, cast

import structlog
from faststream.message import StreamMessage
from faststream.redis import RedisBroker
from faststream.redis.message import (
    BatchStreamMessage,
    ConsumerProtocol,
    DefaultStreamMessage,
    RedisBatchStreamMessage,
    RedisStreamMessage,
)
from opentelemetry.trace import Span
from redis.exceptions import NoScriptError, RedisError

from hookgate import metrics
from hookgate.entry import EntryError, IngestEntry, decode_entry
from hookgate.events import DownstreamEvent
from hookgate.keys import (
    INGEST_GROUP,
    dead_letter_stream,
    events_stream,
    ingest_stream,
    published_key,
)
from hookgate.logs import RateLimiter
from hookgate.sentry import report_dead_letter, reported_errors

from .canonical import ConversionError, convert_entry
from .deadletter import write_dead_letter
from .downstream import event_fields
from .telemetry import (
    current_entry_span,
    dead_letter_trace_id,
    entry_span,
    mark_attempt_failed,
    record_dead_letter,
    start_entry_span,
    use_entry_span,
)

logger = structlog.get_logger()
# While Redis fails, every entry in flight fails the same way, so each kind of
# failure logs at most one line per second and counts the lines it held back.
_failures_logged = RateLimiter(per_second=1.0)

# Publishes one event unless its event id was published before, then acknowledges
# the ingest entry, in one atomic step and one round trip. So an entry delivered
# twice (a reclaim after a crash) has one effect, and no entry is acknowledged
# without its event. KEYS: events stream, published key, ingest stream. ARGV: TTL
# in seconds, field, value, group, entry id. Returns 1 if it published, else 0.
# Redis does not roll a script back when a command fails, so the marker is set
# only after the XADD succeeded. A failed XADD leaves the entry to be retried.
PUBLISH_ONCE_SCRIPT = """
local published = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[3])
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
  published = 1
end
redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
return published
"""
PUBLISH_ONCE_SHA = hashlib.sha1(PUBLISH_ONCE_SCRIPT.encode()).hexdigest()
# How long a published event id is remembered: as long as the gateway's default
# dedup window, beyond which a redelivery is not expected.
PUBLISHED_TTL_S = 72 * 3600

# Bounds one XREADGROUP reply, so a backlog is read in steps rather than in one
# reply that contains every waiting entry.
READ_COUNT = 100

# The decoder already returns typed values, so FastStream passes them through
# without validating them a second time.
DecodedPair = tuple[IngestEntry | EntryError, RedisStreamMessage]
EntryHandler = Callable[[DecodedPair], Awaitable[None]]
# An entry ready to publish, with the span of its attempt (None when tracing is off).
ReadyEntry = tuple[RedisStreamMessage, DownstreamEvent, Span | None]


def decode_ingest_entry(message: StreamMessage[Any]) -> IngestEntry | EntryError:
    """Decode the fields of an ingest stream message into an :class:`IngestEntry`.

    Returns the :class:`EntryError` instead of raising it, because FastStream does
    not call the handler when the decoder raises, and the handler must dead-letter
    the entry.
    """
    fields: dict[bytes, bytes] = message.raw_message["data"]
    try:
        return decode_entry(fields)
    except EntryError as exc:
        return exc


def entry_parser(
    broker: RedisBroker,
) -> Callable[[DefaultStreamMessage], Awaitable[RedisStreamMessage]]:
    # FastStream's default stream parser (0.7.8) serializes the entry's fields as
    # JSON, which raises UnicodeDecodeError on bodies that are not UTF-8. This
    # parser keeps the fields as bytes and binds the message to the broker's
    # connection and the ingest group, so message.ack() sends XACK for the entry to
    # the stream it came from.
    async def parse_entry(raw: DefaultStreamMessage) -> RedisStreamMessage:
        redis = await broker.connect()
        entry_id = raw["message_ids"][0].decode()
        return RedisStreamMessage(
            raw_message=raw,
            body=raw["data"],
            # FastStream's protocol types xack() narrower than redis-py does, but
            # FastStream binds its own stream messages to the same client.
            consumer=cast(ConsumerProtocol, redis),
            group=INGEST_GROUP,
            message_id=entry_id,
            correlation_id=entry_id,
        )

    return parse_entry


def _failed_at_ms() -> int:
    return time.time_ns() // 1_000_000


async def _ack(message: RedisStreamMessage, log: Any) -> None:
    try:
        await message.ack()
    except RedisError as exc:
        # The entry stays pending, so a reclaim processes it a second time.
        suppressed = _failures_logged.allow("entry.ack_failed")
        if suppressed is not None:
            log.error("entry.ack_failed", reason=str(exc), suppressed=suppressed)


async def dead_letter(
    broker: RedisBroker,
    tenant: str,
    message: RedisStreamMessage,
    error: EntryError | ConversionError,
    entry: IngestEntry | None,
) -> None:
    raw = message.raw_message
    entry_id = raw["message_ids"][0]
    log = logger.bind(tenant=tenant, entry_id=entry_id.decode())
    if entry is not None:
        log = log.bind(source_id=entry.source, event_id=entry.event_id)

    redis = await broker.connect()
    try:
        await write_dead_letter(
            redis,
            tenant,
            raw["data"],
            error=error,
            stream=raw["channel"],
            entry_id=entry_id,
            failed_at=_failed_at_ms(),
            trace_id=dead_letter_trace_id(raw["data"], error),
        )
    except RedisError as exc:
        # Not acknowledged: the entry stays pending rather than being lost.
        suppressed = _failures_logged.allow(("entry.dead_letter_failed", tenant))
        if suppressed is not None:
            log.error(
                "entry.dead_letter_failed",
                reason=str(exc),
                error_type=type(error).__name__,
                suppressed=suppressed,
            )
        return

    await _ack(message, log)
    record_dead_letter(error, dead_letter_stream(tenant))
    metrics.dead_letters[(tenant, type(error).__name__)] += 1
    log.warning(
        "entry.dead_lettered", reason=str(error), error_type=type(error).__name__
    )
    report_dead_letter(tenant=tenant, fields=raw["data"], error=error)


def _entry_context(tenant: str, decoded: IngestEntry | EntryError) -> dict[str, str]:
    if isinstance(decoded, EntryError):
        return {"tenant": tenant}
    return {
        "tenant": tenant,
        "source_id": decoded.source,
        "provider": decoded.provider,
        "event_id": decoded.event_id,
    }


def batch_parser(
    broker: RedisBroker,
) -> Callable[[BatchStreamMessage], Awaitable[RedisBatchStreamMessage]]:
    # Same reason as entry_parser: the fields stay bytes. The batch is split into
    # one message per entry by the decoder, which may await.
    async def parse_batch(raw: BatchStreamMessage) -> RedisBatchStreamMessage:
        redis = await broker.connect()
        first = raw["message_ids"][0].decode()
        return RedisBatchStreamMessage(
            raw_message=raw,
            body=b"",
            consumer=cast(ConsumerProtocol, redis),
            group=INGEST_GROUP,
            message_id=first,
            correlation_id=first,
        )

    return parse_batch


def batch_decoder(
    parse_entry: Callable[[DefaultStreamMessage], Awaitable[RedisStreamMessage]],
) -> Callable[[StreamMessage[Any]], Awaitable[list[DecodedPair]]]:
    async def decode_batch(message: StreamMessage[Any]) -> list[DecodedPair]:
        raw = message.raw_message
        pairs: list[DecodedPair] = []
        for entry_id, fields in zip(raw["message_ids"], raw["data"], strict=True):
            entry_message = await parse_entry(
                {
                    "type": "stream",
                    "channel": raw["channel"],
                    "message_ids": [entry_id],
                    "data": fields,
                }
            )
            pairs.append((decode_ingest_entry(entry_message), entry_message))
        return pairs

    return decode_batch


def batch_handler(
    broker: RedisBroker, tenant: str
) -> Callable[[list[DecodedPair]], Awaitable[None]]:
    """Return the handler of one XREADGROUP reply of ``tenant``'s ingest stream.

    Each entry is converted on its own, as :func:`entry_handler` does, but the
    publishes of the whole reply go to Redis in one pipeline: a profile showed the
    round trip per entry as the consumer's largest cost after FastStream's own.
    """

    async def handle_batch(pairs: list[DecodedPair]) -> None:
        ready: list[ReadyEntry] = []
        # Each entry's span stays open until the batch's publish has settled, so a
        # failed publish marks the span of its attempt and logs inside it.
        with ExitStack() as open_spans:
            for decoded, message in pairs:
                metrics.processed[tenant] += 1
                span = start_entry_span(message)
                if span is not None:
                    open_spans.callback(span.end)
                with (
                    structlog.contextvars.bound_contextvars(
                        **_entry_context(tenant, decoded)
                    ),
                    use_entry_span(span),
                    reported_errors(),
                ):
                    if isinstance(decoded, EntryError):
                        await dead_letter(broker, tenant, message, decoded, entry=None)
                        continue
                    try:
                        event = convert_entry(decoded, tenant)
                    except ConversionError as exc:
                        await dead_letter(broker, tenant, message, exc, entry=decoded)
                        continue
                ready.append((message, event, span))
            if ready:
                await _publish_many(broker, tenant, ready)

    return handle_batch


async def _publish_pipeline(
    redis: Any, tenant: str, ready: Sequence[ReadyEntry]
) -> list[Any]:
    """Send the publish-once script for each entry in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for message, event, _ in ready:
            ((field, value),) = event_fields(event).items()
            pipe.evalsha(
                PUBLISH_ONCE_SHA,
                3,
                events_stream(tenant),
                published_key(tenant, event.event_id),
                ingest_stream(tenant),
                PUBLISHED_TTL_S,
                field,
                value,
                INGEST_GROUP,
                message.raw_message["message_ids"][0],
            )
        try:
            results: list[Any] = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            # Nothing was acknowledged; a reclaim retries every entry of the batch.
            results = [exc] * len(ready)
    return results


async def _publish_many(
    broker: RedisBroker, tenant: str, ready: Sequence[ReadyEntry]
) -> None:
    redis = await broker.connect()
    results = await _publish_pipeline(redis, tenant, ready)
    missing = [i for i, rs in enumerate(results) if isinstance(rs, NoScriptError)]
    if missing:
        # A restarted Redis, or SCRIPT FLUSH, lost the script. An EVALSHA that found
        # no script did nothing, so those entries are sent again at once rather
        # than left for a reclaim, which would count the failure as a delivery.
        await redis.script_load(PUBLISH_ONCE_SCRIPT)
        retried = await _publish_pipeline(redis, tenant, [ready[i] for i in missing])
        for index, result in zip(missing, retried, strict=True):
            results[index] = result
    for (message, event, span), result in zip(ready, results, strict=True):
        if not isinstance(result, Exception):
            continue
        # The entry stays pending; a reclaim after the visibility timeout retries it.
        mark_attempt_failed(span, result)
        suppressed = _failures_logged.allow(("entry.publish_failed", tenant))
        if suppressed is not None:
            with use_entry_span(span):
                logger.error(
                    "entry.publish_failed",
                    tenant=tenant,
                    entry_id=message.raw_message["message_ids"][0].decode(),
                    source_id=event.source,
                    event_id=event.event_id,
                    reason=str(result),
                    suppressed=suppressed,
                )


def entry_handler(broker: RedisBroker, tenant: str) -> EntryHandler:
    async def handle_entry(pair: DecodedPair) -> None:
        decoded, message = pair
        metrics.processed[tenant] += 1
        # Every line logged and every error reported inside this block carries the
        # entry's ids; leaving the block unbinds them before the next entry.
        with (
            structlog.contextvars.bound_contextvars(**_entry_context(tenant, decoded)),
            entry_span(message),
            reported_errors(),
        ):
            if isinstance(decoded, EntryError):
                await dead_letter(broker, tenant, message, decoded, entry=None)
                return

            try:
                event = convert_entry(decoded, tenant)
            except ConversionError as exc:
                await dead_letter(broker, tenant, message, exc, entry=decoded)
                return

            await _publish_many(
                broker, tenant, [(message, event, current_entry_span())]
            )

    return handle_entry
