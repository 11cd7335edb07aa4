"""Signed requests of each provider, as the load generators send them.

Every builder returns a :class:`SignedRequest` that carries its own provider
event id, so no two requests of one run are deduplicated into one event. Each
builder signs as its provider does and the gateway checks:

- Standard Webhooks: base64 HMAC-SHA256 of ``id.timestamp.body``;
- GitHub: hex HMAC-SHA256 of the body;
- Stripe: hex HMAC-SHA256 of ``t.body``, keyed by the whole ``whsec_`` string;
- Graph: the ``clientState`` in each item;
- Gmail Pub/Sub push: the token in the query string.

Nothing here sends traffic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hookgate.loadtest.micro._payloads import standard_event

JSON_CONTENT = "application/json"


@dataclass(frozen=True)
class SignedRequest:
    """One POST, ready to send: path with query, headers and body."""

    path: str
    headers: dict[str, str]
    body: bytes
    events: int = 1
    """Event ids a 202 carries: the item count of a Graph collection, else 1."""

    def raw(self, host: str) -> bytes:
        """Return the request as HTTP/1.1 bytes on a keep-alive connection."""
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _text(secret: str | bytes) -> str:
    return secret.decode() if isinstance(secret, bytes) else secret


def _bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _unique_tag() -> str:
    return uuid.uuid4().hex


class Standard:
    """Standard Webhooks deliveries with 1 KB bodies, one webhook-id each.

    ``secret`` is the ``whsec_`` string, or the key bytes it encodes, which is
    the form :attr:`hookgate.config.Source.secrets` stores.
    """

    def __init__(
        self, source_id: str, secret: str | bytes, body_bytes: int = 1024
    ) -> None:
        self.path = f"/hooks/{source_id}"
        if isinstance(secret, bytes):
            self.key = secret
        else:
            self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.body = standard_event(body_bytes)

    def build(self) -> SignedRequest:
        msg_id = f"msg_{_unique_tag()}"
        timestamp = str(int(time.time()))
        signed = f"{msg_id}.{timestamp}.".encode() + self.body
        digest = hmac.new(self.key, signed, hashlib.sha256).digest()
        headers = {
            "content-type": JSON_CONTENT,
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
        return SignedRequest(self.path, headers, self.body)


class Graph:
    """Microsoft Graph change notification collections, each item distinct."""

    def __init__(self, source_id: str, client_state: str | bytes) -> None:
        self.path = f"/hooks/{source_id}"
        self.client_state = _text(client_state)

    def build(self, items: int) -> SignedRequest:
        tag = _unique_tag()
        value = []
        for index in range(items):
            message_id = f"AAMkAG{tag}{index:04d}"
            resource = f"Users/a1b2c3d4-e5f6/Messages/{message_id}"
            value.append(
                {
                    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
                    "subscriptionExpirationDateTime": "2026-12-05T18:23:45.9356913Z",
                    "changeType": "created",
                    "resource": resource,
                    "resourceData": {
                        "@odata.type": "#Microsoft.Graph.Message",
                        "@odata.id": resource,
                        "@odata.etag": 'W/"CQAAABYAAACQ2fKdhq8oSKEDSVrdi3lRAAAAAAAA"',
                        "id": message_id,
                    },
                    "clientState": self.client_state,
                    "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
                }
            )
        headers = {"content-type": JSON_CONTENT}
        return SignedRequest(self.path, headers, _compact({"value": value}), items)


class Gmail:
    """Gmail notifications in Pub/Sub push envelopes, authenticated by ``?token=``."""

    def __init__(self, source_id: str, token: str | bytes) -> None:
        # Quoting keeps a token with reserved characters intact in the query.
        self.path = f"/hooks/{source_id}?token={quote(_text(token), safe='')}"

    def build(self) -> SignedRequest:
        history_id = int.from_bytes(os.urandom(4), "big")
        data = _compact({"emailAddress": "user@example.com", "historyId": history_id})
        message_id = str(int.from_bytes(os.urandom(7), "big"))
        envelope = {
            "message": {
                "attributes": {},
                "data": base64.b64encode(data).decode(),
                "messageId": message_id,
                "publishTime": "2026-12-04T18:00:00.123Z",
            },
            "subscription": "projects/bench-project/subscriptions/gmail-push",
        }
        headers = {"content-type": JSON_CONTENT}
        return SignedRequest(self.path, headers, _compact(envelope))


class GitHub:
    """GitHub ``push`` deliveries with ``X-Hub-Signature-256``."""

    def __init__(self, source_id: str, secret: str | bytes) -> None:
        self.path = f"/hooks/{source_id}"
        self.key = _bytes(secret)

    def build(self) -> SignedRequest:
        body = _compact(
            {
                "ref": "refs/heads/main",
                "before": os.urandom(20).hex(),
                "after": os.urandom(20).hex(),
                "repository": {"id": 1296269, "full_name": "octocat/Hello-World"},
                "pusher": {"name": "octocat", "email": "octocat@github.com"},
                "commits": [{"id": os.urandom(20).hex(), "message": "Update README"}],
            }
        )
        digest = hmac.new(self.key, body, hashlib.sha256).hexdigest()
        headers = {
            "content-type": JSON_CONTENT,
            "user-agent": "GitHub-Hookshot/044aadd",
            "x-github-delivery": str(uuid.uuid4()),
            "x-github-event": "push",
            "x-hub-signature-256": f"sha256={digest}",
        }
        return SignedRequest(self.path, headers, body)


class Stripe:
    """Stripe events with one ``v1`` signature in ``Stripe-Signature``."""

    def __init__(self, source_id: str, secret: str | bytes) -> None:
        self.path = f"/hooks/{source_id}"
        # Stripe keys the HMAC with the whole whsec_ string, not its decoded bytes.
        self.key = _bytes(secret)

    def build(self) -> SignedRequest:
        body = _compact(
            {
                "id": f"evt_{_unique_tag()}",
                "object": "event",
                "type": "invoice.paid",
                "created": int(time.time()),
                "data": {"object": {"id": "in_1Qx8LpT4", "amount_paid": 4200}},
            }
        )
        timestamp = int(time.time())
        content = f"{timestamp}.".encode() + body
        digest = hmac.new(self.key, content, hashlib.sha256).hexdigest()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": f"t={timestamp},v1={digest}",
        }
        return SignedRequest(self.path, headers, body)
