"""Fuzz target: Standard Webhooks ``accept`` on requests read from the input.

Most inputs carry a signature that this harness computes over the drawn body, so
the fuzzer reaches the JSON checks behind the signature. Fails on any exception but
Rejection, on a rejection that is not a 4xx JSON error, and on an accepted request
that no source key signed or whose event does not convert.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.errors import Rejection
    from hookgate.gateway.providers import Incoming, standard

from _inputs import Draw, json_object, silence_logs

from hookgate.tests.fuzz.harness import (
    SETTINGS,
    STANDARD_KEY,
    STANDARD_KEY_PREVIOUS,
    STANDARD_SOURCE,
    check_outcome,
    check_rejection,
    standard_signature,
    standard_signed,
)


def request(draw: Draw) -> Incoming:
    charset = draw.charset()
    body = draw.body(
        lambda: json_object(
            {
                "type": draw.field(lambda: draw.choice(["invoice.paid", ""])),
                "data": draw.field(draw.json_value),
            }
        ),
        charset,
    )
    msg_id = draw.event_id()
    timestamp = draw.timestamp()
    key = draw.mostly([STANDARD_KEY, STANDARD_KEY_PREVIOUS], [b"other key"])
    signature = standard_signature(key, msg_id, timestamp, body)
    tokens = [signature]
    for _ in range(draw.integer(0, 2)):
        tokens.insert(draw.integer(0, len(tokens)), draw.text(50))
    if draw.one_in(10):
        tokens.append("v1," + "A" * 4100)
    pairs = [
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", " ".join(tokens)),
        ("content-type", f"application/json; charset={charset}"),
    ]
    return draw.incoming(body, charset, pairs)


def test_one_input(data: bytes) -> None:
    incoming = request(Draw(data))
    try:
        outcome = standard.accept(incoming, STANDARD_SOURCE, SETTINGS)
    except Rejection as rejection:
        check_rejection(rejection)
        return
    check_outcome(outcome, STANDARD_SOURCE, convertible=incoming.charset == "utf-8")
    assert standard_signed(incoming, STANDARD_SOURCE), (
        "accepted a request that no source key signed"
    )


def main() -> None:
    silence_logs()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
