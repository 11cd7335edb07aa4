"""Stripe deliveries against a real gateway process and Redis."""

from __future__ import annotations

import base64
import json

import httpx
import redis

from hookgate.tests.conftest import (
    STRIPE_SECRET,
    STRIPE_SECRET_EXPIRED,
    STRIPE_SECRET_NEXT,
)
from hookgate.tests.gateway.helpers import (
    entry_count,
    minutes_ago,
    stripe_headers,
    stripe_signature,
    unix_now,
)

URL = "/hooks/acme-stripe"
EVENT_ID = "evt_1QXb2cLkdIwHu7ix0pM6Tq3R"
BODY = (
    b'{"id":"evt_1QXb2cLkdIwHu7ix0pM6Tq3R","object":"event","type":"invoice.paid",'
    b'"api_version":"2024-06-20","data":{"object":{"id":"in_1","object":"invoice"}}}'
)


def signed_header(*fields: str) -> dict[str, str]:
    """Return headers whose Stripe-Signature is ``fields`` joined with commas."""
    return {"stripe-signature": ",".join(fields), "content-type": "application/json"}


def test_signed_delivery_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(URL, content=BODY, headers=stripe_headers(BODY))

    assert response.status_code == 202
    event_id = response.json()["event_id"]
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    fields = entry[1]
    assert fields[b"event_id"] == event_id.encode()
    assert fields[b"type"] == b"stripe.event"
    assert fields[b"provider"] == b"stripe"
    assert fields[b"source"] == b"acme-stripe"
    assert fields[b"provider_event_id"] == EVENT_ID.encode()
    assert fields[b"body"] == BODY
    assert "stripe-signature" in json.loads(fields[b"headers"])
    assert entry_count(redis_client) == 1


def test_tampered_body_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = stripe_headers(BODY)

    response = http.post(URL, content=BODY.replace(b"in_1", b"in_2"), headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_signature",
        "detail": "no signature matched",
    }
    assert entry_count(redis_client) == 0


def test_tampered_timestamp_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    signed_at = unix_now()
    signature = stripe_signature(STRIPE_SECRET, signed_at, BODY)

    response = http.post(
        URL,
        content=BODY,
        headers=signed_header(f"t={signed_at - 1}", f"v1={signature}"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert entry_count(redis_client) == 0


def test_unknown_secret_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = stripe_headers(BODY, secret="whsec_not_a_secret_of_this_source")

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert entry_count(redis_client) == 0


def test_rotated_secret_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = stripe_headers(BODY, secret=STRIPE_SECRET_NEXT)

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_rolling_header_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    """During a roll Stripe sends one v1 per secret; one known secret suffices."""
    signed_at = unix_now()
    unknown = stripe_signature("whsec_retired_elsewhere", signed_at, BODY)
    known = stripe_signature(STRIPE_SECRET_NEXT, signed_at, BODY)
    headers = signed_header(f"t={signed_at}", f"v1={unknown}", f"v1={known}")

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_expired_secret_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = stripe_headers(BODY, secret=STRIPE_SECRET_EXPIRED)

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert entry_count(redis_client) == 0


def test_old_timestamp_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = stripe_headers(BODY, sent_at=minutes_ago(6))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "stale_timestamp"
    assert entry_count(redis_client) == 0


def test_future_timestamp_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = stripe_headers(BODY, sent_at=minutes_ago(-6))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "stale_timestamp"
    assert entry_count(redis_client) == 0


def test_timestamp_within_tolerance_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = stripe_headers(BODY, sent_at=minutes_ago(4))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_invalid_timestamps_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    signed_at = unix_now()
    signature = f"v1={stripe_signature(STRIPE_SECRET, signed_at, BODY)}"
    for fields in (
        (signature,),
        ("t=yesterday", signature),
        (f"t={signed_at}", f"t={signed_at}", signature),
        (f"t={signed_at}.5", signature),
    ):
        response = http.post(URL, content=BODY, headers=signed_header(*fields))

        assert response.status_code == 400, fields
        assert response.json()["error"] == "invalid_timestamp", fields
    assert entry_count(redis_client) == 0


def test_missing_v1_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    signed_at = unix_now()
    v0 = stripe_signature(STRIPE_SECRET, signed_at, BODY)

    response = http.post(
        URL, content=BODY, headers=signed_header(f"t={signed_at}", f"v0={v0}")
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature_header"
    assert "v1" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_malformed_v1_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    signed_at = unix_now()
    signature = stripe_signature(STRIPE_SECRET, signed_at, BODY)
    as_base64 = base64.b64encode(bytes.fromhex(signature)).decode()
    for v1 in (signature[:-2], signature[:-1] + "z", as_base64):
        fields = (f"t={signed_at}", f"v1={v1}")

        response = http.post(URL, content=BODY, headers=signed_header(*fields))

        assert response.status_code == 400, v1
        assert response.json()["error"] == "invalid_signature_header", v1
    assert entry_count(redis_client) == 0


def test_missing_header_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.post(
        URL, content=BODY, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "missing_signature_headers"
    assert "stripe-signature" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_conflicting_headers_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = list(stripe_headers(BODY).items())
    headers.append(("stripe-signature", "t=1,v1=" + "0" * 64))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "conflicting_headers"
    assert entry_count(redis_client) == 0


def test_oversized_header_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = stripe_headers(BODY)
    headers["stripe-signature"] += ",v1=" + "0" * 5000

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature_header"
    assert entry_count(redis_client) == 0


def test_repeat_event_written_once(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    """A retry is signed anew, with a later timestamp, and still has the event id."""
    first = http.post(
        URL, content=BODY, headers=stripe_headers(BODY, sent_at=minutes_ago(1))
    )
    second = http.post(URL, content=BODY, headers=stripe_headers(BODY))

    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json()["event_id"] == first.json()["event_id"]
    assert entry_count(redis_client) == 1


def test_event_without_id_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    for body in (
        b'{"object":"event","type":"invoice.paid"}',
        b'{"id":"","type":"invoice.paid"}',
        b'{"id":42,"type":"invoice.paid"}',
        b'{"id":"' + b"e" * 257 + b'"}',
        b'["evt_1"]',
    ):
        response = http.post(URL, content=body, headers=stripe_headers(body))

        assert response.status_code == 400, body
        assert response.json()["error"] == "invalid_payload", body
    assert entry_count(redis_client) == 0


def test_invalid_json_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"id":"evt_1",'

    response = http.post(URL, content=body, headers=stripe_headers(body))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert entry_count(redis_client) == 0
