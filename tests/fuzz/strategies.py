"""Hypothesis strategies for provider requests: headers, query strings and bodies.

Each strategy mixes arbitrary values with near-valid ones (a correct signature, a
matching token, a well-shaped envelope with one field broken), because random bytes
alone stop at the first check and never reach the JSON decoding behind it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from hookgate.charset import CharsetError, parse_charset
from hookgate.config import HmacSettings
from hookgate.gateway.providers import Incoming
from hookgate.tests.gateway.tokens import SigningKey, unsigned_token

from .harness import (
    GITHUB_SECRET,
    GMAIL_TOKEN,
    GRAPH_CLIENT_STATE,
    HMAC_SECRET,
    STANDARD_KEY,
    STANDARD_KEY_PREVIOUS,
    STRIPE_SECRET,
    TEXT_CHARSETS,
    FakeHeaders,
    hmac_signature,
    rs256_token,
    standard_signature,
)

# Marks a field left out of a drawn JSON object.
ABSENT = object()

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from one of the strategies, chosen in proportion to its weight.

    ``st.one_of`` cannot weight, because it treats repeats of a strategy as one.
    Hypothesis favours the first choice, so put the most common one first.
    """
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


# Mostly UTF-8, which is what providers send, and now and then any charset that
# utf8_json can decode with.
charsets = weighted(
    (12, st.just("utf-8")),
    (1, st.sampled_from(["utf-16", "latin-1"])),
    (1, st.sampled_from(TEXT_CHARSETS)),
)


def one_in(draw: st.DrawFn, n: int) -> bool:
    """Return True with probability about 1/n.

    ``st.integers`` favours its bounds and Hypothesis its first choice, so the
    rare outcome is the last of n choices.
    """
    return bool(draw(st.sampled_from(range(n))) == n - 1)


def field(sensible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw a JSON field: mostly ``sensible``, sometimes left out or any JSON value."""
    return weighted((16, sensible), (1, st.just(ABSENT)), (1, json_values))


def mostly(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    """Draw one of the ``valid`` values six times in seven, else an ``invalid`` one."""
    return weighted((6, st.sampled_from(valid)), (1, st.sampled_from(invalid)))


def json_object(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop the fields drawn as ABSENT."""
    return {name: value for name, value in fields.items() if value is not ABSENT}


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    """Draw arrays or objects nested deeper than msgspec's recursion limit."""
    depth = draw(st.sampled_from([50, 1_000, 10_000, 100_000]))
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def encoded(draw: st.DrawFn, document: Any, charset: str) -> bytes:
    """Serialise ``document`` as JSON in ``charset``, sometimes with a flaw."""
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    try:
        body = text.encode(charset)
    except (UnicodeError, LookupError):
        body = text.encode()
    flaw = draw(st.sampled_from(["none"] * 12 + ["truncate", "append", "bom"]))
    if flaw == "truncate" and body:
        return body[: draw(st.integers(0, len(body) - 1))]
    if flaw == "append":
        return body + draw(st.binary(min_size=1, max_size=8))
    if flaw == "bom":
        return b"\xef\xbb\xbf" + body
    return body


def bodies(documents: st.SearchStrategy[Any], charset: str) -> st.SearchStrategy[bytes]:
    """Draw a body: shaped ``documents`` in ``charset``, or arbitrary bytes."""
    shaped = documents.flatmap(lambda document: encoded(document, charset))
    return weighted(
        (12, shaped),
        (2, st.binary(max_size=300)),
        (2, json_values.flatmap(lambda document: encoded(document, charset))),
        (1, deep_nesting()),
        (1, st.just(b"")),
    )


header_names = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "authorization",
        "content-type",
        "traceparent",
        "tracestate",
        "user-agent",
    ]
) | st.text(min_size=1, max_size=20)
header_pairs = st.lists(st.tuples(header_names, st.text(max_size=80)), max_size=8)
# Headers added to a shaped request: mostly other names, so that the shaped headers
# are seldom made ambiguous by a second copy.
extra_header_pairs = st.lists(
    st.tuples(
        st.sampled_from(["accept", "x-request-id"] * 6) | header_names,
        st.text(max_size=40),
    ),
    max_size=3,
)


