"""Microsoft Graph change notifications, authenticated by ``clientState``.

Graph first validates a new subscription by POSTing ``?validationToken=...``; the
gateway echoes the decoded token as ``text/plain`` and enqueues nothing. After that,
Graph POSTs collections (``{"value": [...]}``) whose items each carry the
subscription's ``clientState``. Items whose ``clientState`` matches no unexpired
secret of the source are dropped and counted; a collection in which no item matches
is rejected. Each accepted item becomes its own event whose body is the item's bytes
exactly as they appear in the request.

Rich notifications carry ``encryptedContent`` and a ``validationTokens`` list; every
token must verify against the source's ``[sources.graph]`` app id before any item is
accepted. The encrypted content is stored as received: decrypting it is for the
consumer that holds the certificate.
"""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import parse_qs

import msgspec
import structlog

from hookgate import entry
from hookgate.config import GatewaySettings, Source
from hookgate.gateway.errors import Rejection, bad_request, unauthorized
from hookgate.gateway.jwks import JwksCache
from hookgate.gateway.jwt_auth import (
    JwksUnavailable,
    TokenRejected,
    verify_graph_validation_tokens,
)
from hookgate.gateway.providers import (
    TRACE_HEADERS,
    DirectReply,
    EventDraft,
    Incoming,
    decode_json,
    kept_headers,
    matches_any,
)
from hookgate.gateway.stats import counters

log = structlog.get_logger("hookgate.gateway.graph")

# Graph's validation tokens are short opaque strings; anything far longer is not one.
MAX_VALIDATION_TOKEN = 1024


class ResourceData(msgspec.Struct):
    id: str | None = None
    etag: str | None = msgspec.field(default=None, name="@odata.etag")


class Notification(msgspec.Struct, rename="camel"):
    """One item of a notification collection, as far as the gateway reads it."""

    id: str | None = None
    subscription_id: str | None = None
    client_state: str | None = None
    change_type: str | None = None
    resource: str | None = None
    resource_data: ResourceData | None = None
    lifecycle_event: str | None = None
    # msgspec.Raw cannot be part of a union, so an empty Raw means "absent".
    encrypted_content: msgspec.Raw = msgspec.Raw()
    subscription_expiration_date_time: str | None = None


class Collection(msgspec.Struct, rename="camel"):
    value: list[msgspec.Raw]
    validation_tokens: list[str] | None = None


# Starts the id of a notification that is never deduplicated; see _dedup_id.
DELIVERY_PREFIX = "delivery-"

# Bounds on the subscription ids that one warning names, because the sender
# chooses them: Graph's are GUIDs, 36 characters long.
MAX_LOGGED_IDS = 5
MAX_LOGGED_ID_LENGTH = 64

_decode_collection = msgspec.json.Decoder(Collection).decode

_decode_notification = msgspec.json.Decoder(Notification).decode


def _handshake(query_string: str) -> DirectReply | None:
    if "validationToken" not in query_string:
        return None
    tokens = parse_qs(query_string, keep_blank_values=True).get("validationToken")
    if not tokens:
        return None
    if len(tokens) > 1:
        raise bad_request(
            "invalid_validation_token", "validationToken given more than once"
        )
    token = tokens[0]
    if not token or len(token) > MAX_VALIDATION_TOKEN:
        raise bad_request(
            "invalid_validation_token",
            f"validationToken must be 1 to {MAX_VALIDATION_TOKEN} characters",
        )
    return DirectReply(status=200, content_type="text/plain", body=token.encode())


def _matches(client_state: str | None, secrets: tuple[bytes, ...]) -> bool:
    if client_state is None:
        return False
    return matches_any(client_state.encode(), secrets)


CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset(
    {"reauthorizationRequired", "subscriptionRemoved", "missed"}
)


def _check_item(item: Notification, index: int) -> None:
    # The fields the consumer needs, checked here so an accepted item is never
    # dead-lettered later.
    problem = None
    if not item.subscription_id:
        problem = "has no subscriptionId"
    elif item.lifecycle_event is not None:
        if item.lifecycle_event not in LIFECYCLE_EVENTS:
            problem = "has an unknown lifecycleEvent"
    elif item.change_type not in CHANGE_TYPES:
        problem = "has a missing or unknown changeType"
    elif not item.resource:
        problem = "has no resource"
    if problem is not None:
        raise bad_request("invalid_payload", f"notification {index} {problem}")


