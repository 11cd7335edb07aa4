"""Webhooks through a real gateway and a real consumer process, into events streams."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
import redis

from hookgate.consumers.downstream import EVENT_FIELD
from hookgate.events import DownstreamEvent, MailboxChanged, WebhookReceived
from hookgate.tests.conftest import (
    GMAIL_TOKEN,
    HMAC_SECRET,
    Process,
    RedisServer,
    start_hookgate,
    write_config,
)
from hookgate.tests.gateway.helpers import (
    github_headers,
    gmail_push,
    graph_item,
    hmac_digest,
    standard_headers,
    stripe_headers,
)


@pytest.fixture
def consumer(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> Iterator[Process]:
    config = write_config(tmp_path)
    process = start_hookgate(
        ["consume", "--config", str(config), "--name", "e2e"],
        tmp_path,
        redis_server.url,
    )
    yield process
    process.stop()


def wait_for_events(
    client: redis.Redis, stream: str, count: int, timeout: float = 15
) -> list[DownstreamEvent]:
    """Return the first ``count`` events of ``stream``, waiting for them to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        entries = client.xrange(stream)
        if len(entries) >= count:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{stream} has {len(entries)} of {count} events")
        time.sleep(0.05)
    return [decode_event(fields) for _, fields in entries[:count]]


def decode_event(fields: dict[bytes, bytes]) -> DownstreamEvent:
    # A reader without FastStream decodes the one field that contains the event JSON.
    raw = fields[EVENT_FIELD.encode()]
    return msgspec.json.decode(raw, type=DownstreamEvent)  # type: ignore[arg-type]


def test_standard_webhook_reaches_downstream(
    http: httpx.Client, redis_client: redis.Redis, consumer: Process
) -> None:
    body = b'{"type":"invoice.paid","data":{"id":"inv_7"}}'

    response = http.post(
        "/hooks/acme-mail", content=body, headers=standard_headers(body)
    )

    assert response.status_code == 202
    (event,) = wait_for_events(redis_client, "hg:{acme}:events", 1)
    assert isinstance(event, WebhookReceived)
    assert event.event_id == response.json()["event_id"]
    assert event.event_type == "invoice.paid"
    assert json.loads(bytes(event.payload)) == json.loads(body)
    assert event.source == "acme-mail"


def test_graph_and_gmail_become_mailbox_changed(
    http: httpx.Client, redis_client: redis.Redis, consumer: Process
) -> None:
    graph = json.dumps({"value": [graph_item(resource="Users/u-42/Messages/m1")]})
    gmail = gmail_push(email="ops@globex.example", history_id=123456)

    graph_response = http.post("/hooks/acme-outlook", content=graph.encode())
    gmail_response = http.post(
        "/hooks/globex-gmail", params={"token": GMAIL_TOKEN}, content=gmail
    )

    assert graph_response.status_code == 202
    assert gmail_response.status_code == 202
    (outlook,) = wait_for_events(redis_client, "hg:{acme}:events", 1)
    (google,) = wait_for_events(redis_client, "hg:{globex}:events", 1)
    assert isinstance(outlook, MailboxChanged)
    assert outlook.mailbox == "users/u-42"
    assert outlook.provider == "graph"
    assert outlook.event_id == graph_response.json()["event_id"]
    assert isinstance(google, MailboxChanged)
    assert google.mailbox == "ops@globex.example"
    assert google.cursor == "123456"
    assert google.event_id == gmail_response.json()["event_id"]


def test_signed_providers_become_webhook_received(
    http: httpx.Client, redis_client: redis.Redis, consumer: Process
) -> None:
    github = b'{"zen":"Design for failure.","hook_id":1}'
    stripe = b'{"id":"evt_e2e","object":"event","type":"invoice.paid","data":{}}'
    generic = b'{"type":"order.created","data":{"order":"ord_1"}}'

    responses = {
        "github": http.post(
            "/hooks/acme-github",
            content=github,
            headers=github_headers(github, event="ping"),
        ),
        "stripe": http.post(
            "/hooks/acme-stripe", content=stripe, headers=stripe_headers(stripe)
        ),
        "hmac": http.post(
            "/hooks/acme-hmac-plain",
            content=generic,
            headers={"x-plain-signature": hmac_digest(HMAC_SECRET, generic)},
        ),
    }

    assert {name: r.status_code for name, r in responses.items()} == {
        "github": 202,
        "stripe": 202,
        "hmac": 202,
    }
    events = wait_for_events(redis_client, "hg:{acme}:events", 3)
    by_provider = {
        event.provider: event for event in events if isinstance(event, WebhookReceived)
    }
    assert set(by_provider) == {"github", "stripe", "hmac"}
    for name, response in responses.items():
        assert by_provider[name].event_id == response.json()["event_id"]
    assert by_provider["github"].event_type == "ping"
    assert by_provider["stripe"].event_type == "invoice.paid"
    assert by_provider["stripe"].provider_event_id == "evt_e2e"
    assert by_provider["hmac"].event_type == "order.created"


def test_consumer_acknowledges_entries(
    http: httpx.Client, redis_client: redis.Redis, consumer: Process
) -> None:
    for n in range(20):
        body = json.dumps({"type": "ping", "data": {"n": n}}).encode()
        headers = standard_headers(body, msg_id=f"msg_{n}")
        assert (
            http.post("/hooks/acme-mail", content=body, headers=headers).status_code
            == 202
        )

    events = wait_for_events(redis_client, "hg:{acme}:events", 20)

    assert len({event.event_id for event in events}) == 20
    deadline = time.monotonic() + 10
    while redis_client.xpending("hg:{acme}:ingest", "hookgate")["pending"]:
        assert time.monotonic() < deadline, "entries still pending"
        time.sleep(0.05)
