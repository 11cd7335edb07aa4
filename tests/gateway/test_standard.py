"""Standard Webhooks deliveries against a real gateway process and Redis."""

from __future__ import annotations

import json

import httpx
import redis

from hookgate.tests.conftest import MAX_BODY, STANDARD_SECRET_NEXT
from hookgate.tests.gateway.helpers import entry_count, minutes_ago, standard_headers

URL = "/hooks/acme-mail"
BODY = (
    b'{"type":"invoice.paid","timestamp":"2026-12-04T10:00:00Z","data":{"id":"inv_1"}}'
)


def test_signed_delivery_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(URL, content=BODY, headers=standard_headers(BODY))

    assert response.status_code == 202
    event_id = response.json()["event_id"]
    assert event_id.startswith("evt_")
    entries = redis_client.xrange("hg:{acme}:ingest")
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"body"] == BODY
    assert fields[b"event_id"] == event_id.encode()
    assert fields[b"type"] == b"standard-webhooks.event"
    assert fields[b"tenant"] == b"acme"
    assert fields[b"source"] == b"acme-mail"
    assert fields[b"provider"] == b"standard-webhooks"
    assert fields[b"provider_event_id"] == b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    headers = json.loads(fields[b"headers"])
    assert headers["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert "webhook-signature" in headers
    assert entry_count(redis_client) == 1


def test_body_kept_byte_for_byte(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = '{ "type" : "t",\n  "data": {"name": "Zoë \\u00e9", "n": 1.50} }'.encode()

    response = http.post(URL, content=body, headers=standard_headers(body))

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    assert entry[1][b"body"] == body


def test_rotated_secret_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = standard_headers(BODY, secret=STANDARD_SECRET_NEXT)

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_wrong_signature_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = standard_headers(BODY, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==")

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_signature",
        "detail": "no signature matched",
    }
    assert entry_count(redis_client) == 0


def test_tampered_body_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = standard_headers(BODY)

    response = http.post(URL, content=BODY.replace(b"inv_1", b"inv_2"), headers=headers)

    assert response.status_code == 401
    assert entry_count(redis_client) == 0


def test_old_timestamp_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = standard_headers(BODY, sent_at=minutes_ago(6))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "stale_timestamp"
    assert entry_count(redis_client) == 0


def test_future_timestamp_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = standard_headers(BODY, sent_at=minutes_ago(-6))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "stale_timestamp"
    assert entry_count(redis_client) == 0


def test_timestamp_within_tolerance_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = standard_headers(BODY, sent_at=minutes_ago(4))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_non_numeric_timestamp_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {**standard_headers(BODY), "webhook-timestamp": "yesterday"}

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_timestamp"
    assert entry_count(redis_client) == 0


def test_missing_signature_headers_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = standard_headers(BODY)
        del headers[missing]

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 400, missing
        assert response.json()["error"] == "missing_signature_headers"
        assert missing in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_signature_without_v1_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {**standard_headers(BODY), "webhook-signature": "v1a,abc v2,def"}

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature_header"
    assert entry_count(redis_client) == 0


def test_malformed_json_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"type": "invoice.paid", "data": {'

    response = http.post(URL, content=body, headers=standard_headers(body))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert entry_count(redis_client) == 0


def test_non_object_payload_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = b"[1, 2, 3]"

    response = http.post(URL, content=body, headers=standard_headers(body))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0


def test_oversized_body_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"data":"' + b"x" * MAX_BODY + b'"}'

    response = http.post(URL, content=body, headers=standard_headers(body))

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert entry_count(redis_client) == 0


def test_oversized_chunked_body_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = b'{"data":"' + b"x" * MAX_BODY + b'"}'

    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = http.post(URL, content=chunks(), headers=standard_headers(body))

    assert response.status_code == 413
    assert entry_count(redis_client) == 0


def test_chunked_body_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield BODY[:10]
        yield BODY[10:]

    response = http.post(URL, content=chunks(), headers=standard_headers(BODY))

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    assert entry[1][b"body"] == BODY


def test_request_after_413_answered(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    big = b'{"data":"' + b"x" * MAX_BODY + b'"}'
    rejected = http.post(URL, content=big, headers=standard_headers(big))

    accepted = http.post(URL, content=BODY, headers=standard_headers(BODY))

    assert rejected.status_code == 413
    assert rejected.headers["connection"] == "close"
    assert accepted.status_code == 202
