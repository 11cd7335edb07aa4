"""The ingest consumer: a FastStream app that turns ingest entries into events.

One stream subscriber per tenant reads the tenant's ingest stream in the consumer
group :data:`hookgate.keys.INGEST_GROUP`, in batches of one XREADGROUP reply, with
the handlers of :mod:`hookgate.consumers.ingest`. Beside the subscribers, each
process runs a reclaim loop (:mod:`hookgate.consumers.reclaim`) and a retention
trimmer (:mod:`hookgate.consumers.retention`), started and stopped with the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import structlog
from faststream import AckPolicy, FastStream
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisStreamMessage
from redis.exceptions import ResponseError

from hookgate.config import Config
from hookgate.entry import EntryError
from hookgate.keys import INGEST_GROUP, ingest_stream
from hookgate.logs import FASTSTREAM_LOGGER

from .ingest import (
    PUBLISH_ONCE_SCRIPT,
    READ_COUNT,
    EntryHandler,
    batch_decoder,
    batch_handler,
    batch_parser,
    dead_letter,
    decode_ingest_entry,
    entry_handler,
    entry_parser,
)
from .reclaim import reclaim_forever
from .retention import trim_forever
from .telemetry import entry_span

logger = structlog.get_logger()


class ConsumerStopped(RuntimeError):
    """Raised when a subscriber stopped for good while the app was running."""


class _TerminalErrors(logging.Handler):
    """Log handler that collects the CRITICAL records of FastStream's logger.

    FastStream (0.7.8) stops a subscriber whose reads cannot succeed again, for
    example when its consumer group was deleted by a Redis restart without
    persistence. It logs that at CRITICAL and ends the app as if a signal had
    asked it to stop, which would exit with status 0.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.CRITICAL)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _create_groups(broker: RedisBroker, tenants: Sequence[str]) -> None:
    # FastStream (0.7.8) creates a missing group at "$", which skips entries written
    # before the first consumer started, so the group is created here first, at id
    # 0. Passing last_id="0" to StreamSub instead would make FastStream read with
    # id 0 after a restart, which returns only this consumer's pending entries and
    # never new ones.
    redis = await broker.connect()
    await redis.script_load(PUBLISH_ONCE_SCRIPT)
    for tenant in tenants:
        try:
            await redis.xgroup_create(
                ingest_stream(tenant), INGEST_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise


def create_app(
    config: Config,
    redis_url: str,
    consumer_name: str,
    *,
    visibility_timeout_ms: int = 30_000,
    max_deliveries: int = 5,
    reclaim_interval_s: float = 1.0,
) -> FastStream:
    """Build the ingest consumer app for every tenant in ``config``.

    ``consumer_name`` names this process in the consumer group and must be unique
    among running consumers. Entries pending longer than ``visibility_timeout_ms``
    are reclaimed by any consumer, and an entry delivered more than
    ``max_deliveries`` times goes to the dead-letter stream. Every process also
    trims the tenants' streams as ``config.retention`` sets
    (:mod:`hookgate.consumers.retention`).

    Start the app with ``run()`` or ``async with app``, not by starting its broker
    alone, because the startup hook that creates the
    groups must run before the subscribers start.

    Raises :class:`ValueError` when ``consumer_name`` is empty.
    """
    if not consumer_name:
        raise ValueError("consumer_name is empty; pass a name unique to this process")

    tenants = config.tenants
    # FastStream logs every entry's receipt and completion at the broker's log
    # level. Those lines go to DEBUG, so that INFO holds only starts and stops.
    broker = RedisBroker(
        redis_url,
        log_level=logging.DEBUG,
        logger=FASTSTREAM_LOGGER,
        apply_types=False,
    )
    parser = entry_parser(broker)
    parse_batch = batch_parser(broker)
    decode_batch = batch_decoder(parser)

    # Reclaimed entries go through the per-entry handler; new ones arrive in
    # batches of one XREADGROUP reply.
    handlers: dict[str, EntryHandler] = {}
    for tenant in tenants:
        handlers[tenant] = entry_handler(broker, tenant)
        stream = StreamSub(
            ingest_stream(tenant),
            group=INGEST_GROUP,
            consumer=consumer_name,
            batch=True,
            max_records=READ_COUNT,
        )
        subscriber = broker.subscriber(
            stream=stream,
            parser=parse_batch,
            decoder=decode_batch,
            ack_policy=AckPolicy.MANUAL,
        )
        subscriber(batch_handler(broker, tenant))

    async def dead_letter_poison(
        tenant: str, message: RedisStreamMessage, error: EntryError
    ) -> None:
        with entry_span(message):
            await dead_letter(broker, tenant, message, error, entry=None)

    reclaimer: list[asyncio.Task[None]] = []
    stop = asyncio.Event()

    async def start_reclaiming() -> None:
        task = asyncio.get_running_loop().create_task(
            reclaim_forever(
                broker,
                handlers,
                consumer_name,
                stop=stop,
                interval_s=reclaim_interval_s,
                parse=parser,
                decode=decode_ingest_entry,
                dead_letter=dead_letter_poison,
                visibility_timeout_ms=visibility_timeout_ms,
                max_deliveries=max_deliveries,
            )
        )
        reclaimer.append(task)

    async def stop_reclaiming() -> None:
        stop.set()
        for task in reclaimer:
            # A claimed entry is handled to the end before the loop stops.
            await task

    trimmer: list[asyncio.Task[None]] = []
    stop_trimming_event = asyncio.Event()

    async def start_trimming() -> None:
        task = asyncio.get_running_loop().create_task(
            trim_forever(
                broker.connect,
                tenants,
                config.retention,
                stop=stop_trimming_event,
            )
        )
        trimmer.append(task)

    async def stop_trimming() -> None:
        stop_trimming_event.set()
        for task in trimmer:
            await task

    async def create_groups() -> None:
        await _create_groups(broker, tenants)

    def log_started() -> None:
        logger.info(
            "consumer.started",
            tenants=tenants,
            consumer=consumer_name,
            group=INGEST_GROUP,
        )

    def log_stopped() -> None:
        logger.info("consumer.stopped", consumer=consumer_name)

    return FastStream(
        broker,
        logger=FASTSTREAM_LOGGER,
        on_startup=[create_groups],
        after_startup=[log_started, start_reclaiming, start_trimming],
        on_shutdown=[stop_reclaiming, stop_trimming],
        after_shutdown=[log_stopped],
    )


async def run_consumer(
    config: Config, redis_url: str, consumer_name: str, **options: Any
) -> None:
    """Run the ingest consumer until SIGINT or SIGTERM.

    Awaits the app's whole run: group creation, consuming and a graceful stop.
    ``options`` go to :func:`create_app`. Raises
    :class:`redis.exceptions.RedisError` when Redis is unreachable at start, and
    :class:`ConsumerStopped` when a subscriber stopped for good. The exit status
    then reports a failure, and a supervisor that restarts the consumer gets any
    missing group created again at id 0.
    """
    app = create_app(config, redis_url, consumer_name, **options)
    terminal = _TerminalErrors()
    FASTSTREAM_LOGGER.addHandler(terminal)
    try:
        await app.run()
    finally:
        FASTSTREAM_LOGGER.removeHandler(terminal)
    if terminal.messages:
        raise ConsumerStopped(terminal.messages[0])
