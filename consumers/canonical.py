"""Canonical conversion: one decoded ingest entry to one downstream event.

Pure functions without I/O or logging. Each converter copies ``event_id``,
``tenant``, ``source`` and ``received_at`` from the entry, and raises a
:class:`ConversionError` subclass when the entry cannot become a downstream event;
the consumer then dead-letters the entry.

Error messages go to the dead-letter stream and to logs, so they name the JSON path
and never quote the body. The one exception is an enum field such as ``changeType``:
msgspec quotes the invalid value there.

Exceptions::

    ValueError
    ├── hookgate.entry.EntryError    the record is not a valid ingest entry
    └── ConversionError              a valid entry that yields no downstream event
        ├── MisroutedEntryError      the entry's tenant is not its stream's tenant
        ├── UnknownEventTypeError    ``type`` is not in hookgate.entry.EVENT_TYPES
        ├── ProviderMismatchError    the entry's provider does not send its type
        └── InvalidBodyError         the body does not match its type's schema
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from hookgate.charset import CharsetError, parse_charset, to_utf8
from hookgate.entry import (
    GITHUB_EVENT,
    GMAIL_PUSH,
    GRAPH_LIFECYCLE,
    GRAPH_NOTIFICATION,
    HISTORY_ID_PATTERN,
    HMAC_EVENT,
    MAX_HISTORY_ID,
    STANDARD_WEBHOOK,
    STRIPE_EVENT,
    IngestEntry,
)
from hookgate.events import (
    DownstreamEvent,
    MailboxChanged,
    SubscriptionLifecycle,
    WebhookReceived,
)


class ConversionError(ValueError):
    """Raised when a valid ingest entry cannot become a downstream event."""


class MisroutedEntryError(ConversionError):
    """Raised when an entry names another tenant than the stream it was read from."""


class UnknownEventTypeError(ConversionError):
    """Raised when the entry's ``type`` is not an event type the consumer converts."""


class ProviderMismatchError(ConversionError):
    """Raised when the entry's ``provider`` does not send the entry's ``type``."""


class InvalidBodyError(ConversionError):
    """Raised when the entry's body does not match the schema of its ``type``."""


NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class _PubSubMessage(msgspec.Struct):
    # msgspec decodes a `bytes` field from a base64 JSON string, which is how
    # Pub/Sub push delivers the message data.
    data: bytes


class _PubSubPush(msgspec.Struct):
    message: _PubSubMessage


class _GmailNotification(msgspec.Struct, rename="camel"):
    email_address: NonEmptyStr
    # Gmail documents historyId as an unsigned 64-bit integer, sent as a JSON
    # number or as a string of digits. The bounds (hookgate.entry) stop at the
    # int64 range and 19 digits, which Gmail's ids are far below.
    history_id: (
        Annotated[int, msgspec.Meta(ge=0, le=MAX_HISTORY_ID)]
        | Annotated[str, msgspec.Meta(pattern=HISTORY_ID_PATTERN)]
    )


class _GraphNotification(msgspec.Struct, rename="camel"):
    subscription_id: NonEmptyStr
    change_type: Literal["created", "updated", "deleted"]
    resource: NonEmptyStr


class _GraphLifecycle(msgspec.Struct, rename="camel"):
    subscription_id: NonEmptyStr
    lifecycle_event: Literal["reauthorizationRequired", "subscriptionRemoved", "missed"]


class _StandardPayload(msgspec.Struct):
    type: Any = None


_push_decoder = msgspec.json.Decoder(_PubSubPush)
_gmail_decoder = msgspec.json.Decoder(_GmailNotification)
_graph_notification_decoder = msgspec.json.Decoder(_GraphNotification)
_graph_lifecycle_decoder = msgspec.json.Decoder(_GraphLifecycle)
# Any JSON value is a valid Standard Webhooks, Stripe or generic HMAC payload. Only an
# object can carry the "type" field, and the other members of the union only check
# that the body is JSON.
_standard_decoder = msgspec.json.Decoder(
    _StandardPayload | list[msgspec.Raw] | str | int | float | bool | None
)

# Graph writes "Users/{id}/..." in notifications, while subscriptions are created
# on "/users/{id}/...", so both the case and a leading slash vary.
_GRAPH_USER = re.compile(r"/?users/([^/]+)", re.IGNORECASE)


