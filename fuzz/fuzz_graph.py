"""Fuzz target: Microsoft Graph ``accept`` on requests read from the input.

The first choice picks a source: one without ``[sources.graph]``, one whose keys
come from a refused port, and one whose keys a loopback JWKS server publishes, so
that signed validation tokens reach the claim checks. Fails on any exception but
Rejection, on a rejection that is not a 4xx JSON error (or 503
``jwks_unavailable`` for the refused keys), and on an accepted item without the
source's clientState or whose event does not convert.
"""

from __future__ import annotations

import sys
from typing import Any

import atheris
import msgspec

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.errors import Rejection
    from hookgate.gateway.providers import graph

from _inputs import Draw, json_object, silence_logs

from hookgate.tests.fuzz.harness import (
    GRAPH_CLIENT_STATE,
    GRAPH_SOURCE,
    MICROSOFT_KEY,
    SETTINGS,
    LoopbackKeys,
    check_outcome,
    check_rejection,
    graph_rich_source,
    rs256_token,
)
from hookgate.tests.gateway.tokens import graph_claims, unsigned_token

KEYS: LoopbackKeys


def item(draw: Draw) -> dict[str, Any]:
    fields = {
        "clientState": draw.field(
            lambda: draw.mostly([GRAPH_CLIENT_STATE], [GRAPH_CLIENT_STATE + "x", ""])
        ),
        "subscriptionId": draw.field(lambda: draw.mostly(["7f105c7d"], [""])),
        "changeType": draw.field(
            lambda: draw.mostly(["created", "updated", "deleted"], ["Created"])
        ),
        "resource": draw.field(
            lambda: draw.mostly(["Users/0a1b2c/Messages/AAMk", "me"], [""])
        ),
        "resourceData": draw.field(lambda: {"id": draw.text(8)}),
    }
    if draw.one_in(4):
        fields["lifecycleEvent"] = draw.field(
            lambda: draw.mostly(["reauthorizationRequired", "missed"], ["x"])
        )
    if draw.one_in(6):
        fields[draw.choice(["encryptedContent", "tenantId"])] = draw.json_value()
    return json_object(fields)


def token(draw: Draw) -> str:
    claims = graph_claims()
    for _ in range(draw.integer(0, 2)):
        name = draw.choice([*sorted(claims), "azp", "appid"])
        if draw.one_in(2):
            claims.pop(name, None)
        else:
            claims[name] = draw.json_value()
    kind = draw.integer(0, 8)
    if kind < 6:
        kid = draw.mostly([MICROSOFT_KEY.kid], ["unpublished-kid"])
        return rs256_token(MICROSOFT_KEY, {"alg": "RS256", "kid": kid}, claims)
    if kind == 6:
        header = {"alg": draw.choice(["RS256", "HS256", "none"]), "kid": draw.text(8)}
        return unsigned_token(header, claims) + draw.text(40)
    return draw.text(60)


def collection(draw: Draw) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "value": draw.field(lambda: [item(draw) for _ in range(draw.integer(1, 3))])
    }
    if draw.one_in(3):
        fields["validationTokens"] = draw.field(
            lambda: [token(draw) for _ in range(draw.integer(0, 2))]
        )
    return json_object(fields)


def query_string(draw: Draw) -> str:
    kind = draw.integer(0, 7)
    if kind == 5:
        return "validationToken=" + draw.text(60)
    if kind == 6:
        return draw.choice(
            [
                "validationToken=",
                "validationToken=a&validationToken=b",
                "validationToken=" + "a" * 1025,
            ]
        )
    if kind == 7:
        return draw.text(60)
    return ""


def test_one_input(data: bytes) -> None:
    draw = Draw(data)
    mode = draw.integer(0, 2)
    charset = draw.charset()
    body = draw.body(lambda: collection(draw), charset)
    incoming = draw.incoming(body, charset, [], query_string(draw))
    if mode == 0:
        source, jwks = GRAPH_SOURCE, None
    elif mode == 1:
        source, jwks = graph_rich_source(KEYS.refused_url), KEYS.refused
    else:
        source, jwks = graph_rich_source(KEYS.served_url), KEYS.served

    try:
        outcome = KEYS.run(graph.accept(incoming, source, SETTINGS, jwks=jwks))
    except Rejection as rejection:
        check_rejection(rejection, keys_fetched=mode == 1)
        return
    check_outcome(outcome, source, convertible=True)
    if isinstance(outcome, list):
        for draft in outcome:
            state = msgspec.json.decode(draft.body)["clientState"]
            assert state == GRAPH_CLIENT_STATE, "accepted an item without clientState"


def main() -> None:
    global KEYS
    silence_logs()
    KEYS = LoopbackKeys()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
