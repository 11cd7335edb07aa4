"""Layout of downstream stream entries, for the consumer and for its subscribers.

Each entry of a tenant's events stream has one field, ``__data__``, whose value is
the JSON of one :data:`hookgate.events.DownstreamEvent`. ``__data__`` is the field
that FastStream's Redis stream parser reads a message body from, so a FastStream
subscriber receives the JSON as its body. A reader without FastStream takes the
field's value and decodes it as JSON.

A FastStream subscriber gets the typed event with :func:`decode_downstream_event`
as its decoder and a serializer that passes msgspec structs through::

    broker = RedisBroker(url, serializer=MsgSpecSerializer())

    @broker.subscriber(stream="hg:{acme}:events", decoder=decode_downstream_event)
    async def on_event(event: DownstreamEvent) -> None: ...

The decoder is needed because FastStream's default decoding goes through a dict,
and ``msgspec.convert`` cannot rebuild the ``msgspec.Raw`` payload of a
:class:`~hookgate.events.WebhookReceived` from one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from faststream.message import StreamMessage
from faststream.redis.message import DATA_KEY

from hookgate.events import DownstreamEvent

# NOTE: FastStream's parser (checked on 0.7.8) reads a JSON object that has a
# string member "data" as its legacy envelope and takes that member as the body.
# A downstream event must never gain a top-level "data" string field, or
# FastStream subscribers would receive that field instead of the event.
EVENT_FIELD = DATA_KEY

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DownstreamEvent)


def event_fields(event: DownstreamEvent) -> dict[str, bytes]:
    """Encode ``event`` as the fields of one downstream stream entry."""
    return {EVENT_FIELD: _encoder.encode(event)}


def decode_downstream_event(message: StreamMessage[Any]) -> DownstreamEvent:
    """Decode a FastStream message read from an events stream into its typed event.

    Pass it as a subscriber's ``decoder``. Raises :class:`msgspec.ValidationError`
    or :class:`msgspec.DecodeError` when the body is not a known event.
    """
    body = message.body
    if not isinstance(body, bytes):
        raise TypeError(
            f"expected the message body as bytes, got {type(body).__name__}; use"
            " decode_downstream_event only on subscribers of an events stream"
        )
    return _decoder.decode(body)
