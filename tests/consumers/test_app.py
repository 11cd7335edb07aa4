"""Integration tests of the ingest consumer against a real Redis.

Each test writes entries with redis-py exactly as the gateway does, runs the
consumer app in this event loop and reads the streams it writes.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from structlog.testing import capture_logs

from hookgate.consumers import create_app
from hookgate.entry import (
    GMAIL_PUSH,
    GRAPH_LIFECYCLE,
    GRAPH_NOTIFICATION,
    STANDARD_WEBHOOK,
)
from hookgate.events import MailboxChanged, SubscriptionLifecycle, WebhookReceived
from hookgate.keys import (
    INGEST_GROUP,
    dead_letter_stream,
    events_stream,
    ingest_stream,
)

from .entries import (
    CLIENT_STATE,
    RECEIVED_AT,
    SUBSCRIPTION_ID,
    USER_ID,
    gmail_push_body,
    graph_lifecycle_body,
    graph_notification_body,
    ingest_fields,
    standard_webhook_body,
)
from .streams import (
    WAIT_TIMEOUT_S,
    config_for,
    group_state,
    read_dead_letters,
    read_events,
    redis_url,
    running_consumer,
    wait_processed,
)


def standard_fields(tenant: str, **overrides: bytes) -> dict[str, bytes]:
    fields = ingest_fields(
        tenant=tenant,
        type=STANDARD_WEBHOOK,
        provider="standard-webhooks",
        body=standard_webhook_body(),
        provider_event_id="msg_1",
    )
    fields.update(overrides)
    return fields


class TestPublished:
    async def test_gmail_push(self, redis: Redis, tenant: str) -> None:
        """A Gmail push entry becomes one MailboxChanged event."""
        fields = ingest_fields(
            tenant=tenant,
            type=GMAIL_PUSH,
            provider="gmail-pubsub",
            body=gmail_push_body("alice@example.com", 9876543210),
            event_id="evt_gmail_1",
            source="acme-gmail",
        )

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        events = await read_events(redis, tenant)
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, MailboxChanged)
        assert event.event_id == "evt_gmail_1"
        assert event.tenant == tenant
        assert event.source == "acme-gmail"
        assert event.provider == "gmail-pubsub"
        assert event.mailbox == "alice@example.com"
        assert event.cursor == "9876543210"
        assert event.received_at == RECEIVED_AT
        assert await read_dead_letters(redis, tenant) == []

    async def test_graph_notification(self, redis: Redis, tenant: str) -> None:
        """A Graph change notification entry becomes one MailboxChanged event."""
        resource = f"Users/{USER_ID}/Messages/AAMkAGI2TG93AAA="
        fields = ingest_fields(
            tenant=tenant,
            type=GRAPH_NOTIFICATION,
            provider="graph",
            body=graph_notification_body(resource, "deleted"),
            event_id="evt_graph_1",
            source="acme-graph",
        )

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        events = await read_events(redis, tenant)
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, MailboxChanged)
        assert event.event_id == "evt_graph_1"
        assert event.tenant == tenant
        assert event.source == "acme-graph"
        assert event.provider == "graph"
        assert event.mailbox == f"users/{USER_ID}"
        assert event.resource == resource
        assert event.change_type == "deleted"
        assert event.subscription_id == SUBSCRIPTION_ID
        assert event.received_at == RECEIVED_AT

    async def test_graph_lifecycle(self, redis: Redis, tenant: str) -> None:
        """A Graph lifecycle entry becomes one SubscriptionLifecycle event."""
        fields = ingest_fields(
            tenant=tenant,
            type=GRAPH_LIFECYCLE,
            provider="graph",
            body=graph_lifecycle_body("missed"),
            event_id="evt_life_1",
            source="acme-graph",
        )

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        events = await read_events(redis, tenant)
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, SubscriptionLifecycle)
        assert event.event_id == "evt_life_1"
        assert event.tenant == tenant
        assert event.source == "acme-graph"
        assert event.subscription_id == SUBSCRIPTION_ID
        assert event.lifecycle_event == "missed"
        assert event.received_at == RECEIVED_AT

    async def test_standard_webhook(self, redis: Redis, tenant: str) -> None:
        """A Standard Webhooks entry becomes one WebhookReceived with its payload."""
        body = standard_webhook_body("invoice.paid")
        fields = ingest_fields(
            tenant=tenant,
            type=STANDARD_WEBHOOK,
            provider="standard-webhooks",
            body=body,
            event_id="evt_std_1",
            source="acme-billing",
            provider_event_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        )

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        events = await read_events(redis, tenant)
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, WebhookReceived)
        assert event.event_id == "evt_std_1"
        assert event.tenant == tenant
        assert event.source == "acme-billing"
        assert event.provider == "standard-webhooks"
        assert event.provider_event_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        assert event.event_type == "invoice.paid"
        assert bytes(event.payload) == body
        assert event.received_at == RECEIVED_AT

    async def test_secret_not_published(self, redis: Redis, tenant: str) -> None:
        """Graph's clientState never reaches the events stream."""
        fields = ingest_fields(
            tenant=tenant,
            type=GRAPH_NOTIFICATION,
            provider="graph",
            body=graph_notification_body(),
        )

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        entries = await redis.xrange(events_stream(tenant))
        assert len(entries) == 1
        assert CLIENT_STATE.encode() not in b"".join(entries[0][1].values())

    async def test_entries_stay_with_tenant(
        self, redis: Redis, new_tenant: Callable[[], str]
    ) -> None:
        """Each tenant's entries are published to that tenant's events stream."""
        acme, globex = new_tenant(), new_tenant()

        async with running_consumer(acme, globex):
            await redis.xadd(ingest_stream(acme), standard_fields(acme))
            await redis.xadd(ingest_stream(globex), standard_fields(globex))
            await redis.xadd(ingest_stream(globex), standard_fields(globex))
            await wait_processed(redis, ingest_stream(acme))
            await wait_processed(redis, ingest_stream(globex))

        acme_events = await read_events(redis, acme)
        globex_events = await read_events(redis, globex)
        assert [e.tenant for e in acme_events] == [acme]
        assert [e.tenant for e in globex_events] == [globex, globex]

    async def test_order_kept(self, redis: Redis, tenant: str) -> None:
        """Events of one tenant are published in ingest order."""
        ids = [f"evt_{n}" for n in range(20)]

        async with running_consumer(tenant):
            for event_id in ids:
                fields = standard_fields(tenant, event_id=event_id.encode())
                await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        events = await read_events(redis, tenant)
        assert [e.event_id for e in events] == ids


