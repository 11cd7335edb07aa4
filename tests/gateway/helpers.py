"""Builders of provider requests and readers of stream state for gateway tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from standardwebhooks.webhooks import Webhook

from hookgate.tests.conftest import (
    GITHUB_SECRET,
    GRAPH_CLIENT_STATE,
    STANDARD_SECRET,
    STRIPE_SECRET,
    Process,
)


def standard_headers(
    body: bytes,
    *,
    msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    secret: str = STANDARD_SECRET,
    sent_at: datetime | None = None,
) -> dict[str, str]:
    """Sign ``body`` with the reference ``standardwebhooks`` package."""
    sent_at = sent_at or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, sent_at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(tz=UTC) - timedelta(minutes=minutes)


def github_headers(
    body: bytes,
    *,
    secret: str = GITHUB_SECRET,
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    event: str = "push",
) -> dict[str, str]:
    """Sign ``body`` as GitHub does: hex HMAC-SHA256 of the body, keyed by the
    secret's UTF-8 bytes, after ``sha256=``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "x-hub-signature-256": f"sha256={digest}",
        "x-github-delivery": delivery,
        "x-github-event": event,
        "x-github-hook-id": "292430182",
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/044aadd",
    }


def stripe_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Return Stripe's v1 value: hex HMAC-SHA256 of ``{t}.{body}``, keyed by the
    whole ``whsec_`` secret."""
    content = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def stripe_headers(
    body: bytes,
    *,
    secret: str = STRIPE_SECRET,
    sent_at: datetime | None = None,
) -> dict[str, str]:
    """Sign ``body`` as Stripe does, with one ``v1`` signature."""
    timestamp = int((sent_at or datetime.now(tz=UTC)).timestamp())
    signature = stripe_signature(secret, timestamp, body)
    return {
        "stripe-signature": f"t={timestamp},v1={signature}",
        "content-type": "application/json; charset=utf-8",
    }


def hmac_digest(
    secret: str, content: bytes, *, algorithm: str = "sha256", encoding: str = "hex"
) -> str:
    """Return the HMAC of ``content`` keyed by the secret's UTF-8 bytes, encoded."""
    digest = hmac.new(secret.encode(), content, algorithm).digest()
    if encoding == "hex":
        return digest.hex()
    return base64.b64encode(digest).decode()


def unix_now() -> int:
    return int(time.time())


def graph_item(
    *,
    client_state: str = GRAPH_CLIENT_STATE,
    resource: str = "Users/0a1b2c/Messages/AAMkAGI2",
    change_type: str = "created",
    resource_id: str = "AAMkAGI2",
    etag: str = 'W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"',
) -> dict[str, object]:
    return {
        "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
        "subscriptionExpirationDateTime": "2026-12-05T18:23:45.9356913Z",
        "changeType": change_type,
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": resource,
            "@odata.etag": etag,
            "id": resource_id,
        },
        "clientState": client_state,
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
    }


def graph_lifecycle(
    event: str = "reauthorizationRequired", client_state: str = GRAPH_CLIENT_STATE
) -> dict[str, object]:
    return {
        "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
        "subscriptionExpirationDateTime": "2026-12-05T18:23:45.9356913Z",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        "clientState": client_state,
        "lifecycleEvent": event,
    }


def gmail_push(
    email: str = "user@example.com",
    history_id: int = 9876543,
    message_id: str = "2070443601311540",
) -> bytes:
    data = json.dumps({"emailAddress": email, "historyId": history_id}).encode()
    envelope = {
        "message": {
            "attributes": {},
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": "2026-12-04T19:13:55.749Z",
            "publish_time": "2026-12-04T19:13:55.749Z",
        },
        "subscription": "projects/myproject/subscriptions/mysubscription",
    }
    return json.dumps(envelope).encode()


def all_entries(
    client: redis.Redis,
) -> dict[str, list[tuple[bytes, dict[bytes, bytes]]]]:
    """Return every hookgate stream with its entries, by key name."""
    streams = {}
    for key in client.scan_iter(match="hg:*", count=1000):
        if client.type(key) == b"stream":
            streams[key.decode()] = client.xrange(key)
    return streams


def entry_count(client: redis.Redis) -> int:
    return sum(len(entries) for entries in all_entries(client).values())


def log_records(process: Process) -> list[dict[str, Any]]:
    """Return the JSON log lines of ``process``, skipping any other output."""
    records = []
    for line in process.log().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
