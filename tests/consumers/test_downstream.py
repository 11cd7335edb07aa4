"""Tests of the downstream entry layout, as subscribers of the events stream see it."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest
from fast_depends.msgspec import MsgSpecSerializer
from faststream import FastStream
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis

from hookgate.consumers import EVENT_FIELD, decode_downstream_event, event_fields
from hookgate.entry import GMAIL_PUSH, GRAPH_LIFECYCLE, STANDARD_WEBHOOK
from hookgate.events import (
    DownstreamEvent,
    MailboxChanged,
    SubscriptionLifecycle,
    WebhookReceived,
)
from hookgate.keys import events_stream, ingest_stream

from .entries import (
    gmail_push_body,
    graph_lifecycle_body,
    ingest_fields,
    standard_webhook_body,
)
from .streams import WAIT_TIMEOUT_S, redis_url, running_consumer, wait_processed

EVENTS: list[DownstreamEvent] = [
    MailboxChanged(
        event_id="evt_1",
        tenant="acme",
        source="acme-gmail",
        provider="gmail-pubsub",
        mailbox="alice@example.com",
        cursor="42",
        received_at=1,
    ),
    WebhookReceived(
        event_id="evt_2",
        tenant="acme",
        source="acme-billing",
        provider="standard-webhooks",
        provider_event_id="msg_1",
        event_type="invoice.paid",
        payload=msgspec.Raw(b'{"type":"invoice.paid","data":{"n":[1,2]}}'),
        received_at=2,
    ),
    SubscriptionLifecycle(
        event_id="evt_3",
        tenant="acme",
        source="acme-graph",
        subscription_id="sub-1",
        lifecycle_event="missed",
        received_at=3,
    ),
]


class TestEventFields:
    @pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
    def test_one_json_field(self, event: DownstreamEvent) -> None:
        """An entry is one field containing the event's JSON with its type tag."""
        fields = event_fields(event)

        assert list(fields) == [EVENT_FIELD]
        assert json.loads(fields[EVENT_FIELD])["type"] == event.__struct_config__.tag

    def test_field_is_faststream_body(self) -> None:
        """The field is the one FastStream reads a stream message body from."""
        assert EVENT_FIELD == "__data__"

    def test_payload_embedded_verbatim(self) -> None:
        """A WebhookReceived payload appears in the JSON byte for byte."""
        event = EVENTS[1]
        assert isinstance(event, WebhookReceived)

        value = event_fields(event)[EVENT_FIELD]

        assert bytes(event.payload) in value

    def test_no_data_member(self) -> None:
        """No event has a top-level "data" member, which FastStream would unwrap."""
        for event in EVENTS:
            assert "data" not in json.loads(event_fields(event)[EVENT_FIELD])


class TestDecodeDownstreamEvent:
    def test_dict_route_cannot_rebuild_payload(self) -> None:
        """Converting a decoded dict fails on the Raw payload, hence the decoder."""
        value = event_fields(EVENTS[1])[EVENT_FIELD]

        with pytest.raises(msgspec.ValidationError, match="payload"):
            msgspec.convert(json.loads(value), DownstreamEvent)

    def test_non_bytes_body_rejected(self) -> None:
        """A message whose body is not bytes is not from an events stream."""

        message = StreamMessage(raw_message={}, body={"type": "mailbox.changed.v1"})

        with pytest.raises(TypeError, match="decode_downstream_event"):
            decode_downstream_event(message)


async def test_faststream_subscriber_typed(redis: Redis, tenant: str) -> None:
    """A downstream FastStream subscriber receives each event as its typed struct."""
    entries = [
        ingest_fields(
            tenant=tenant,
            type=GMAIL_PUSH,
            provider="gmail-pubsub",
            body=gmail_push_body("alice@example.com", 7),
            event_id="evt_gmail",
        ),
        ingest_fields(
            tenant=tenant,
            type=STANDARD_WEBHOOK,
            provider="standard-webhooks",
            body=standard_webhook_body("invoice.paid"),
            event_id="evt_std",
            provider_event_id="msg_1",
        ),
        ingest_fields(
            tenant=tenant,
            type=GRAPH_LIFECYCLE,
            provider="graph",
            body=graph_lifecycle_body("subscriptionRemoved"),
            event_id="evt_life",
        ),
    ]

    received: list[DownstreamEvent] = []
    all_received = asyncio.Event()
    broker = RedisBroker(redis_url(), serializer=MsgSpecSerializer())

    # last_id="0" reads the stream from its start, so the subscriber receives
    # every event no matter when it starts.
    @broker.subscriber(
        stream=StreamSub(events_stream(tenant), last_id="0"),
        decoder=decode_downstream_event,
    )
    async def on_event(event: DownstreamEvent) -> None:
        received.append(event)
        if len(received) == len(entries):
            all_received.set()

    async with running_consumer(tenant), FastStream(broker):
        for fields in entries:
            await redis.xadd(ingest_stream(tenant), fields)
        await wait_processed(redis, ingest_stream(tenant))
        await asyncio.wait_for(all_received.wait(), WAIT_TIMEOUT_S)

    assert [type(e) for e in received] == [
        MailboxChanged,
        WebhookReceived,
        SubscriptionLifecycle,
    ]
    gmail, webhook, lifecycle = received
    assert isinstance(gmail, MailboxChanged)
    assert gmail.event_id == "evt_gmail"
    assert gmail.mailbox == "alice@example.com"
    assert gmail.cursor == "7"
    assert isinstance(webhook, WebhookReceived)
    assert webhook.event_id == "evt_std"
    assert bytes(webhook.payload) == standard_webhook_body("invoice.paid")
    assert isinstance(lifecycle, SubscriptionLifecycle)
    assert lifecycle.lifecycle_event == "subscriptionRemoved"


async def test_plain_reader_gets_json(redis: Redis, tenant: str) -> None:
    """A reader without FastStream decodes the field's value as plain JSON."""
    fields = ingest_fields(
        tenant=tenant,
        type=STANDARD_WEBHOOK,
        provider="standard-webhooks",
        body=standard_webhook_body("invoice.paid"),
        event_id="evt_plain",
    )

    async with running_consumer(tenant):
        await redis.xadd(ingest_stream(tenant), fields)
        await wait_processed(redis, ingest_stream(tenant))

    entries = await redis.xrange(events_stream(tenant))
    assert len(entries) == 1
    document = json.loads(entries[0][1][EVENT_FIELD.encode()])
    assert document["type"] == "webhook.received.v1"
    assert document["event_id"] == "evt_plain"
    assert document["payload"] == json.loads(standard_webhook_body("invoice.paid"))