def _dedup_id(item: Notification, raw: msgspec.Raw) -> str | None:
    """Return the dedup id of one notification, or ``None`` if it has none.

    A notification that carries its own ``id``, an ``@odata.etag`` (Outlook
    resources) or encrypted content differs from a later change to the same
    resource. A digest of the item identifies it, taken with its keys sorted and
    without ``clientState`` and ``subscriptionExpirationDateTime``.

    Other notifications, such as OneDrive's or lifecycle ones, can be equal in
    every field and still report separate changes, so they get no dedup id. A
    repeat of those is written twice rather than a change being dropped.
    """
    versioned = (
        item.id is not None
        or (item.resource_data is not None and item.resource_data.etag is not None)
        or len(item.encrypted_content) > 0
    )
    if item.lifecycle_event is not None or not versioned:
        return None
    try:
        fields = msgspec.json.decode(raw)
    except RecursionError:
        raise bad_request("invalid_json", "body is nested too deeply") from None
    # Neither is part of the change: clientState differs after a secret rotation,
    # the expiration after the subscription was renewed.
    fields.pop("clientState", None)
    fields.pop("subscriptionExpirationDateTime", None)
    canonical = msgspec.json.encode(fields, order="sorted")
    return hashlib.sha256(canonical).hexdigest()[:32]


async def _verify_rich(
    collection: Collection,
    source: Source,
    settings: GatewaySettings,
    jwks: JwksCache | None,
) -> None:
    # Microsoft requires every validation token of a collection that carries
    # encrypted resource data to be valid before any of it is trusted.
    if source.graph is None or jwks is None:
        raise unauthorized(
            "rich_notifications_not_configured",
            "this source has no [sources.graph] app_id to validate tokens against",
        )
    if not collection.validation_tokens:
        raise unauthorized(
            "missing_validation_tokens",
            "a collection with encryptedContent must carry validationTokens",
        )
    try:
        await verify_graph_validation_tokens(
            collection.validation_tokens,
            app_id=source.graph.app_id,
            tenant_ids=source.graph.tenant_ids,
            jwks=jwks,
            leeway_s=source.graph.leeway_s,
        )
    except TokenRejected as exc:
        raise Rejection(exc.status, exc.code, exc.detail) from None
    except JwksUnavailable as exc:
        retry = (("retry-after", str(settings.retry_after_s)),)
        raise Rejection(exc.status, exc.code, exc.detail, retry) from None


async def accept(
    incoming: Incoming,
    source: Source,
    settings: GatewaySettings,
    *,
    jwks: JwksCache | None = None,
) -> list[EventDraft] | DirectReply:
    """Reply to a handshake, or check a collection item by item; see the module."""
    handshake = _handshake(incoming.query_string)
    if handshake is not None:
        return handshake

    collection = decode_json(_decode_collection, incoming, "a notification collection")
    if not collection.value:
        raise bad_request("invalid_payload", "notification collection is empty")
    items = []
    for index, raw in enumerate(collection.value):
        try:
            items.append(_decode_notification(raw))
        except msgspec.ValidationError as exc:
            raise bad_request(
                "invalid_payload", f"notification {index} is invalid: {exc}"
            ) from None
        except RecursionError:
            raise bad_request("invalid_json", "body is nested too deeply") from None

    # Decided on the decoded items, not on the raw bytes, which could spell the
    # key with escapes or in another charset.
    rich = any(len(item.encrypted_content) for item in items)
    if rich or collection.validation_tokens is not None:
        await _verify_rich(collection, source, settings, jwks)

    headers = kept_headers(incoming.headers, TRACE_HEADERS)
    if incoming.charset != "utf-8":
        # Items are sliced from the body after it was turned into UTF-8, so the
        # charset of the request no longer describes them.
        headers["content-type"] = "application/json; charset=utf-8"
    secrets = source.active_secrets(time.time())
    drafts: list[EventDraft] = []
    dropped = 0
    stale_subscriptions: set[str] = set()
    for index, (raw, item) in enumerate(zip(collection.value, items, strict=True)):
        if not _matches(item.client_state, secrets):
            dropped += 1
            subscription = item.subscription_id
            if subscription is not None and len(stale_subscriptions) < MAX_LOGGED_IDS:
                stale_subscriptions.add(subscription[:MAX_LOGGED_ID_LENGTH])
            continue
        _check_item(item, index)
        dedup_id = _dedup_id(item, raw)
        # An entry still records a provider event id, unique to this delivery when
        # the notification has no dedup id.
        provider_event_id = dedup_id or DELIVERY_PREFIX + os.urandom(16).hex()
        drafts.append(
            EventDraft(
                type=entry.GRAPH_LIFECYCLE
                if item.lifecycle_event is not None
                else entry.GRAPH_NOTIFICATION,
                provider_event_id=provider_event_id,
                dedup=dedup_id is not None,
                headers=headers,
                body=bytes(raw),
            )
        )

    if dropped:
        counters["graph.client_state_mismatch"] += dropped
        log.warning(
            "graph.notifications_dropped",
            source_id=source.id,
            tenant=source.tenant,
            reason="client_state_mismatch",
            count=dropped,
            # The subscriptions to renew or delete. Their clientState is never logged.
            subscription_ids=sorted(stale_subscriptions),
        )
    if not drafts:
        raise unauthorized(
            "invalid_client_state", "no notification carried a valid clientState"
        )
    return drafts
