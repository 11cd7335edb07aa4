"""Standard Webhooks: HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}``.

The signature is checked before the body is parsed, so unauthenticated bytes never
reach the JSON decoder.
"""

from __future__ import annotations

import time

import msgspec

from hookgate import entry
from hookgate.config import GatewaySettings, Source
from hookgate.fastpath import Verdict, verify_standard
from hookgate.gateway.errors import Rejection, bad_request
from hookgate.gateway.providers import (
    TRACE_HEADERS,
    EventDraft,
    Incoming,
    decode_json,
    kept_headers,
    single_header,
)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

# Largest webhook-id kept; the spec's ids are short, and this one goes into Redis.
MAX_ID_LENGTH = 256
# Room for dozens of signatures during a rotation (each "v1,<base64>" is 47
# characters); a longer header is not a real sender's, and it would be stored.
MAX_SIGNATURE_HEADER = 4096


class Payload(msgspec.Struct):
    """The part of a Standard Webhooks payload the gateway checks."""

    type: str | None = None


_decode_payload = msgspec.json.Decoder(Payload).decode

# Status, code and detail for each failed verdict. Each rejection is built anew when
# raised, because re-raising one exception object grows its traceback every time.
_REJECTIONS = {
    Verdict.BAD_TIMESTAMP: (
        400,
        "invalid_timestamp",
        "webhook-timestamp is not a Unix time in seconds",
    ),
    Verdict.STALE: (
        401,
        "stale_timestamp",
        "webhook-timestamp is outside the allowed tolerance",
    ),
    Verdict.NO_SIGNATURE: (
        400,
        "invalid_signature_header",
        "webhook-signature has no v1 signature",
    ),
    Verdict.MISMATCH: (401, "invalid_signature", "no signature matched"),
}


def accept(
    incoming: Incoming, source: Source, settings: GatewaySettings
) -> list[EventDraft]:
    """Verify and check one Standard Webhooks delivery; see the module docstring."""
    headers = incoming.headers
    msg_id = single_header(headers, "webhook-id")
    timestamp = single_header(headers, "webhook-timestamp")
    signatures = single_header(headers, "webhook-signature")
    if msg_id is None or timestamp is None or signatures is None:
        missing = [name for name in SIGNATURE_HEADERS if headers.get(name) is None]
        raise bad_request(
            "missing_signature_headers", f"missing headers: {', '.join(missing)}"
        )
    if not msg_id or len(msg_id) > MAX_ID_LENGTH:
        raise bad_request(
            "invalid_webhook_id", f"webhook-id must be 1 to {MAX_ID_LENGTH} characters"
        )

    if len(signatures) > MAX_SIGNATURE_HEADER:
        raise bad_request(
            "invalid_signature_header",
            f"webhook-signature is longer than {MAX_SIGNATURE_HEADER} characters",
        )

    now = time.time()
    verdict = verify_standard(
        source.active_secrets(now),
        msg_id.encode(),
        timestamp.encode(),
        incoming.body,
        signatures.encode(),
        int(now),
        settings.timestamp_tolerance_s,
    )
    if verdict:
        raise Rejection(*_REJECTIONS[Verdict(verdict)])

    decode_json(_decode_payload, incoming, "a webhook object")

    return [
        EventDraft(
            type=entry.STANDARD_WEBHOOK,
            provider_event_id=msg_id,
            headers=kept_headers(
                headers,
                TRACE_HEADERS,
                {
                    "webhook-id": msg_id,
                    "webhook-timestamp": timestamp,
                    "webhook-signature": signatures,
                },
            ),
            body=incoming.body,
        )
    ]
