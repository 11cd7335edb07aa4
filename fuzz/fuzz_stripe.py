"""Fuzz target: Stripe ``accept`` on requests read from the input.

Most inputs carry a ``Stripe-Signature`` that this harness computes over the drawn
timestamp and body. Fails on any exception but Rejection, on a rejection that is
not a 4xx JSON error, and on an accepted request that the source's secret did not
sign or whose event does not convert.
"""

from __future__ import annotations

import hashlib
import hmac
import sys

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.errors import Rejection
    from hookgate.gateway.providers import Incoming, stripe

from _inputs import Draw, json_object, silence_logs

from hookgate.tests.fuzz.harness import (
    SETTINGS,
    STRIPE_SECRET,
    STRIPE_SOURCE,
    check_outcome,
    check_rejection,
    stripe_signed,
)


def digest(key: bytes, timestamp: str, body: bytes) -> str:
    content = timestamp.encode() + b"." + body
    return hmac.new(key, content, hashlib.sha256).hexdigest()


def request(draw: Draw) -> Incoming:
    charset = draw.charset()
    body = draw.body(
        lambda: json_object(
            {
                "id": draw.field(
                    lambda: draw.mostly(["evt_1NG8Du2eZvKYlo2C"], ["", "e" * 257])
                ),
                "type": draw.field(lambda: "invoice.paid"),
                "data": draw.field(draw.json_value),
            }
        ),
        charset,
    )
    timestamp = draw.timestamp()
    key = draw.mostly([STRIPE_SECRET.encode()], [b"whsec_other"])
    fields = [f"t={timestamp}", "v1=" + digest(key, timestamp, body)]
    for _ in range(draw.integer(0, 2)):
        extra = draw.choice(["v0=abc", "v1=" + "0" * 64, "t=1", "v1=", draw.text(20)])
        fields.insert(draw.integer(0, len(fields)), extra)
    pairs = [
        ("stripe-signature", ",".join(fields)),
        ("content-type", f"application/json; charset={charset}"),
    ]
    return draw.incoming(body, charset, pairs)


def test_one_input(data: bytes) -> None:
    incoming = request(Draw(data))
    try:
        outcome = stripe.accept(incoming, STRIPE_SOURCE, SETTINGS)
    except Rejection as rejection:
        check_rejection(rejection)
        return
    check_outcome(outcome, STRIPE_SOURCE, convertible=incoming.charset == "utf-8")
    assert stripe_signed(incoming), "accepted a request that the secret did not sign"


def main() -> None:
    silence_logs()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
