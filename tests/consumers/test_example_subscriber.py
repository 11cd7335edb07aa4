"""Tests of the example downstream subscriber in docs/examples/subscriber.py.

The example's own effects go to the session's Redis in both runs, and only the
stream transport differs: FastStream's in-memory TestRedisBroker, or the real
events stream read in the example's consumer group.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import msgspec
import pytest
from faststream.redis import TestRedisBroker
from redis.asyncio import Redis

from hookgate.consumers import EVENT_FIELD, event_fields
from hookgate.events import (
    DownstreamEvent,
    MailboxChanged,
    SubscriptionLifecycle,
    WebhookReceived,
)
from hookgate.keys import events_stream

from .streams import WAIT_TIMEOUT_S, redis_url

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "subscriber.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_subscriber", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


def sample_events(tenant: str) -> list[DownstreamEvent]:
    return [
        MailboxChanged(
            event_id="evt_mail",
            tenant=tenant,
            source=f"{tenant}-gmail",
            provider="gmail-pubsub",
            mailbox="alice@example.com",
            cursor="42",
            received_at=1,
        ),
        WebhookReceived(
            event_id="evt_hook",
            tenant=tenant,
            source=f"{tenant}-billing",
            provider="standard-webhooks",
            provider_event_id="msg_1",
            event_type="invoice.paid",
            payload=msgspec.Raw(b'{"type":"invoice.paid","data":{"id":"inv_1"}}'),
            received_at=2,
        ),
        SubscriptionLifecycle(
            event_id="evt_life",
            tenant=tenant,
            source=f"{tenant}-outlook",
            subscription_id="sub-1",
            lifecycle_event="reauthorizationRequired",
            received_at=3,
        ),
    ]


def event_json(event: DownstreamEvent) -> bytes:
    return event_fields(event)[EVENT_FIELD]


@pytest.fixture
async def example_keys(redis: Redis, tenant: str) -> AsyncIterator[None]:
    """Delete the example's own keys for ``tenant`` after the test."""
    yield
    keys = await redis.keys(f"example:{{{tenant}}}:*")
    if keys:
        await redis.delete(*keys)


