"""Downstream event contract: what hookgate's consumers publish for other teams.

Each tenant's events stream (:func:`hookgate.keys.events_stream`) carries JSON
objects of the structs below, told apart by their ``type`` tag. A tag names one
schema version: a change that would break a subscriber gets a new struct with a new
tag (``...v2``), published beside the old one until its subscribers have moved.
Adding an optional field is not breaking.

Each entry keeps the event's JSON in its one field, ``__data__``, the field that
FastStream's Redis parser reads a body from. Decode with :data:`DownstreamEvent`::

    event = msgspec.json.decode(fields[b"__data__"], type=DownstreamEvent)
"""

from __future__ import annotations

import msgspec


class MailboxChanged(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    tag="mailbox.changed.v1",
    tag_field="type",
):
    """Something changed in one mailbox; the subscriber syncs from ``cursor``.

    Gmail and Microsoft Graph notifications both become this event.
    """

    event_id: str
    tenant: str
    source: str
    provider: str
    mailbox: str
    """Email address (Gmail), or for Graph the ``users/{id}`` part of the resource
    (the whole resource when it has no such part)."""
    resource: str | None = None
    """Graph's full ``resource`` path; ``None`` for Gmail."""
    cursor: str | None = None
    """Provider sync position: Gmail's historyId. Graph notifications carry none."""
    change_type: str | None = None
    """Graph's ``changeType`` (created, updated, deleted); ``None`` for Gmail."""
    subscription_id: str | None = None
    received_at: int
    """Arrival time at the gateway, Unix milliseconds."""


class WebhookReceived(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    tag="webhook.received.v1",
    tag_field="type",
):
    """A verified delivery passed through with its payload.

    Standard Webhooks, GitHub, Stripe and generic HMAC sources become this event;
    ``provider`` names which.
    """

    event_id: str
    tenant: str
    source: str
    provider: str
    provider_event_id: str
    event_type: str | None
    """The payload's own ``type`` field when it is a string, or for GitHub the
    ``X-GitHub-Event`` header; None without one."""
    payload: msgspec.Raw
    """The delivery body, embedded as the JSON it was received as."""
    received_at: int


class SubscriptionLifecycle(
    msgspec.Struct,
    kw_only=True,
    frozen=True,
    tag="subscription.lifecycle.v1",
    tag_field="type",
):
    """A Graph lifecycle notification: the subscription needs attention."""

    event_id: str
    tenant: str
    source: str
    subscription_id: str
    lifecycle_event: str
    """``reauthorizationRequired``, ``subscriptionRemoved`` or ``missed``."""
    received_at: int


DownstreamEvent = MailboxChanged | WebhookReceived | SubscriptionLifecycle
