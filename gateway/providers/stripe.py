"""Stripe webhooks: HMAC-SHA256 over ``{t}.{body}`` in ``Stripe-Signature``.

The header is ``t=<unix>,v1=<hex>[,v1=<hex>...]``; during a secret roll Stripe sends
one ``v1`` per active secret. The signature and its timestamp are checked before the
body is parsed, and then the body's top-level ``id`` (``evt_...``) becomes the
provider event id, so a retried event is written once.
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec

from hookgate import entry
from hookgate.config import GatewaySettings, Source
from hookgate.fastpath import Verdict, verify_stripe
from hookgate.gateway.errors import Rejection
from hookgate.gateway.providers import (
    MAX_EVENT_ID_LENGTH,
    TRACE_HEADERS,
    EventDraft,
    Incoming,
    check_signature_length,
    decode_json,
    kept_headers,
    missing_headers,
    single_header,
)

SIGNATURE_HEADER = "stripe-signature"
KEPT_HEADERS = (SIGNATURE_HEADER, *TRACE_HEADERS)


class Payload(msgspec.Struct):
    """The part of a Stripe event the gateway checks."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_LENGTH)]


_decode_payload = msgspec.json.Decoder(Payload).decode

# Status, code and detail for each failed verdict, built anew for every rejection.
_REJECTIONS = {
    Verdict.BAD_TIMESTAMP: (
        400,
        "invalid_timestamp",
        "Stripe-Signature has no single t= Unix time in seconds",
    ),
    Verdict.STALE: (
        401,
        "stale_timestamp",
        "Stripe-Signature t= is outside the allowed tolerance",
    ),
    Verdict.NO_SIGNATURE: (
        400,
        "invalid_signature_header",
        "Stripe-Signature has no v1 signature",
    ),
    Verdict.MALFORMED_SIGNATURE: (
        400,
        "invalid_signature_header",
        "no v1 signature in Stripe-Signature is 64 hex digits",
    ),
    Verdict.MISMATCH: (401, "invalid_signature", "no signature matched"),
}


def accept(
    incoming: Incoming, source: Source, settings: GatewaySettings
) -> list[EventDraft]:
    """Verify and check one Stripe delivery; see the module docstring."""
    headers = incoming.headers
    signature = single_header(headers, SIGNATURE_HEADER)
    if signature is None:
        raise missing_headers(headers, (SIGNATURE_HEADER,))
    check_signature_length(signature, "Stripe-Signature")

    now = time.time()
    verdict = verify_stripe(
        source.active_secrets(now),
        incoming.body,
        signature.encode(),
        int(now),
        settings.timestamp_tolerance_s,
    )
    if verdict:
        raise Rejection(*_REJECTIONS[Verdict(verdict)])

    payload = decode_json(_decode_payload, incoming, "a Stripe event object")

    return [
        EventDraft(
            type=entry.STRIPE_EVENT,
            provider_event_id=payload.id,
            headers=kept_headers(headers, KEPT_HEADERS),
            body=incoming.body,
        )
    ]
