"""Builders of ingest entries and provider bodies, shaped as the gateway writes them."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from hookgate.entry import IngestEntry, decode_entry

RECEIVED_AT = 1_733_300_000_123
SUBSCRIPTION_ID = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
USER_ID = "3A7C9E21-44B1-4C5E-9A0B-2F6E8D1C3B5A"
CLIENT_STATE = "client-state-secret-value"


def ingest_fields(
    *,
    tenant: str,
    type: str,
    provider: str,
    body: bytes,
    source: str = "src-1",
    event_id: str | None = None,
    provider_event_id: str = "",
    received_at: int = RECEIVED_AT,
    headers: dict[str, str] | None = None,
) -> dict[str, bytes]:
    """Return the fields of one ingest entry, in the gateway's write order."""
    return {
        "v": b"1",
        "event_id": (event_id or f"evt_{uuid.uuid4().hex}").encode(),
        "type": type.encode(),
        "tenant": tenant.encode(),
        "source": source.encode(),
        "provider": provider.encode(),
        "received_at": str(received_at).encode(),
        "provider_event_id": provider_event_id.encode(),
        "headers": json.dumps(headers or {"content-type": "application/json"}).encode(),
        "body": body,
    }


def ingest_entry(**kwargs: Any) -> IngestEntry:
    """Return the decoded entry for :func:`ingest_fields` called with ``kwargs``."""
    fields = ingest_fields(**kwargs)
    return decode_entry({name.encode(): value for name, value in fields.items()})


def gmail_push_body(
    email: str = "alice@example.com",
    history_id: int | str = 9876543210,
    *,
    notification: bytes | None = None,
) -> bytes:
    """Return a Pub/Sub push envelope carrying a Gmail notification."""
    if notification is None:
        notification = json.dumps(
            {"emailAddress": email, "historyId": history_id}
        ).encode()
    envelope = {
        "message": {
            "data": base64.b64encode(notification).decode(),
            "messageId": "2070443601311540",
            "publishTime": "2024-12-04T10:00:00.123Z",
            "attributes": {},
        },
        "subscription": "projects/acme/subscriptions/gmail-push",
    }
    return json.dumps(envelope).encode()


def graph_notification_body(
    resource: str = f"Users/{USER_ID}/Messages/AAMkAGI2TG93AAA=",
    change_type: str = "created",
    **overrides: Any,
) -> bytes:
    """Return one Graph change notification item."""
    item: dict[str, Any] = {
        "subscriptionId": SUBSCRIPTION_ID,
        "clientState": CLIENT_STATE,
        "changeType": change_type,
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": resource,
            "id": "AAMkAGI2TG93AAA=",
        },
        "subscriptionExpirationDateTime": "2024-12-07T11:00:00.0000000Z",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
    }
    item.update(overrides)
    return json.dumps(item).encode()


def graph_lifecycle_body(lifecycle_event: str = "reauthorizationRequired") -> bytes:
    """Return one Graph lifecycle notification item."""
    item = {
        "subscriptionId": SUBSCRIPTION_ID,
        "clientState": CLIENT_STATE,
        "lifecycleEvent": lifecycle_event,
        "subscriptionExpirationDateTime": "2024-12-07T11:00:00.0000000Z",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
    }
    return json.dumps(item).encode()


def standard_webhook_body(event_type: Any = "invoice.paid") -> bytes:
    """Return a Standard Webhooks payload whose ``type`` is ``event_type``."""
    payload = {
        "type": event_type,
        "timestamp": "2024-12-04T10:00:00Z",
        "data": {"invoice_id": "inv_123", "amount": 4200, "note": "caf\u00e9"},
    }
    return json.dumps(payload, ensure_ascii=False).encode()