class TestGroup:
    async def test_entry_before_first_start(self, redis: Redis, tenant: str) -> None:
        """An entry written before any consumer or group existed is processed."""
        await redis.xadd(ingest_stream(tenant), standard_fields(tenant))

        async with running_consumer(tenant):
            await wait_processed(redis, ingest_stream(tenant))

        assert len(await read_events(redis, tenant)) == 1

    async def test_entry_while_stopped(self, redis: Redis, tenant: str) -> None:
        """An entry written while the consumer was stopped is processed on restart."""
        async with running_consumer(tenant):
            await wait_processed(redis, ingest_stream(tenant))

        await redis.xadd(ingest_stream(tenant), standard_fields(tenant))

        async with running_consumer(tenant):
            await wait_processed(redis, ingest_stream(tenant))

        assert len(await read_events(redis, tenant)) == 1

    async def test_restart_reads_new_entries(self, redis: Redis, tenant: str) -> None:
        """After a restart on an existing group, new entries are still read."""
        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant))

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant))

        assert len(await read_events(redis, tenant)) == 2

    async def test_existing_group_kept(self, redis: Redis, tenant: str) -> None:
        """A group created elsewhere is used as it is, not recreated."""
        await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
        await redis.xgroup_create(ingest_stream(tenant), INGEST_GROUP, id="$")

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant))

        assert len(await read_events(redis, tenant)) == 1

    async def test_unreachable_redis_raises(self, tenant: str) -> None:
        """Starting against a closed port raises instead of idling."""
        app = create_app(config_for(tenant), "redis://127.0.0.1:1/9", "test")

        with pytest.raises(RedisError):
            async with app:
                pass

    def test_empty_consumer_name_rejected(self, tenant: str) -> None:
        """A consumer needs a name in the group."""
        with pytest.raises(ValueError, match="consumer_name is empty"):
            create_app(config_for(tenant), redis_url(), "")


