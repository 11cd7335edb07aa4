"""Fuzz target: ``decode_entry`` on stream records, then ``convert_entry``.

The input becomes the fields of one stream record: the layout's fields with values
drawn as valid, damaged or arbitrary, a body shaped for the drawn event type, and
some unknown fields. Fails when decode_entry raises anything but EntryError, when
convert_entry raises anything but a ConversionError, and when a converted event
does not survive the JSON round trip of publishing it.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.consumers import ConversionError, convert_entry
    from hookgate.entry import EVENT_TYPES, FIELDS, EntryError, decode_entry

from _inputs import Draw, json_object

from hookgate.tests.fuzz.harness import TENANT, check_event

TYPES = sorted(EVENT_TYPES)
PROVIDERS = [
    "gmail-pubsub",
    "graph",
    "standard-webhooks",
    "github",
    "stripe",
    "hmac",
]
# Past Python's limit on converting digit strings to int (4300 digits).
MAX_DIGITS = 4400


def document(draw: Draw, kind: str) -> Any:
    if kind == "gmail.push":
        notification = json_object(
            {
                "emailAddress": draw.field(lambda: "user@example.com"),
                "historyId": draw.field(lambda: draw.mostly([1, "42"], [-1, "x"])),
            }
        )
        data = base64.b64encode(json.dumps(notification).encode()).decode()
        return {"message": json_object({"data": draw.field(lambda: data)})}
    if kind.startswith("graph."):
        return json_object(
            {
                "subscriptionId": draw.field(lambda: "s-1"),
                "changeType": draw.field(lambda: draw.mostly(["created"], ["x"])),
                "resource": draw.field(lambda: "Users/u1/Messages/m1"),
                "lifecycleEvent": draw.field(lambda: "missed"),
            }
        )
    return json_object(
        {"type": draw.field(lambda: draw.text(10)), "data": draw.json_value()}
    )


def record(draw: Draw) -> dict[bytes, bytes]:
    kind = draw.mostly(TYPES, ["", "x", "graph.Notification"])
    body = draw.body(lambda: document(draw, kind), draw.charset())
    received_at = draw.choice(
        [
            str(draw.integer(0, 2**64)),
            "9" * draw.integer(1, MAX_DIGITS),
            draw.choice(["", "-1", "1.5", " 1", "١٢", "0x1"]),
        ]
    )
    headers = draw.choice(
        [json.dumps({draw.text(8): draw.text(8)}), json.dumps(draw.json_value())]
    )
    fields: dict[bytes, bytes] = {
        b"v": draw.mostly([b"1"], [b"2", b"", b"\xff"]),
        b"event_id": b"evt_1",
        b"type": kind.encode(),
        b"tenant": draw.mostly([TENANT], ["other"]).encode(),
        b"source": b"src",
        b"provider": draw.choice(PROVIDERS).encode(),
        b"received_at": received_at.encode(),
        b"provider_event_id": draw.text(10).encode(),
        b"headers": headers.encode(),
        b"body": body,
    }
    for _ in range(draw.integer(0, 2)):
        name = draw.choice([name.encode() for name in FIELDS])
        if draw.one_in(2):
            fields.pop(name, None)
        else:
            fields[name] = draw.binary(20)
    return fields


def test_one_input(data: bytes) -> None:
    draw = Draw(data)
    fields = record(draw)
    try:
        entry = decode_entry(fields)
    except EntryError:
        return
    try:
        event = convert_entry(entry, TENANT)
    except ConversionError:
        return
    check_event(event)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
