"""Example downstream subscriber of hookgate's events stream: copy it and adapt it.

It reads tenant acme's events stream, ``hg:{acme}:events``, in its own consumer
group, receives each event as its typed struct from :mod:`hookgate.events`, and
acknowledges an entry only after its own effect is stored. Delivery is at least
once, so the effect and the event's ``event_id`` are stored in one Redis
transaction, and an event that was seen before changes nothing.

The effects here are stand-ins that write to this example's own Redis keys
(``example:{acme}:...``): a set of mailboxes to sync, a count of webhooks per
event type, and a set of Graph subscriptions that need renewing. A real team
records ``event_id`` in the same transaction as its own effect, in its own store.

Run it with the package ``hookgate`` installed, for the types and the decoder::

    REDIS_URL=redis://127.0.0.1:6379/0 python docs/examples/subscriber.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Annotated, Any

import msgspec
from faststream import AckPolicy, Context, FastStream, NoCast
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisStreamMessage
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError, WatchError

from hookgate.consumers import decode_downstream_event
from hookgate.events import (
    DownstreamEvent,
    MailboxChanged,
    SubscriptionLifecycle,
    WebhookReceived,
)
from hookgate.keys import events_stream

TENANT = "acme"
# Each downstream team reads in a consumer group of its own, so every team
# receives every event, and the consumers inside one team share its events.
GROUP = "example-sync"
# Entries that a crashed consumer of the group left unacknowledged this long are
# claimed and handled again by another consumer.
RECLAIM_IDLE_MS = 60_000
# How long a processed event id is remembered, a choice of this example. A
# redelivery comes from this group's own pending entries, which a claiming
# consumer may reach only after the group's consumers were down for days.
PROCESSED_TTL_S = 7 * 24 * 3600

logger = logging.getLogger(__name__)

# NoCast hands the decoder's value to the handler unconverted. FastStream's
# serializers cannot convert it, because pydantic cannot describe msgspec structs
# and msgspec cannot convert to a union that contains an exception class.
Decoded = Annotated[DownstreamEvent | msgspec.MsgspecError, NoCast]
Message = Annotated[RedisStreamMessage, Context("message")]


def decode_event(message: StreamMessage[Any]) -> DownstreamEvent | msgspec.MsgspecError:
    """Decode an events stream entry, returning the error for an unknown event.

    The error is returned, not raised, because FastStream does not call the
    handler when the decoder raises, and the handler must acknowledge the entry.
    """
    try:
        return decode_downstream_event(message)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return exc


def processed_key(tenant: str, event_id: str) -> str:
    """Return the key that marks ``event_id`` as handled by this group."""
    return f"example:{{{tenant}}}:processed:{event_id}"


class Effects:
    """This example's own state, written once per event id."""

    def __init__(self, redis: Redis, tenant: str) -> None:
        self.redis = redis
        self.tenant = tenant
        self.mailboxes_key = f"example:{{{tenant}}}:mailboxes-to-sync"
        self.webhook_counts_key = f"example:{{{tenant}}}:webhooks-by-type"
        self.subscriptions_key = f"example:{{{tenant}}}:subscriptions-to-renew"

    async def apply(self, event: DownstreamEvent) -> bool:
        """Store the effect of ``event`` unless its ``event_id`` was handled before.

        Returns whether this call stored it. The effect and the processed marker
        are written in one MULTI/EXEC, watched on the marker, so two consumers
        that hold the same event store one effect between them.
        """
        marker = processed_key(self.tenant, event.event_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(marker)
                if await pipe.exists(marker):
                    return False
                pipe.multi()
                self._queue_effect(pipe, event)
                pipe.set(marker, 1, ex=PROCESSED_TTL_S)
                await pipe.execute()
            except WatchError:
                # Another consumer stored the marker between WATCH and EXEC.
                return False
        return True

    def _queue_effect(self, pipe: Pipeline, event: DownstreamEvent) -> None:
        match event:
            case MailboxChanged():
                pipe.sadd(self.mailboxes_key, event.mailbox)
            case WebhookReceived():
                pipe.hincrby(self.webhook_counts_key, event.event_type or "", 1)
            case SubscriptionLifecycle():
                pipe.sadd(self.subscriptions_key, event.subscription_id)


def create_app(
    redis_url: str,
    *,
    tenant: str = TENANT,
    group: str = GROUP,
    consumer: str | None = None,
    reclaim_idle_ms: int = RECLAIM_IDLE_MS,
) -> FastStream:
    """Build the subscriber app for ``tenant``'s events stream.

    ``consumer`` names this process in ``group``; it defaults to the host name and
    process id, which are unique among running processes. Entries left pending in
    ``group`` for ``reclaim_idle_ms`` milliseconds are claimed by this process.
    """
    consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
    stream = events_stream(tenant)
    broker = RedisBroker(redis_url)
    redis = Redis.from_url(redis_url)
    effects = Effects(redis, tenant)

    async def handle(event: Decoded, message: Message) -> None:
        if isinstance(event, msgspec.MsgspecError):
            # A tag newer than this subscriber, or a malformed entry. Left
            # pending, it would be claimed and fail again forever, so it is
            # logged and acknowledged. A team that must not skip an event stores
            # the entry somewhere first.
            logger.warning(
                "skipped entry %s of %s: %s", message.message_id, stream, event
            )
            await message.ack()
            return

        await effects.apply(event)

        # Acknowledged only now, so a crash before this line leaves the entry
        # pending and the reclaiming subscriber below delivers it again.
        await message.ack()

    # decode_event returns the typed struct; without it FastStream would decode
    # through a dict, which cannot rebuild WebhookReceived.payload.
    broker.subscriber(
        stream=StreamSub(stream, group=group, consumer=consumer),
        decoder=decode_event,
        ack_policy=AckPolicy.MANUAL,
    )(handle)
    # FastStream (0.7.8) reads either new entries (XREADGROUP) or stale pending
    # ones (XAUTOCLAIM) per subscriber, so a second subscriber does the claiming.
    broker.subscriber(
        stream=StreamSub(
            stream, group=group, consumer=consumer, min_idle_time=reclaim_idle_ms
        ),
        decoder=decode_event,
        ack_policy=AckPolicy.MANUAL,
    )(handle)

    async def create_group() -> None:
        # FastStream creates a missing group at "$", which skips the events
        # published before this group first started; "0" reads them too.
        try:
            await redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def close_redis() -> None:
        await redis.aclose()

    return FastStream(broker, on_startup=[create_group], after_shutdown=[close_redis])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    app = create_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    asyncio.run(app.run())