class TestDeadLetter:
    async def test_corrupt_entry(self, redis: Redis, tenant: str) -> None:
        """An entry without a body is dead-lettered with its fields and the reason."""
        fields = standard_fields(tenant)
        del fields["body"]

        before_ms = int(time.time() * 1000)
        async with running_consumer(tenant):
            entry_id = await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))
        after_ms = int(time.time() * 1000)

        dead = await read_dead_letters(redis, tenant)
        assert len(dead) == 1
        record = dead[0]
        for name, value in fields.items():
            assert record[name.encode()] == value
        assert record[b"error"] == b"missing field 'body'"
        assert record[b"error_type"] == b"EntryError"
        assert record[b"stream"] == ingest_stream(tenant).encode()
        assert record[b"entry_id"] == entry_id
        assert before_ms <= int(record[b"failed_at"]) <= after_ms
        assert await read_events(redis, tenant) == []

    async def test_pending_back_to_zero(self, redis: Redis, tenant: str) -> None:
        """A dead-lettered entry is acknowledged, so nothing stays pending."""
        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), {"garbage": b"1"})
            await wait_processed(redis, ingest_stream(tenant))
            read_all, pending = await group_state(redis, ingest_stream(tenant))

        assert read_all
        assert pending == 0
        assert len(await read_dead_letters(redis, tenant)) == 1

    async def test_next_entry_processed(self, redis: Redis, tenant: str) -> None:
        """A corrupt entry does not hold up the entries behind it."""
        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), {"v": b"2"})
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant))

        assert len(await read_dead_letters(redis, tenant)) == 1
        assert len(await read_events(redis, tenant)) == 1

    async def test_binary_fields_kept(self, redis: Redis, tenant: str) -> None:
        """Field names and values that are not UTF-8 are copied byte for byte."""
        fields = {b"\xff\xfename": b"\x00\x80\xff", b"v": b"1", b"body": b"\xc3("}

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        dead = await read_dead_letters(redis, tenant)
        assert len(dead) == 1
        assert dead[0][b"\xff\xfename"] == b"\x00\x80\xff"
        assert dead[0][b"body"] == b"\xc3("
        assert dead[0][b"error_type"] == b"EntryError"

    async def test_invalid_body(self, redis: Redis, tenant: str) -> None:
        """A Graph item without a resource is dead-lettered as an invalid body."""
        fields = ingest_fields(
            tenant=tenant,
            type=GRAPH_NOTIFICATION,
            provider="graph",
            body=graph_notification_body(resource=None),
        )

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        dead = await read_dead_letters(redis, tenant)
        assert len(dead) == 1
        assert dead[0][b"error_type"] == b"InvalidBodyError"
        assert b"$.resource" in dead[0][b"error"]
        assert dead[0][b"body"] == fields["body"]
        assert await read_events(redis, tenant) == []

    async def test_unknown_type(self, redis: Redis, tenant: str) -> None:
        """An entry of an unknown event type is dead-lettered."""
        fields = standard_fields(tenant, type=b"shopify.order")

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        dead = await read_dead_letters(redis, tenant)
        assert len(dead) == 1
        assert dead[0][b"error_type"] == b"UnknownEventTypeError"
        assert await read_events(redis, tenant) == []

    async def test_unicode_digit_time(self, redis: Redis, tenant: str) -> None:
        """A received_at of Unicode digits is dead-lettered, not left pending."""
        fields = standard_fields(tenant, received_at="²".encode())

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), fields)
            await wait_processed(redis, ingest_stream(tenant))

        dead = await read_dead_letters(redis, tenant)
        assert len(dead) == 1
        assert dead[0][b"error_type"] == b"EntryError"

    async def test_misrouted_entry(
        self, redis: Redis, new_tenant: Callable[[], str]
    ) -> None:
        """An entry naming another tenant is dead-lettered in the stream's tenant."""
        acme, globex = new_tenant(), new_tenant()

        async with running_consumer(acme, globex):
            await redis.xadd(ingest_stream(acme), standard_fields(globex))
            await wait_processed(redis, ingest_stream(acme))

        dead = await read_dead_letters(redis, acme)
        assert len(dead) == 1
        assert dead[0][b"error_type"] == b"MisroutedEntryError"
        assert await read_events(redis, acme) == []
        assert await read_events(redis, globex) == []
        assert await read_dead_letters(redis, globex) == []

    async def test_logged_without_body(self, redis: Redis, tenant: str) -> None:
        """The dead-letter log line names the entry and reason, never the body."""
        fields = ingest_fields(
            tenant=tenant,
            type=GRAPH_NOTIFICATION,
            provider="graph",
            body=graph_notification_body(change_type="moved"),
            event_id="evt_logged",
            source="acme-graph",
        )

        with capture_logs() as logs:
            async with running_consumer(tenant):
                entry_id = await redis.xadd(ingest_stream(tenant), fields)
                await wait_processed(redis, ingest_stream(tenant))

        dead_lettered = [e for e in logs if e["event"] == "entry.dead_lettered"]
        assert len(dead_lettered) == 1
        line = dead_lettered[0]
        assert line["tenant"] == tenant
        assert line["source_id"] == "acme-graph"
        assert line["event_id"] == "evt_logged"
        assert line["entry_id"] == entry_id.decode()
        assert line["error_type"] == "InvalidBodyError"
        assert "$.changeType" in line["reason"]
        rendered = repr(logs)
        assert CLIENT_STATE not in rendered
        assert USER_ID not in rendered


