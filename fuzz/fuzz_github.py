"""Fuzz target: GitHub ``accept`` on requests read from the input.

Most inputs carry an ``X-Hub-Signature-256`` that this harness computes over the
drawn body. Fails on any exception but Rejection, on a rejection that is not a 4xx
JSON error, and on an accepted request that the source's secret did not sign or
whose event does not convert.
"""

from __future__ import annotations

import hashlib
import hmac
import sys

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.errors import Rejection
    from hookgate.gateway.providers import Incoming, github

from _inputs import Draw, json_object, silence_logs

from hookgate.tests.fuzz.harness import (
    GITHUB_SECRET,
    GITHUB_SOURCE,
    SETTINGS,
    check_outcome,
    check_rejection,
    github_signed,
)


def digest(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def request(draw: Draw) -> Incoming:
    charset = draw.charset()
    body = draw.body(
        lambda: json_object(
            {
                "action": draw.field(lambda: draw.choice(["opened", ""])),
                "hook_id": draw.field(lambda: draw.integer(0, 2**40)),
            }
        ),
        charset,
    )
    key = draw.mostly([GITHUB_SECRET.encode()], [b"other secret"])
    signature = "sha256=" + digest(key, body)
    kind = draw.integer(0, 9)
    if kind == 8:
        signature = signature.upper()
    elif kind == 9:
        signature = draw.choice(["", "sha256=", signature[7:], draw.text(80)])
    content_type = draw.mostly(
        [f"application/json; charset={charset}"],
        ["application/x-www-form-urlencoded", ""],
    )
    pairs = [
        ("x-hub-signature-256", signature),
        ("x-github-delivery", draw.event_id()),
        ("x-github-event", draw.mostly(["push", "ping"], ["", "x" * 300])),
        ("content-type", content_type),
    ]
    return draw.incoming(body, charset, pairs)


def test_one_input(data: bytes) -> None:
    incoming = request(Draw(data))
    try:
        outcome = github.accept(incoming, GITHUB_SOURCE, SETTINGS)
    except Rejection as rejection:
        check_rejection(rejection)
        return
    check_outcome(outcome, GITHUB_SOURCE, convertible=incoming.charset == "utf-8")
    assert github_signed(incoming), "accepted a request that the secret did not sign"


def main() -> None:
    silence_logs()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
