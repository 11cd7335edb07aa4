"""Inputs that the property tests once found to break a contract, kept as cases.

Each was a crash or a wrong answer before its fix; the properties draw such inputs
too, and these pin the exact ones.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from hookgate.entry import FIELDS, EntryError, decode_entry
from hookgate.gateway.body import charset_of, utf8_json
from hookgate.gateway.errors import Rejection
from hookgate.gateway.jwks import JwksCache
from hookgate.gateway.providers import Incoming, gmail, graph, standard

from .harness import (
    GMAIL_SOURCE,
    GMAIL_TOKEN,
    GRAPH_CLIENT_STATE,
    GRAPH_SOURCE,
    NON_TEXT_CHARSETS,
    SETTINGS,
    STANDARD_KEY,
    FakeHeaders,
    RefusedPort,
    base64url,
    check_converts,
    gmail_oidc_source,
    graph_rich_source,
    standard_signature,
)

# A body that each failing codec cannot turn into UTF-8 text: the escape codecs
# and UTF-7 decode it to a lone surrogate, and the rest fail on any input.
SURROGATE_BODIES = {
    "raw-unicode-escape": b'"\\ud800"',
    "unicode-escape": b'"\\ud800"',
    "utf-7": b'"+2AA-"',
}


@pytest.mark.parametrize("charset", sorted(NON_TEXT_CHARSETS))
def test_non_text_charset_rejected(charset: str) -> None:
    with pytest.raises(Rejection) as caught:
        charset_of(f"application/json; charset={charset}")

    assert caught.value.status == 415


@pytest.mark.parametrize("charset", sorted(SURROGATE_BODIES))
def test_surrogate_text_rejected(charset: str) -> None:
    with pytest.raises(Rejection) as caught:
        utf8_json(SURROGATE_BODIES[charset], charset)

    assert caught.value.status == 400


def test_signed_body_base64_charset_rejected() -> None:
    body = b'{"type": "invoice.paid"}'
    timestamp = str(int(time.time()))
    headers = FakeHeaders(
        [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", timestamp),
            (
                "webhook-signature",
                standard_signature(STANDARD_KEY, "msg_1", timestamp, body),
            ),
            ("content-type", "application/json; charset=base64"),
        ]
    )
    with pytest.raises(Rejection) as caught:
        charset_of(headers.get("content-type"))

    assert caught.value.status == 415
    assert standard.accept  # the gateway rejects it before any provider runs


def test_long_received_at_raises_entry_error() -> None:
    fields = {name.encode(): b"x" for name in FIELDS}
    fields.update({b"v": b"1", b"headers": b"{}", b"received_at": b"9" * 4301})

    with pytest.raises(EntryError):
        decode_entry(fields)


def gmail_push_body() -> dict[str, object]:
    notification = json.dumps({"emailAddress": "user@example.com", "historyId": 1})
    data = base64.b64encode(notification.encode()).decode()
    return {"message": {"data": data, "messageId": "1"}, "subscription": "s"}


def test_utf16_gmail_push_converts() -> None:
    incoming = Incoming(
        headers=FakeHeaders([("content-type", "application/json; charset=utf-16")]),
        query_string=f"token={GMAIL_TOKEN}",
        body=json.dumps(gmail_push_body()).encode("utf-16"),
        charset="utf-16",
        received_at_ms=0,
    )

    (draft,) = gmail.accept(incoming, GMAIL_SOURCE, SETTINGS)

    check_converts(draft, GMAIL_SOURCE)


ENCRYPTED_ITEM = {
    "subscriptionId": "s1",
    "clientState": GRAPH_CLIENT_STATE,
    "changeType": "created",
    "resource": "Users/u1/Messages/m1",
    "encryptedContent": {"data": "ciphertext"},
}
ENCRYPTED_COLLECTION = json.dumps({"value": [ENCRYPTED_ITEM]})


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        (ENCRYPTED_COLLECTION.encode("utf-16"), "utf-16"),
        (
            ENCRYPTED_COLLECTION.replace("encryptedC", "encrypted\\u0043").encode(),
            "utf-8",
        ),
    ],
    ids=["utf-16", "escaped-key"],
)
def test_encrypted_content_needs_tokens(body: bytes, charset: str) -> None:
    incoming = Incoming(
        headers=FakeHeaders(),
        query_string="",
        body=body,
        charset=charset,
        received_at_ms=0,
    )

    with pytest.raises(Rejection) as caught:
        asyncio.run(graph.accept(incoming, GRAPH_SOURCE, SETTINGS))

    assert caught.value.code == "rich_notifications_not_configured"


# Token headers that PyJWT 2.15.1's get_unverified_header rejects with
# InvalidTokenError, the base class of the DecodeError that jwt_auth catches.
BAD_TOKEN_HEADERS = [
    {"alg": "RS256", "kid": None},
    {"alg": "RS256", "kid": 1},
    {"alg": "RS256", "kid": "k", "crit": "exp"},
    {"alg": "RS256", "kid": "k", "crit": ["exp"]},
]


def forged_token(header: dict[str, object]) -> str:
    return f"{base64url(json.dumps(header).encode())}.{base64url(b'{}')}."


async def accept_with_keys(
    accept: str, header: dict[str, object], port: RefusedPort
) -> object:
    # Both providers reject these tokens before fetching a key, so the refused
    # port is never contacted.
    jwks = JwksCache(port.url, timeout_s=1.0)
    token = forged_token(header)
    try:
        if accept == "gmail":
            incoming = Incoming(
                headers=FakeHeaders([("authorization", f"Bearer {token}")]),
                query_string="",
                body=json.dumps(gmail_push_body()).encode(),
                charset="utf-8",
                received_at_ms=0,
            )
            source = gmail_oidc_source(port.url)
            return await gmail.accept_oidc(incoming, source, SETTINGS, jwks=jwks)
        collection = {"value": [ENCRYPTED_ITEM], "validationTokens": [token]}
        incoming = Incoming(
            headers=FakeHeaders(),
            query_string="",
            body=json.dumps(collection).encode(),
            charset="utf-8",
            received_at_ms=0,
        )
        source = graph_rich_source(port.url)
        return await graph.accept(incoming, source, SETTINGS, jwks=jwks)
    finally:
        await jwks.aclose()


@pytest.mark.parametrize("accept", ["gmail", "graph"])
@pytest.mark.parametrize("header", BAD_TOKEN_HEADERS, ids=repr)
def test_bad_token_header_unauthorized(accept: str, header: dict[str, object]) -> None:
    port = RefusedPort()

    try:
        with pytest.raises(Rejection) as caught:
            asyncio.run(accept_with_keys(accept, header, port))
    finally:
        port.close()

    assert caught.value.status == 401