def mailbox_from_resource(resource: str) -> str:
    """Return the ``users/{id}`` prefix of a Graph resource path.

    The ``users/`` part is returned in lower case, and the id as written. A resource
    without that prefix is returned whole.
    """
    match = _GRAPH_USER.match(resource)
    if match is None:
        return resource
    return f"users/{match.group(1)}"


def gmail_push_event(entry: IngestEntry) -> MailboxChanged:
    """Convert a Gmail Pub/Sub push entry into a :class:`MailboxChanged`.

    The body is a Pub/Sub push envelope whose ``message.data`` is base64 of the
    Gmail notification JSON, ``{"emailAddress": ..., "historyId": ...}``.

    Raises :class:`InvalidBodyError` when the envelope or the notification is
    invalid.
    """
    try:
        push = _push_decoder.decode(entry.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidBodyError(f"invalid {entry.type} body: {exc}") from exc

    try:
        notification = _gmail_decoder.decode(push.message.data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidBodyError(
            f"invalid {entry.type} body: `$.message.data` is not a Gmail"
            f" notification: {exc}"
        ) from exc

    return MailboxChanged(
        event_id=entry.event_id,
        tenant=entry.tenant,
        source=entry.source,
        provider="gmail-pubsub",
        mailbox=notification.email_address,
        cursor=str(notification.history_id),
        received_at=entry.received_at,
    )


def graph_notification_event(entry: IngestEntry) -> MailboxChanged:
    """Convert one Microsoft Graph change notification into a :class:`MailboxChanged`.

    The body is one item of the notification collection, not the collection.

    Raises :class:`InvalidBodyError` when the item lacks ``subscriptionId``,
    ``resource`` or a known ``changeType``.
    """
    try:
        notification = _graph_notification_decoder.decode(entry.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidBodyError(f"invalid {entry.type} body: {exc}") from exc

    return MailboxChanged(
        event_id=entry.event_id,
        tenant=entry.tenant,
        source=entry.source,
        provider="graph",
        mailbox=mailbox_from_resource(notification.resource),
        resource=notification.resource,
        change_type=notification.change_type,
        subscription_id=notification.subscription_id,
        received_at=entry.received_at,
    )


def graph_lifecycle_event(entry: IngestEntry) -> SubscriptionLifecycle:
    """Convert one Graph lifecycle notification into a :class:`SubscriptionLifecycle`.

    Raises :class:`InvalidBodyError` when the item lacks ``subscriptionId`` or its
    ``lifecycleEvent`` is not one that Graph documents.
    """
    try:
        notification = _graph_lifecycle_decoder.decode(entry.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidBodyError(f"invalid {entry.type} body: {exc}") from exc

    return SubscriptionLifecycle(
        event_id=entry.event_id,
        tenant=entry.tenant,
        source=entry.source,
        subscription_id=notification.subscription_id,
        lifecycle_event=notification.lifecycle_event,
        received_at=entry.received_at,
    )


def _payload_type(entry: IngestEntry) -> str | None:
    """Check that the body is UTF-8 JSON and return its string ``type`` member.

    Returns None when the body is not an object or has no string ``type``. Raises
    :class:`InvalidBodyError` when the body is not UTF-8 JSON.
    """
    # msgspec skips the fields it does not need without checking their UTF-8, and
    # the body is embedded verbatim, so check it here to publish only valid JSON.
    try:
        entry.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBodyError(
            f"invalid {entry.type} body: not valid UTF-8 at byte {exc.start}"
        ) from None

    try:
        payload = _standard_decoder.decode(entry.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidBodyError(f"invalid {entry.type} body: {exc}") from exc

    if isinstance(payload, _StandardPayload) and isinstance(payload.type, str):
        return payload.type
    return None


def _webhook_received(
    entry: IngestEntry, provider: str, event_type: str | None
) -> WebhookReceived:
    return WebhookReceived(
        event_id=entry.event_id,
        tenant=entry.tenant,
        source=entry.source,
        provider=provider,
        provider_event_id=entry.provider_event_id,
        event_type=event_type,
        payload=msgspec.Raw(entry.body),
        received_at=entry.received_at,
    )


def standard_webhook_event(entry: IngestEntry) -> WebhookReceived:
    """Convert a Standard Webhooks delivery into a :class:`WebhookReceived`.

    The body is embedded unchanged as ``payload``. ``event_type`` is the payload's
    ``type`` field when the payload is an object and that field is a string.

    Raises :class:`InvalidBodyError` when the body is not UTF-8 JSON.
    """
    return _webhook_received(entry, "standard-webhooks", _payload_type(entry))


def github_event(entry: IngestEntry) -> WebhookReceived:
    """Convert a GitHub delivery into a :class:`WebhookReceived`.

    The body is embedded unchanged as ``payload``. ``event_type`` is the kept
    ``X-GitHub-Event`` header (``push``, ``ping``, ...), or None without one.

    Raises :class:`InvalidBodyError` when the body is not UTF-8 JSON.
    """
    # Called for its check of the body: GitHub names the event in a header instead.
    _payload_type(entry)
    event_type = entry.headers.get("x-github-event") or None
    return _webhook_received(entry, "github", event_type)


def stripe_event(entry: IngestEntry) -> WebhookReceived:
    """Convert a Stripe delivery into a :class:`WebhookReceived`.

    The body is embedded unchanged as ``payload``. ``event_type`` is the event's
    ``type`` field (``invoice.paid``, ...) when it is a string.

    Raises :class:`InvalidBodyError` when the body is not UTF-8 JSON.
    """
    return _webhook_received(entry, "stripe", _payload_type(entry))


def hmac_event(entry: IngestEntry) -> WebhookReceived:
    """Convert a generic HMAC delivery into a :class:`WebhookReceived`.

    The body is embedded unchanged as ``payload``. ``event_type`` is the payload's
    ``type`` field when the payload is an object and that field is a string.

    Raises :class:`InvalidBodyError` when the body is not UTF-8 JSON.
    """
    return _webhook_received(entry, "hmac", _payload_type(entry))


# Event type to the provider that sends it and its converter.
_CONVERTERS: dict[str, tuple[str, Callable[[IngestEntry], DownstreamEvent]]] = {
    GMAIL_PUSH: ("gmail-pubsub", gmail_push_event),
    GRAPH_NOTIFICATION: ("graph", graph_notification_event),
    GRAPH_LIFECYCLE: ("graph", graph_lifecycle_event),
    STANDARD_WEBHOOK: ("standard-webhooks", standard_webhook_event),
    GITHUB_EVENT: ("github", github_event),
    STRIPE_EVENT: ("stripe", stripe_event),
    HMAC_EVENT: ("hmac", hmac_event),
}


def convert_entry(entry: IngestEntry, tenant: str) -> DownstreamEvent:
    """Convert an entry read from ``tenant``'s ingest stream into its downstream event.

    Raises :class:`MisroutedEntryError` when the entry names another tenant, so its
    event is never published to the wrong tenant's stream. Raises
    :class:`UnknownEventTypeError`, :class:`ProviderMismatchError` or
    :class:`InvalidBodyError` when the entry has no downstream event.
    """
    if entry.tenant != tenant:
        raise MisroutedEntryError(
            f"entry names tenant {entry.tenant!r} but was read from the ingest"
            f" stream of tenant {tenant!r}"
        )

    try:
        provider, converter = _CONVERTERS[entry.type]
    except KeyError:
        raise UnknownEventTypeError(
            f"unknown event type {entry.type!r}; expected one of"
            f" {', '.join(sorted(_CONVERTERS))}"
        ) from None

    if entry.provider != provider:
        raise ProviderMismatchError(
            f"event type {entry.type!r} comes from provider {provider!r}, but the"
            f" entry's provider is {entry.provider!r}"
        )

    return converter(_with_utf8_body(entry))


def _with_utf8_body(entry: IngestEntry) -> IngestEntry:
    # The entry keeps the body in the charset it was sent in; every converter
    # decodes UTF-8, as the gateway did when it checked the body.
    try:
        charset = parse_charset(entry.headers.get("content-type"))
        body = to_utf8(entry.body, charset)
    except (CharsetError, UnicodeError) as exc:
        raise InvalidBodyError(f"invalid {entry.type} body: {exc}") from None
    if body is entry.body:
        return entry
    return msgspec.structs.replace(entry, body=body)
