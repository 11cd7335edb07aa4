"""Layout of one ingest stream entry, shared by the gateway (writer) and consumers.

An entry is a flat Redis stream record whose field values are bytes. The body field
contains the webhook's bytes as received, after gzip or deflate decoding. For a Graph
collection each entry contains the bytes of its own item, sliced without
re-encoding from the body in UTF-8, which is the body itself unless the
Content-Type names another charset.

Fields, in write order:

===================  =====================================================
``v``                entry layout version (``1``)
``event_id``         hookgate's id for the event, returned to the provider
``type``             event type, see :data:`EVENT_TYPES`
``tenant``           tenant that owns the source
``source``           source id, the ``{source_id}`` of the request URL
``provider``         provider kind of the source
``received_at``      arrival time, Unix milliseconds
``provider_event_id``  the provider's own id for the event, or empty
``headers``          JSON object of the request headers kept for verification
                     and tracing, names in lower case
``body``             raw bytes
===================  =====================================================
"""

from __future__ import annotations

import hashlib
from typing import Any

import hiredis
import msgspec

ENTRY_VERSION = b"1"

FIELDS = (
    "v",
    "event_id",
    "type",
    "tenant",
    "source",
    "provider",
    "received_at",
    "provider_event_id",
    "headers",
    "body",
)

# Event types the gateway writes. Consumers dead-letter any other value.
STANDARD_WEBHOOK = "standard-webhooks.event"
GRAPH_NOTIFICATION = "graph.notification"
GRAPH_LIFECYCLE = "graph.lifecycle"
GMAIL_PUSH = "gmail.push"
GITHUB_EVENT = "github.event"
STRIPE_EVENT = "stripe.event"
HMAC_EVENT = "hmac.event"
EVENT_TYPES = frozenset(
    {
        STANDARD_WEBHOOK,
        GRAPH_NOTIFICATION,
        GRAPH_LIFECYCLE,
        GMAIL_PUSH,
        GITHUB_EVENT,
        STRIPE_EVENT,
        HMAC_EVENT,
    }
)


class IngestEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One ingest stream entry, decoded."""

    event_id: str
    type: str
    tenant: str
    source: str
    provider: str
    received_at: int
    provider_event_id: str
    headers: dict[str, str]
    body: bytes


class EntryError(ValueError):
    """Raised when a stream record is not a valid ingest entry."""


_headers_decoder = msgspec.json.Decoder(dict[str, str])


def _text(fields: dict[bytes, bytes], name: str) -> str:
    try:
        return fields[name.encode()].decode()
    except KeyError:
        raise EntryError(f"missing field {name!r}") from None
    except UnicodeDecodeError:
        raise EntryError(f"field {name!r} is not valid UTF-8") from None


def decode_entry(fields: dict[bytes, bytes]) -> IngestEntry:
    """Decode the fields of a stream record into an :class:`IngestEntry`.

    Raises :class:`EntryError` naming the first field that is missing or invalid.
    """
    version = fields.get(b"v")
    if version != ENTRY_VERSION:
        raise EntryError(
            f"unsupported entry version {version!r}, expected {ENTRY_VERSION!r}"
        )

    received_at = _text(fields, "received_at")
    # 15 digits of milliseconds reach past the year 30000; the bound also keeps
    # int() away from digit strings long enough to raise ValueError.
    if not (received_at.isascii() and received_at.isdigit()) or len(received_at) > 15:
        raise EntryError(
            f"field 'received_at' is not a Unix time in ms: {received_at!r}"
        )

    try:
        headers = _headers_decoder.decode(fields.get(b"headers", b""))
    except msgspec.DecodeError as exc:
        raise EntryError(
            f"field 'headers' is not a JSON object of strings: {exc}"
        ) from None

    body = fields.get(b"body")
    if body is None:
        raise EntryError("missing field 'body'")

    return IngestEntry(
        event_id=_text(fields, "event_id"),
        type=_text(fields, "type"),
        tenant=_text(fields, "tenant"),
        source=_text(fields, "source"),
        provider=_text(fields, "provider"),
        received_at=int(received_at),
        provider_event_id=_text(fields, "provider_event_id"),
        headers=headers,
        body=body,
    )


# Replies of INGEST_SCRIPT, the first element of its two-element array.
INGEST_DUPLICATE = 0
INGEST_WRITTEN = 1
INGEST_FULL = 2

# Writes one entry unless its provider event id was seen within the window or the
# stream is full. It runs as one atomic step, so two concurrent deliveries of one
# event cannot both be written, and the length check costs no extra round trip.
# KEYS: the ingest stream, the seen key. ARGV: window in seconds, event id, maximum
# stream length (0 for none), then the entry's field/value pairs. Returns
# {1, event id} when written, {0, original event id} for a repeat, and {2, ""} when
# the stream already contains the maximum. A repeat gets its original event id even
# when the stream is full, because it writes nothing. A full stream sets no seen
# key, so the provider's retry is written once there is room.
INGEST_SCRIPT = b"""
local original = redis.call('GET', KEYS[2])
if original then
  return {0, original}
end
local max_length = tonumber(ARGV[3])
if max_length > 0 and redis.call('XLEN', KEYS[1]) >= max_length then
  return {2, ''}
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
return {1, ARGV[2]}
"""
INGEST_SCRIPT_SHA = hashlib.sha1(INGEST_SCRIPT).hexdigest().encode()


def pack_ingest(
    stream: bytes,
    seen_key: bytes,
    window_s: int,
    *,
    max_length: int = 0,
    event_id: str,
    type: str,
    tenant: str,
    source: str,
    provider: str,
    received_at: str,
    provider_event_id: str,
    headers: bytes,
    body: bytes,
) -> bytes:
    """Return the RESP bytes of the ``EVALSHA`` that writes one entry once.

    Redis must have :data:`INGEST_SCRIPT` loaded; the gateway loads it on every new
    connection. ``max_length`` is the stream length at which the entry is rejected,
    0 for no limit. The fields go in :data:`FIELDS` order.
    """
    command: Any = (
        b"EVALSHA",
        INGEST_SCRIPT_SHA,
        b"2",
        stream,
        seen_key,
        window_s,
        event_id,
        max_length,
        b"v",
        ENTRY_VERSION,
        b"event_id",
        event_id,
        b"type",
        type,
        b"tenant",
        tenant,
        b"source",
        source,
        b"provider",
        provider,
        b"received_at",
        received_at,
        b"provider_event_id",
        provider_event_id,
        b"headers",
        headers,
        b"body",
        body,
    )
    packed: bytes = hiredis.pack_command(command)
    return packed
