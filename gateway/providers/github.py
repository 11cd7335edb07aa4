"""GitHub webhooks: HMAC-SHA256 of the raw body in ``X-Hub-Signature-256``.

The signature is checked before the body is parsed. ``X-GitHub-Delivery`` is the
provider event id and ``X-GitHub-Event`` names the event; both are kept in the entry.
A ``ping`` delivery is accepted like any other event.

NOTE: GitHub signs the body only. The delivery id and the event name are unsigned and
GitHub sends no timestamp, so anyone who captures one delivery can replay its body
under a new delivery id at any time, and the dedup window catches only an unchanged
id.
"""

from __future__ import annotations

import time

import msgspec

from hookgate import entry
from hookgate.config import GatewaySettings, Source
from hookgate.fastpath import Verdict, verify_github
from hookgate.gateway.errors import Rejection
from hookgate.gateway.providers import (
    TRACE_HEADERS,
    EventDraft,
    Incoming,
    check_signature_length,
    decode_json,
    event_id_header,
    kept_headers,
    missing_headers,
    single_header,
)

SIGNATURE_HEADER = "x-hub-signature-256"
DELIVERY_HEADER = "x-github-delivery"
EVENT_HEADER = "x-github-event"
KEPT_HEADERS = (
    SIGNATURE_HEADER,
    DELIVERY_HEADER,
    EVENT_HEADER,
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    *TRACE_HEADERS,
)

# GitHub's form content type sends the JSON as a `payload` form field.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class Payload(msgspec.Struct):
    """A GitHub payload is a JSON object; the gateway reads none of its fields."""


_decode_payload = msgspec.json.Decoder(Payload).decode

# Status, code and detail for each failed verdict, built anew for every rejection.
_REJECTIONS = {
    Verdict.NO_SIGNATURE: (
        400,
        "invalid_signature_header",
        "X-Hub-Signature-256 is empty",
    ),
    Verdict.MALFORMED_SIGNATURE: (
        400,
        "invalid_signature_header",
        "X-Hub-Signature-256 is not sha256= followed by 64 hex digits",
    ),
    Verdict.MISMATCH: (401, "invalid_signature", "no signature matched"),
}


def accept(
    incoming: Incoming, source: Source, settings: GatewaySettings
) -> list[EventDraft]:
    """Verify and check one GitHub delivery; see the module docstring."""
    headers = incoming.headers
    signature = single_header(headers, SIGNATURE_HEADER)
    if signature is None:
        raise missing_headers(headers, (SIGNATURE_HEADER,))
    delivery_id = event_id_header(headers, DELIVERY_HEADER)
    # Called for its check only: a consumer reads the event name from the kept
    # headers, so two different names must not reach it.
    single_header(headers, EVENT_HEADER)
    check_signature_length(signature, "X-Hub-Signature-256")

    verdict = verify_github(
        source.active_secrets(time.time()), incoming.body, signature.encode()
    )
    if verdict:
        raise Rejection(*_REJECTIONS[Verdict(verdict)])

    content_type = headers.get("content-type") or ""
    if content_type.lower().startswith(FORM_CONTENT_TYPE):
        raise Rejection(
            415,
            "unsupported_content_type",
            "form-encoded GitHub payloads are not accepted; set the webhook's"
            " content type to application/json",
        )
    decode_json(_decode_payload, incoming, "a GitHub event object")

    return [
        EventDraft(
            type=entry.GITHUB_EVENT,
            provider_event_id=delivery_id,
            headers=kept_headers(headers, KEPT_HEADERS),
            body=incoming.body,
        )
    ]