class TestLostScript:
    async def test_lost_script_reloaded(self, redis: Redis, tenant: str) -> None:
        """Entries read after Redis lost the publish script are published at once.

        The consumer's visibility timeout is 30 s, longer than the wait, so a
        reclaim cannot be what publishes the second entry.
        """
        stream = ingest_stream(tenant)
        async with running_consumer(tenant):
            await redis.xadd(stream, standard_fields(tenant))
            await wait_processed(redis, stream)
            await redis.script_flush()

            second = standard_fields(
                tenant, event_id=b"evt_after_flush", provider_event_id=b"msg_2"
            )
            await redis.xadd(stream, second)
            await wait_processed(redis, stream)

        events = await read_events(redis, tenant)
        assert [event.event_id for event in events][-1] == "evt_after_flush"
        assert len(events) == 2


class TestNotAcknowledged:
    async def test_publish_failure(self, redis: Redis, tenant: str) -> None:
        """When the publish fails the entry stays pending and is not dead-lettered."""
        # A string key where the events stream belongs makes XADD fail (WRONGTYPE).
        await redis.set(events_stream(tenant), b"not a stream")

        with capture_logs() as logs:
            async with running_consumer(tenant):
                await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
                await wait_processed(redis, ingest_stream(tenant), pending=1)

        assert await redis.exists(dead_letter_stream(tenant)) == 0
        failures = [e for e in logs if e["event"] == "entry.publish_failed"]
        assert len(failures) == 1
        assert "WRONGTYPE" in failures[0]["reason"]

    async def test_publish_failures_rate_limited(
        self, redis: Redis, tenant: str
    ) -> None:
        """Publish failures within one second log one line and hold back the rest."""
        await redis.set(events_stream(tenant), b"not a stream")

        with capture_logs() as logs:
            async with running_consumer(tenant):
                for number in range(3):
                    fields = standard_fields(tenant, event_id=f"evt_{number}".encode())
                    await redis.xadd(ingest_stream(tenant), fields)
                await wait_processed(redis, ingest_stream(tenant), pending=3)

        failures = [e for e in logs if e["event"] == "entry.publish_failed"]
        assert len(failures) == 1
        assert failures[0]["suppressed"] == 0

    async def test_dead_letter_failure(self, redis: Redis, tenant: str) -> None:
        """When the dead-letter write fails the corrupt entry stays pending."""
        await redis.set(dead_letter_stream(tenant), b"not a stream")

        with capture_logs() as logs:
            async with running_consumer(tenant):
                await redis.xadd(ingest_stream(tenant), {"garbage": b"1"})
                await wait_processed(redis, ingest_stream(tenant), pending=1)

        failures = [e for e in logs if e["event"] == "entry.dead_letter_failed"]
        assert len(failures) == 1
        assert failures[0]["error_type"] == "EntryError"

    async def test_pending_entry_not_redelivered(
        self, redis: Redis, tenant: str
    ) -> None:
        """A pending entry is left for reclaiming, and a restart does not read it."""
        await redis.set(events_stream(tenant), b"not a stream")
        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant), pending=1)
        await redis.delete(events_stream(tenant))

        async with running_consumer(tenant):
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant), pending=1)

        events = await read_events(redis, tenant)
        assert len(events) == 1


# Runs run_consumer in its own process, because it installs SIGINT and SIGTERM
# handlers that would otherwise stay in the test process.
RUN_CONSUMER = """
import asyncio
import sys

from hookgate.consumers import run_consumer
from hookgate.tests.consumers.streams import config_for

asyncio.run(run_consumer(config_for(sys.argv[1]), sys.argv[2], "test-process"))
"""


async def start_consumer_process(tenant: str, url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_CONSUMER,
        tenant,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


class TestRunConsumer:
    async def test_stops_on_sigterm(self, redis: Redis, tenant: str) -> None:
        """The consumer processes entries, then exits cleanly on SIGTERM."""
        process = await start_consumer_process(tenant, redis_url())
        try:
            await redis.xadd(ingest_stream(tenant), standard_fields(tenant))
            await wait_processed(redis, ingest_stream(tenant))
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(
                process.communicate(), WAIT_TIMEOUT_S
            )
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

        assert process.returncode == 0, stderr.decode()
        assert b"consumer.started" in stdout
        assert b"consumer.stopped" in stdout
        assert len(await read_events(redis, tenant)) == 1

    async def test_unreachable_redis_exits(self, tenant: str) -> None:
        """Against a closed port the process exits with Redis's connection error."""
        process = await start_consumer_process(tenant, "redis://127.0.0.1:1/9")
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), WAIT_TIMEOUT_S)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

        assert process.returncode != 0
        assert b"redis.exceptions.ConnectionError" in stderr
