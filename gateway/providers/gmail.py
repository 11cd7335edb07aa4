"""Gmail notifications through a Pub/Sub push subscription.

A source authenticates pushes either by the OIDC token that Pub/Sub signs (when it
has ``[sources.oidc]``) or by a token that the push endpoint URL carries as
``?token=...``, compared in constant time with the source's unexpired secrets. The
envelope's ``message.data`` is base64 of a JSON object with the mailbox's
``emailAddress`` and ``historyId``; both are checked here so that a consumer never
receives a push it cannot use.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated
from urllib.parse import parse_qs

import msgspec

from hookgate import entry
from hookgate.config import GatewaySettings, Source
from hookgate.entry import HISTORY_ID_PATTERN, MAX_HISTORY_ID
from hookgate.gateway.errors import Rejection, bad_request, unauthorized
from hookgate.gateway.jwks import JwksCache
from hookgate.gateway.jwt_auth import (
    JwksUnavailable,
    TokenRejected,
    verify_pubsub_token,
)
from hookgate.gateway.providers import (
    MAX_EVENT_ID_LENGTH,
    TRACE_HEADERS,
    EventDraft,
    Incoming,
    decode_json,
    kept_headers,
    matches_any,
    single_header,
)


class PushMessage(msgspec.Struct, rename="camel"):
    data: str
    message_id: str
    publish_time: str | None = None
    attributes: dict[str, str] | None = None


class PushEnvelope(msgspec.Struct):
    message: PushMessage
    subscription: str


class MailboxNotification(msgspec.Struct, rename="camel"):
    # The same constraints as the consumer's, so an accepted push is never
    # dead-lettered later. Gmail sends historyId as a number or a digit string.
    email_address: Annotated[str, msgspec.Meta(min_length=1)]
    history_id: (
        Annotated[int, msgspec.Meta(ge=0, le=MAX_HISTORY_ID)]
        | Annotated[str, msgspec.Meta(pattern=HISTORY_ID_PATTERN)]
    )


_decode_envelope = msgspec.json.Decoder(PushEnvelope).decode
_decode_notification = msgspec.json.Decoder(MailboxNotification).decode


def _check_token(query_string: str, secrets: tuple[bytes, ...]) -> None:
    tokens = parse_qs(query_string, keep_blank_values=True).get("token")
    if not tokens:
        raise unauthorized("missing_token", "the push URL carries no token parameter")
    if len(tokens) > 1:
        raise bad_request("invalid_token", "token given more than once")
    if not matches_any(tokens[0].encode(), secrets):
        raise unauthorized("invalid_token", "token does not match")


def accept(
    incoming: Incoming, source: Source, settings: GatewaySettings
) -> list[EventDraft]:
    """Authenticate a push by its URL token and check it; see the module docstring."""
    _check_token(incoming.query_string, source.active_secrets(time.time()))
    return _check_push(incoming)


async def accept_oidc(
    incoming: Incoming, source: Source, settings: GatewaySettings, *, jwks: JwksCache
) -> list[EventDraft]:
    """Authenticate a push by the OIDC token Pub/Sub signs, then check it."""
    oidc = source.oidc
    assert oidc is not None
    try:
        await verify_pubsub_token(
            single_header(incoming.headers, "authorization"),
            audience=oidc.audience,
            service_account=oidc.service_account,
            jwks=jwks,
            leeway_s=oidc.leeway_s,
        )
    except TokenRejected as exc:
        raise Rejection(exc.status, exc.code, exc.detail) from None
    except JwksUnavailable as exc:
        raise Rejection(
            exc.status,
            exc.code,
            exc.detail,
            (("retry-after", str(settings.retry_after_s)),),
        ) from None
    return _check_push(incoming)


def _check_push(incoming: Incoming) -> list[EventDraft]:
    envelope = decode_json(_decode_envelope, incoming, "a Pub/Sub push envelope")

    try:
        data = base64.b64decode(envelope.message.data, validate=True)
        _decode_notification(data)
    except (binascii.Error, ValueError, msgspec.DecodeError, RecursionError) as exc:
        detail = "message.data is not base64 of a Gmail notification"
        if isinstance(exc, msgspec.ValidationError):
            detail = f"{detail}: {exc}"
        raise bad_request("invalid_payload", detail) from None

    message_id = envelope.message.message_id
    if not message_id or len(message_id) > MAX_EVENT_ID_LENGTH:
        raise bad_request(
            "invalid_payload",
            f"message.messageId must be 1 to {MAX_EVENT_ID_LENGTH} characters",
        )

    return [
        EventDraft(
            type=entry.GMAIL_PUSH,
            provider_event_id=message_id,
            headers=kept_headers(incoming.headers, TRACE_HEADERS),
            body=incoming.body,
        )
    ]
