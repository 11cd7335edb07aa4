"""Fuzz target: generic HMAC ``accept`` under three schemes, read from the input.

The first choice picks one of the schemes in the harness's configuration; most
inputs then carry a signature that this harness computes under it. Fails on any
exception but Rejection, on a rejection that is not a 4xx JSON error, and on an
accepted request that the source's secret did not sign or whose event does not
convert.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.errors import Rejection
    from hookgate.gateway.providers import Incoming, generic_hmac

from _inputs import Draw, json_object, silence_logs

from hookgate.config import HmacSettings
from hookgate.tests.fuzz.harness import (
    HMAC_SECRET,
    HMAC_SOURCES,
    SETTINGS,
    check_outcome,
    check_rejection,
    hmac_signature,
    hmac_signed,
)

SCHEMES = [
    (source, generic_hmac.Scheme.build(source.hmac))
    for source in HMAC_SOURCES
    if source.hmac is not None
]


def request(draw: Draw, settings: HmacSettings) -> Incoming:
    charset = draw.charset()
    body = draw.body(
        lambda: json_object({"event": draw.field(draw.json_value)}), charset
    )
    timestamp = draw.timestamp() if settings.timestamp_header else None
    event_id = draw.event_id() if settings.id_header else None
    key = draw.mostly([HMAC_SECRET.encode()], [b"other secret"])
    signature = hmac_signature(settings, key, body, timestamp, event_id)
    if settings.encoding == "hex" and draw.one_in(4):
        signature = settings.prefix + signature[len(settings.prefix) :].upper()
    candidates = [signature]
    if settings.separator is not None:
        for _ in range(draw.integer(0, 2)):
            extra = draw.choice([settings.prefix, "sha256=00", " ", draw.text(20)])
            candidates.insert(draw.integer(0, len(candidates)), extra)
    pairs = [
        (settings.header, (settings.separator or "").join(candidates)),
        ("content-type", f"application/json; charset={charset}"),
    ]
    if settings.timestamp_header is not None and timestamp is not None:
        pairs.append((settings.timestamp_header, timestamp))
    if settings.id_header is not None and event_id is not None:
        pairs.append((settings.id_header, event_id))
    return draw.incoming(body, charset, pairs)


def test_one_input(data: bytes) -> None:
    draw = Draw(data)
    source, scheme = draw.choice(SCHEMES)
    incoming = request(draw, scheme.settings)
    try:
        outcome = generic_hmac.accept(incoming, source, SETTINGS, scheme=scheme)
    except Rejection as rejection:
        check_rejection(rejection)
        return
    check_outcome(outcome, source, convertible=incoming.charset == "utf-8")
    assert hmac_signed(incoming, scheme.settings), "accepted an unsigned request"


def main() -> None:
    silence_logs()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