async def wait_group_done(redis: Redis, stream: str, group: str) -> None:
    """Wait until ``group`` has read and acknowledged every entry of ``stream``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_TIMEOUT_S
    state = None
    while loop.time() < deadline:
        info = await redis.xinfo_stream(stream)
        groups = {g["name"]: g for g in await redis.xinfo_groups(stream)}
        if group.encode() in groups:
            entry = groups[group.encode()]
            state = (entry["last-delivered-id"], entry["pending"])
            if state == (info["last-generated-id"], 0):
                return
        await asyncio.sleep(0.02)
    raise TimeoutError(
        f"group {group!r} on {stream} did not acknowledge every entry in"
        f" {WAIT_TIMEOUT_S} s; last (last-delivered-id, pending) {state}"
    )


async def effects_of(
    redis: Redis, tenant: str
) -> tuple[set[bytes], dict[bytes, bytes], set[bytes]]:
    effects = example.Effects(redis, tenant)
    mailboxes = await redis.smembers(effects.mailboxes_key)
    counts = await redis.hgetall(effects.webhook_counts_key)
    subscriptions = await redis.smembers(effects.subscriptions_key)
    return mailboxes, counts, subscriptions


@pytest.mark.usefixtures("example_keys")
class TestInMemoryBroker:
    async def test_each_event_type_handled(self, redis: Redis, tenant: str) -> None:
        """Each event type reaches its own effect through TestRedisBroker."""
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")

        async with TestRedisBroker(app.broker) as broker:
            for event in sample_events(tenant):
                await broker.publish(event_json(event), stream=events_stream(tenant))

        mailboxes, counts, subscriptions = await effects_of(redis, tenant)
        assert mailboxes == {b"alice@example.com"}
        assert counts == {b"invoice.paid": b"1"}
        assert subscriptions == {b"sub-1"}

    async def test_repeated_event_id_ignored(self, redis: Redis, tenant: str) -> None:
        """An event delivered twice increments the webhook count once."""
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")
        webhook = sample_events(tenant)[1]

        async with TestRedisBroker(app.broker) as broker:
            await broker.publish(event_json(webhook), stream=events_stream(tenant))
            await broker.publish(event_json(webhook), stream=events_stream(tenant))

        _, counts, _ = await effects_of(redis, tenant)
        assert counts == {b"invoice.paid": b"1"}

    async def test_marker_stored_per_event(self, redis: Redis, tenant: str) -> None:
        """Handling an event stores its processed marker with an expiry."""
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")
        event = sample_events(tenant)[0]

        async with TestRedisBroker(app.broker) as broker:
            await broker.publish(event_json(event), stream=events_stream(tenant))

        ttl = await redis.ttl(example.processed_key(tenant, event.event_id))
        assert 0 < ttl <= example.PROCESSED_TTL_S


@pytest.mark.usefixtures("example_keys")
class TestRealRedis:
    async def test_each_event_type_handled(self, redis: Redis, tenant: str) -> None:
        """The app reads the real events stream in its group and acks each entry."""
        stream = events_stream(tenant)
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")

        async with app:
            for event in sample_events(tenant):
                await redis.xadd(stream, event_fields(event))
            await wait_group_done(redis, stream, example.GROUP)

        mailboxes, counts, subscriptions = await effects_of(redis, tenant)
        assert mailboxes == {b"alice@example.com"}
        assert counts == {b"invoice.paid": b"1"}
        assert subscriptions == {b"sub-1"}

    async def test_reads_events_before_start(self, redis: Redis, tenant: str) -> None:
        """Events published before the group existed are handled too."""
        stream = events_stream(tenant)
        for event in sample_events(tenant):
            await redis.xadd(stream, event_fields(event))
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")

        async with app:
            await wait_group_done(redis, stream, example.GROUP)

        mailboxes, counts, subscriptions = await effects_of(redis, tenant)
        assert mailboxes == {b"alice@example.com"}
        assert counts == {b"invoice.paid": b"1"}
        assert subscriptions == {b"sub-1"}

    async def test_repeated_event_id_ignored(self, redis: Redis, tenant: str) -> None:
        """Two entries with one event_id change the example's state once."""
        stream = events_stream(tenant)
        webhook = sample_events(tenant)[1]
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")

        async with app:
            await redis.xadd(stream, event_fields(webhook))
            await redis.xadd(stream, event_fields(webhook))
            await wait_group_done(redis, stream, example.GROUP)

        _, counts, _ = await effects_of(redis, tenant)
        assert counts == {b"invoice.paid": b"1"}

    async def test_pending_entry_reclaimed(self, redis: Redis, tenant: str) -> None:
        """An entry another consumer read and never acked is claimed and handled."""
        stream = events_stream(tenant)
        await redis.xgroup_create(stream, example.GROUP, id="0", mkstream=True)
        await redis.xadd(stream, event_fields(sample_events(tenant)[2]))
        # A consumer that crashed after reading: the entry stays pending to it.
        await redis.xreadgroup(example.GROUP, "crashed", {stream: ">"})
        app = example.create_app(
            redis_url(), tenant=tenant, consumer="test", reclaim_idle_ms=50
        )

        async with app:
            await wait_group_done(redis, stream, example.GROUP)

        _, _, subscriptions = await effects_of(redis, tenant)
        assert subscriptions == {b"sub-1"}

    async def test_unknown_tag_acked_and_skipped(
        self, redis: Redis, tenant: str
    ) -> None:
        """An event of a newer tag is acknowledged, and later events still arrive."""
        stream = events_stream(tenant)
        newer = b'{"type":"mailbox.changed.v2","event_id":"evt_new"}'
        app = example.create_app(redis_url(), tenant=tenant, consumer="test")

        async with app:
            await redis.xadd(stream, {EVENT_FIELD: newer})
            await redis.xadd(stream, event_fields(sample_events(tenant)[0]))
            await wait_group_done(redis, stream, example.GROUP)

        mailboxes, _, _ = await effects_of(redis, tenant)
        assert mailboxes == {b"alice@example.com"}
        assert not await redis.exists(example.processed_key(tenant, "evt_new"))
