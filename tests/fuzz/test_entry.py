"""Property tests of the consumer's parsers: stream records and entry bodies.

``decode_entry`` raises only EntryError, and ``convert_entry`` only ConversionError
subclasses, so that the consumer dead-letters every bad entry instead of stopping.
A converted event also survives the JSON round trip of publishing it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st

from hookgate.config import PROVIDERS
from hookgate.consumers import ConversionError, convert_entry
from hookgate.entry import (
    EVENT_TYPES,
    FIELDS,
    GMAIL_PUSH,
    GRAPH_LIFECYCLE,
    GRAPH_NOTIFICATION,
    STANDARD_WEBHOOK,
    EntryError,
    IngestEntry,
    decode_entry,
)

from .harness import TENANT, check_event
from .strategies import ABSENT, field, json_object, json_values, mostly, weighted

# Past Python's limit on converting digit strings to int (4300 digits), so the
# draws cover decode_entry's own length check and what lies beyond it.
MAX_DIGITS = 4400

texts = st.text(max_size=20).map(str.encode)
field_values = weighted(
    (4, texts),
    (1, st.binary(max_size=20)),
    (1, st.sampled_from([b"", b"1", b"\xff", b"\xc3"])),
)


@st.composite
def received_ats(draw: st.DrawFn) -> bytes:
    return draw(
        weighted(
            (4, st.integers(0, 2**64).map(lambda number: str(number).encode())),
            (1, st.integers(1, MAX_DIGITS).map(lambda size: b"9" * size)),
            (1, st.sampled_from([b"", b"-1", b"1.5", b" 1", "١٢".encode(), b"0x1"])),
            (1, st.binary(max_size=12)),
        )
    )


headers_values = weighted(
    (4, st.dictionaries(st.text(max_size=10), st.text(max_size=10)).map(json.dumps)),
    (1, json_values.map(json.dumps)),
    (1, st.text(max_size=30)),
).map(str.encode) | st.binary(max_size=30)


@st.composite
def record_fields(draw: st.DrawFn) -> dict[bytes, bytes]:
    """Draw stream record fields: a valid entry with some fields missing or bad."""
    fields: dict[bytes, bytes] = {
        b"v": draw(mostly([b"1"], [b"2", b"", b"1 ", b"\xff"])),
        b"received_at": draw(received_ats()),
        b"headers": draw(headers_values),
        b"body": draw(st.binary(max_size=100)),
    }
    for name in FIELDS:
        if name.encode() not in fields:
            fields[name.encode()] = draw(field_values)
    missing = st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)
    for name in draw(missing):
        del fields[name]
    fields.update(draw(st.dictionaries(st.binary(max_size=10), field_values)))
    return fields


class TestDecodeEntry:
    @settings(max_examples=300, deadline=None)
    @given(fields=record_fields())
    def test_record_raises_only_entry_error(self, fields: dict[bytes, bytes]) -> None:
        try:
            decoded = decode_entry(fields)
        except EntryError:
            return

        assert decoded.body == fields[b"body"]
        assert decoded.received_at == int(fields[b"received_at"])

    @settings(max_examples=200, deadline=None)
    @given(
        fields=st.dictionaries(st.binary(max_size=20), st.binary(max_size=40)),
    )
    def test_arbitrary_record_raises_entry_error(
        self, fields: dict[bytes, bytes]
    ) -> None:
        with contextlib.suppress(EntryError):
            decode_entry(fields)


def b64(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


gmail_bodies = st.builds(
    lambda data: json_object({"message": json_object({"data": data})}),
    field(
        weighted(
            (
                4,
                st.builds(
                    lambda email, history: b64(
                        json_object({"emailAddress": email, "historyId": history})
                    ),
                    field(mostly(["user@example.com"], [""])),
                    field(mostly([1, "42", 2**64], [-1, "4x", 2**70, 1.5])),
                ),
            ),
            (1, st.text(max_size=20)),
            (1, json_values.map(b64)),
        )
    ),
)
graph_bodies = st.builds(
    lambda subscription, change, resource, lifecycle: json_object(
        {
            "subscriptionId": subscription,
            "changeType": change,
            "resource": resource,
            "lifecycleEvent": lifecycle,
        }
    ),
    field(mostly(["s-1"], [""])),
    field(mostly(["created", "updated", "deleted"], ["Created", ""])),
    field(mostly(["Users/u1/Messages/m1", "/users/u2", "me"], [""])),
    field(mostly(["reauthorizationRequired", "subscriptionRemoved", "missed"], ["x"])),
)
standard_bodies = (
    st.builds(
        lambda kind, data: json_object({"type": kind, "data": data}),
        field(st.text(max_size=10)),
        field(json_values),
    )
    | json_values
)


BODIES = {
    GMAIL_PUSH: gmail_bodies,
    GRAPH_NOTIFICATION: graph_bodies,
    GRAPH_LIFECYCLE: graph_bodies,
    STANDARD_WEBHOOK: standard_bodies,
}
PROVIDER_OF = {
    GMAIL_PUSH: "gmail-pubsub",
    GRAPH_NOTIFICATION: "graph",
    GRAPH_LIFECYCLE: "graph",
    STANDARD_WEBHOOK: "standard-webhooks",
}


@st.composite
def entry_bodies(draw: st.DrawFn, kind: str) -> bytes:
    """Draw a body shaped for ``kind`` most of the time, then maybe damage it."""
    shaped = BODIES.get(kind, standard_bodies)
    document = draw(weighted((3, shaped), (1, st.one_of(*BODIES.values()))))
    if document is ABSENT:
        return b""
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    return draw(
        weighted(
            (12, st.just(text.encode())),
            (1, st.binary(max_size=60)),
            (1, st.just(b"[" * 100_000)),
            (1, st.just(text.encode() + b"\xff")),
            (1, st.just(text.encode("utf-16"))),
        )
    )


@st.composite
def entries(draw: st.DrawFn) -> IngestEntry:
    """Draw a decoded entry whose type, provider and tenant mostly agree."""
    kind = draw(mostly(sorted(EVENT_TYPES), ["", "graph.Notification", "x"]))
    provider = draw(
        mostly([PROVIDER_OF.get(kind, "graph")], ["", "github", *PROVIDERS])
    )
    return IngestEntry(
        event_id=draw(mostly(["evt_1"], [""])),
        type=kind,
        tenant=draw(mostly([TENANT], ["other", ""])),
        source=draw(st.text(max_size=10)),
        provider=provider,
        received_at=draw(st.integers(0, 2**70)),
        provider_event_id=draw(st.text(max_size=10)),
        headers=draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
        body=draw(entry_bodies(kind)),
    )


class TestConvertEntry:
    @settings(max_examples=300, deadline=None)
    @given(entry=entries())
    def test_entry_converts_or_raises(self, entry: IngestEntry) -> None:
        try:
            event = convert_entry(entry, TENANT)
        except ConversionError as exc:
            # Shown by --hypothesis-show-statistics, to see which checks were reached.
            hypothesis.event(f"raised: {type(exc).__name__}")
            return
        hypothesis.event(f"converted: {type(event).__name__}")

        assert event.tenant == TENANT
        check_event(event)
