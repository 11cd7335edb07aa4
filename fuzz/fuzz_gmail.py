"""Fuzz target: Gmail ``accept`` and ``accept_oidc`` on pushes read from the input.

The first choice picks how the push authenticates: by the URL token, or by an OIDC
token whose keys come from a refused port or from a loopback JWKS server. That
server publishes the signing key, so signed tokens reach the claim checks and the
envelope behind them. Fails on any exception but Rejection, on a rejection that is
not a 4xx JSON error (or 503 ``jwks_unavailable`` for the refused keys), and on an
accepted push without the source's token or whose event does not convert.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any
from urllib.parse import parse_qs

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.errors import Rejection
    from hookgate.gateway.providers import gmail

from _inputs import Draw, json_object, silence_logs

from hookgate.tests.fuzz.harness import (
    GMAIL_SOURCE,
    GMAIL_TOKEN,
    GOOGLE_KEY,
    SETTINGS,
    LoopbackKeys,
    check_outcome,
    check_rejection,
    gmail_oidc_source,
    rs256_token,
)
from hookgate.tests.gateway.tokens import pubsub_claims, unsigned_token

KEYS: LoopbackKeys


def data_field(draw: Draw) -> str:
    notification = json_object(
        {
            "emailAddress": draw.field(lambda: draw.mostly(["user@example.com"], [""])),
            "historyId": draw.field(
                lambda: draw.mostly([9876, "9876", 2**64 - 1], [-1, "12a", 2**64])
            ),
        }
    )
    raw = json.dumps(notification).encode()
    kind = draw.integer(0, 10)
    if kind == 8:
        return base64.b64encode(raw).decode().rstrip("=")
    if kind == 9:
        return base64.urlsafe_b64encode(b"\xfb\xff" + raw).decode()
    if kind == 10:
        return base64.b64encode(draw.binary(40)).decode()
    return base64.b64encode(raw).decode()


def envelope(draw: Draw) -> dict[str, Any]:
    message = json_object(
        {
            "data": draw.field(lambda: data_field(draw)),
            "messageId": draw.field(lambda: draw.mostly(["2070443601311540"], [""])),
            "publishTime": draw.field(lambda: "2021-02-26T19:13:55.749Z"),
            "attributes": draw.field(lambda: {draw.text(5): draw.text(5)}),
        }
    )
    return json_object(
        {
            "message": draw.field(lambda: message),
            "subscription": draw.field(lambda: "projects/p/subscriptions/s"),
        }
    )


def authorization(draw: Draw) -> str:
    claims = pubsub_claims()
    for _ in range(draw.integer(0, 2)):
        name = draw.choice([*sorted(claims), "nbf"])
        if draw.one_in(2):
            claims.pop(name, None)
        else:
            claims[name] = draw.json_value()
    kind = draw.integer(0, 9)
    if kind < 7:
        kid = draw.mostly([GOOGLE_KEY.kid], ["unpublished-kid"])
        token = rs256_token(GOOGLE_KEY, {"alg": "RS256", "kid": kid}, claims)
    elif kind == 7:
        header = {"alg": draw.choice(["RS256", "HS256", "none"]), "kid": draw.text(8)}
        token = unsigned_token(header, claims) + draw.text(40)
    else:
        token = draw.text(60)
    scheme = draw.choice(["Bearer ", "Bearer ", "bearer  ", "Basic ", "", draw.text(8)])
    return scheme + token


def query_string(draw: Draw) -> str:
    kind = draw.integer(0, 11)
    if kind == 8:
        return f"token={GMAIL_TOKEN}&token={GMAIL_TOKEN}"
    if kind == 9:
        return f"token={GMAIL_TOKEN}&token=x"
    if kind == 10:
        return "token=" + draw.text(40)
    if kind == 11:
        return draw.text(60)
    return f"token={GMAIL_TOKEN}"


def test_one_input(data: bytes) -> None:
    draw = Draw(data)
    mode = draw.integer(0, 2)
    charset = draw.charset()
    body = draw.body(lambda: envelope(draw), charset)
    pairs = [("content-type", f"application/json; charset={charset}")]
    if mode > 0:
        pairs.append(("authorization", authorization(draw)))
    incoming = draw.incoming(body, charset, pairs, query_string(draw))

    if mode == 0:
        source = GMAIL_SOURCE
    elif mode == 1:
        source = gmail_oidc_source(KEYS.refused_url)
    else:
        source = gmail_oidc_source(KEYS.served_url)
    try:
        if mode == 0:
            outcome = gmail.accept(incoming, source, SETTINGS)
        else:
            jwks = KEYS.refused if mode == 1 else KEYS.served
            outcome = KEYS.run(gmail.accept_oidc(incoming, source, SETTINGS, jwks=jwks))
    except Rejection as rejection:
        check_rejection(rejection, keys_fetched=mode == 1)
        return

    check_outcome(outcome, source, convertible=charset == "utf-8")
    assert mode != 1, "accepted a push whose signing keys were unreachable"
    if mode == 0:
        tokens = parse_qs(incoming.query_string, keep_blank_values=True).get("token")
        assert tokens == [GMAIL_TOKEN], "accepted a push without the source's token"


def main() -> None:
    global KEYS
    silence_logs()
    KEYS = LoopbackKeys()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