@st.composite
def damaged_headers(
    draw: st.DrawFn, pairs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Drop a header now and then, or repeat one with the same or another value."""
    kept = [pair for pair in pairs if not one_in(draw, 20)]
    if one_in(draw, 5):
        name, value = draw(st.sampled_from(pairs))
        kept.append((name, value if draw(st.booleans()) else value + "x"))
    return kept


# Offsets from the clock, not drawn times, so that replaying an example draws the
# same choices. They reach past the default tolerance of 300 s on both sides.
timestamps = weighted(
    (6, st.integers(-400, 400).map(lambda offset: str(int(time.time()) + offset))),
    (1, st.sampled_from(["", "0", "-1", " 1", "1e9", "9" * 30, "٣"])),
    (1, st.text(max_size=12)),
)
event_ids = weighted(
    (6, st.just("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")),
    (2, st.text(min_size=1, max_size=40)),
    (1, st.sampled_from(["", "m" * 256, "m" * 257])),
)


@st.composite
def incomings(
    draw: st.DrawFn,
    body: bytes,
    charset: str,
    pairs: list[tuple[str, str]] | None = None,
    query_string: str | None = None,
) -> Incoming:
    """Wrap a body in a request, adding arbitrary headers and a query string."""
    extra = draw(extra_header_pairs)
    headers = [*(pairs or []), *extra]
    order = draw(st.permutations(range(len(headers))))
    if query_string is None:
        query_string = draw(st.text(max_size=80))
    fake = FakeHeaders(headers[index] for index in order)
    # The gateway takes the charset from the first Content-Type, as here, and
    # answers 415 before any provider runs when it is not a text encoding.
    try:
        effective = parse_charset(fake.get("content-type"))
    except CharsetError:
        assume(False)
    return Incoming(
        headers=fake,
        query_string=query_string,
        body=body,
        charset=effective,
        received_at_ms=time.time_ns() // 1_000_000,
    )


# Standard Webhooks.

standard_documents = (
    st.builds(
        lambda kind, data, extra: json_object({"type": kind, "data": data, **extra}),
        field(st.sampled_from(["invoice.paid", "user.created", ""])),
        field(json_values),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )
    | json_values
)


@st.composite
def signed_standard_requests(draw: st.DrawFn) -> Incoming:
    """Draw a Standard Webhooks request, most of them signed by a source key."""
    charset = draw(charsets)
    body = draw(bodies(standard_documents, charset))
    msg_id = draw(event_ids)
    timestamp = draw(timestamps)
    key = draw(st.sampled_from([STANDARD_KEY, STANDARD_KEY_PREVIOUS, b"other key"]))
    signature = standard_signature(key, msg_id, timestamp, body)
    tokens = draw(
        st.lists(
            st.sampled_from([signature, "v1,", "v2," + signature[3:]])
            | st.text(max_size=50),
            max_size=4,
        )
    )
    if not one_in(draw, 4):
        tokens.insert(draw(st.integers(0, len(tokens))), signature)
    if one_in(draw, 10):
        # Past the header's length limit.
        tokens.append("v1," + "A" * 4100)
    signatures = " ".join(tokens)

    pairs = [
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signatures),
        ("content-type", f"application/json; charset={charset}"),
    ]
    return draw(incomings(body, charset, draw(damaged_headers(pairs))))


# GitHub, Stripe and generic HMAC.


def recased(draw: st.DrawFn, text: str) -> str:
    """Upper-case the hex digits of ``text`` now and then, as senders may."""
    return text.upper() if one_in(draw, 4) else text


@st.composite
def github_requests(draw: st.DrawFn) -> Incoming:
    """Draw a GitHub delivery, most of them signed with the source's secret."""
    charset = draw(charsets)
    body = draw(bodies(standard_documents, charset))
    key = draw(mostly([GITHUB_SECRET.encode()], [b"other secret"]))
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    signature = draw(
        weighted(
            (8, st.just("sha256=" + recased(draw, digest))),
            (1, st.sampled_from(["", "sha256=", "sha1=" + digest[:40], digest])),
            (1, st.text(max_size=80)),
        )
    )
    content_type = draw(
        mostly(
            [f"application/json; charset={charset}"],
            ["application/x-www-form-urlencoded", ""],
        )
    )
    pairs = [
        ("x-hub-signature-256", signature),
        ("x-github-delivery", draw(event_ids)),
        ("x-github-event", draw(mostly(["push", "ping"], ["", "x" * 300]))),
        ("content-type", content_type),
    ]
    return draw(incomings(body, charset, draw(damaged_headers(pairs))))


stripe_documents = st.builds(
    lambda event_id, kind, data: json_object(
        {"id": event_id, "type": kind, "data": data}
    ),
    field(mostly(["evt_1NG8Du2eZvKYlo2CUI79vXWy"], ["", "e" * 257])),
    field(st.sampled_from(["invoice.paid", "customer.created"])),
    field(json_values),
)


@st.composite
def stripe_requests(draw: st.DrawFn) -> Incoming:
    """Draw a Stripe delivery, most of them signed with the source's secret."""
    charset = draw(charsets)
    body = draw(bodies(stripe_documents, charset))
    timestamp = draw(timestamps)
    key = draw(mostly([STRIPE_SECRET.encode()], [b"whsec_other"]))
    content = timestamp.encode() + b"." + body
    digest = hmac.new(key, content, hashlib.sha256).hexdigest()
    fields = [f"t={timestamp}", f"v1={recased(draw, digest)}"]
    fields += draw(
        st.lists(
            st.sampled_from(["v0=abc", "v1=" + "0" * 64, "t=1", "v1=", "x"])
            | st.text(max_size=20),
            max_size=2,
        )
    )
    order = draw(st.permutations(range(len(fields))))
    header = ",".join(fields[index] for index in order)
    pairs = [
        ("stripe-signature", header),
        ("content-type", f"application/json; charset={charset}"),
    ]
    return draw(incomings(body, charset, draw(damaged_headers(pairs))))


@st.composite
def hmac_requests(draw: st.DrawFn, settings: HmacSettings) -> Incoming:
    """Draw a delivery under one generic HMAC scheme, most of them signed."""
    charset = draw(charsets)
    body = draw(bodies(standard_documents, charset))
    timestamp = draw(timestamps) if settings.timestamp_header else None
    event_id = draw(event_ids) if settings.id_header else None
    key = draw(mostly([HMAC_SECRET.encode()], [b"other secret"]))
    signature = hmac_signature(settings, key, body, timestamp, event_id)
    if settings.encoding == "hex":
        signature = settings.prefix + recased(draw, signature[len(settings.prefix) :])
    candidates = [signature]
    if settings.separator is not None:
        candidates += draw(
            st.lists(
                st.sampled_from([settings.prefix, "sha256=00", "v1"])
                | st.text(max_size=20),
                max_size=2,
            )
        )
    order = draw(st.permutations(range(len(candidates))))
    header = (settings.separator or "").join(candidates[index] for index in order)
    pairs = [
        (settings.header, header),
        ("content-type", f"application/json; charset={charset}"),
    ]
    if settings.timestamp_header is not None and timestamp is not None:
        pairs.append((settings.timestamp_header, timestamp))
    if settings.id_header is not None and event_id is not None:
        pairs.append((settings.id_header, event_id))
    return draw(incomings(body, charset, draw(damaged_headers(pairs))))


# Microsoft Graph.

graph_items = st.builds(
    lambda state, subscription, change, resource, data, lifecycle, extra: json_object(
        {
            "clientState": state,
            "subscriptionId": subscription,
            "changeType": change,
            "resource": resource,
            "resourceData": data,
            "lifecycleEvent": lifecycle,
            **extra,
        }
    ),
    field(mostly([GRAPH_CLIENT_STATE], [GRAPH_CLIENT_STATE + "x", ""])),
    field(mostly(["7f105c7d-2dc5-4530-97cd-4e7ae6534c07"], [""])),
    field(mostly(["created", "updated", "deleted"], ["Created", "moved"])),
    field(mostly(["Users/0a1b2c/Messages/AAMk", "/users/x", "me"], [""])),
    field(st.fixed_dictionaries({"id": field(st.text(max_size=8))}).map(json_object)),
    weighted(
        (3, st.just(ABSENT)),
        (1, field(st.sampled_from(["reauthorizationRequired", "subscriptionRemoved"]))),
    ),
    st.dictionaries(
        st.sampled_from(["encryptedContent", "tenantId", "@odata.type"]),
        json_values,
        max_size=1,
    ),
)


def graph_documents(tokens: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw notification collections whose ``validationTokens`` come from ``tokens``."""
    return st.builds(
        lambda value, validation: json_object(
            {"value": value, "validationTokens": validation}
        ),
        field(st.lists(graph_items, min_size=1, max_size=4)),
        weighted((2, st.just(ABSENT)), (1, field(tokens))),
    )


# A quarter are subscription handshakes, the rest notifications.
validation_queries = weighted(
    (5, st.just("")),
    (1, st.text(max_size=60).map(lambda token: f"validationToken={token}")),
    (
        1,
        st.sampled_from(
            [
                "validationToken=",
                "validationToken=a&validationToken=b",
                "validationToken=hello%20graph",
                "validationToken=" + "a" * 1025,
                "validationToken",
                "xvalidationToken=1",
            ]
        ),
    ),
    (1, st.text(max_size=60)),
)


@st.composite
def graph_requests(
    draw: st.DrawFn, tokens: st.SearchStrategy[Any] = json_values
) -> Incoming:
    """Draw a Graph handshake or notification collection."""
    charset = draw(charsets)
    body = draw(bodies(graph_documents(tokens), charset))
    return draw(incomings(body, charset, query_string=draw(validation_queries)))


# Gmail through Pub/Sub push.


@st.composite
def gmail_data(draw: st.DrawFn) -> Any:
    """Draw ``message.data``: base64 of a notification, or something broken."""
    notification = json_object(
        {
            "emailAddress": draw(field(mostly(["user@example.com"], [""]))),
            "historyId": draw(
                field(mostly([9876, 0, "9876", 2**64 - 1], [-1, "", "12a", 2**64]))
            ),
        }
    )
    raw = json.dumps(notification).encode()
    kind = draw(st.sampled_from(["valid"] * 8 + ["unpadded", "urlsafe", "bytes"]))
    if kind == "unpadded":
        return base64.b64encode(raw).decode().rstrip("=")
    if kind == "urlsafe":
        return base64.urlsafe_b64encode(b"\xfb\xff" + raw).decode()
    if kind == "bytes":
        return base64.b64encode(draw(st.binary(max_size=40))).decode()
    return base64.b64encode(raw).decode()


gmail_documents = st.builds(
    lambda message, subscription: json_object(
        {"message": message, "subscription": subscription}
    ),
    field(
        st.builds(
            lambda data, message_id, publish_time, attributes: json_object(
                {
                    "data": data,
                    "messageId": message_id,
                    "publishTime": publish_time,
                    "attributes": attributes,
                }
            ),
            field(gmail_data()),
            field(mostly(["2070443601311540"], [""])),
            field(st.just("2021-02-26T19:13:55.749Z")),
            field(st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
        )
    ),
    field(st.just("projects/p/subscriptions/s")),
)

token_queries = weighted(
    (12, st.just(f"token={GMAIL_TOKEN}")),
    (1, st.just(f"token={GMAIL_TOKEN}&token={GMAIL_TOKEN}")),
    (1, st.just(f"token={GMAIL_TOKEN}&token=x")),
    (1, st.text(max_size=40).map(lambda token: f"token={token}")),
    (1, st.text(max_size=60)),
)


@st.composite
def gmail_requests(
    draw: st.DrawFn, authorization: st.SearchStrategy[str] | None = None
) -> Incoming:
    """Draw a Pub/Sub push, with an Authorization header from ``authorization``."""
    charset = draw(charsets)
    body = draw(bodies(gmail_documents, charset))
    pairs = []
    if authorization is not None and not one_in(draw, 10):
        pairs.append(("authorization", draw(authorization)))
    return draw(incomings(body, charset, pairs, draw(token_queries)))


# Tokens for Pub/Sub OIDC and Graph validation: signed with a published key and
# claims near valid, forged, or not a JWT at all.


@st.composite
def jwt_tokens(
    draw: st.DrawFn, key: SigningKey, claims: Callable[[], dict[str, Any]]
) -> str:
    """Draw a token for ``key``, starting from the valid claims of ``claims()``."""
    payload = claims()
    names = sorted({*payload, "nbf", "azp", "appid", "email_verified"})
    changed = st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
    for name in draw(st.just([]) | changed):
        if draw(st.booleans()):
            payload.pop(name, None)
        else:
            payload[name] = draw(json_values)

    kind = draw(st.sampled_from(["signed"] * 6 + ["forged", "segments", "junk"]))
    if kind == "signed":
        kid = draw(st.sampled_from([key.kid, key.kid, "unpublished-kid"]))
        return rs256_token(key, {"alg": "RS256", "kid": kid}, payload)
    if kind == "forged":
        header = json_object(
            {
                "alg": draw(field(st.sampled_from(["RS256", "HS256", "none"]))),
                "kid": draw(
                    weighted(
                        (8, st.sampled_from([key.kid, "other", ""])),
                        (1, st.just(ABSENT)),
                        (1, st.text(max_size=8)),
                        (1, st.sampled_from([None, 1, ["k"]])),
                    )
                ),
                "typ": draw(field(st.just("JWT"))),
            }
        )
        return unsigned_token(header, payload) + draw(st.text(max_size=40))
    if kind == "segments":
        alphabet = st.sampled_from(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=."
        )
        return ".".join(draw(st.lists(st.text(alphabet, max_size=30), max_size=4)))
    return draw(st.text(max_size=60))


def bearer_headers(tokens: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Draw Authorization values: ``Bearer <token>`` and broken variants of it."""
    schemes = st.sampled_from(["Bearer ", "Bearer ", "bearer  ", "Basic ", "", " "])
    return weighted(
        (8, tokens.map(lambda token: f"Bearer {token}")),
        (1, st.tuples(schemes, tokens).map("".join)),
        (1, st.tuples(tokens, tokens).map(lambda pair: f"Bearer {pair[0]} {pair[1]}")),
        (1, st.text(max_size=40)),
    )
