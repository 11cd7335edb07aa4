"""Gmail Pub/Sub pushes against a real gateway process and Redis."""

from __future__ import annotations

import base64
import json

import httpx
import redis

from hookgate.tests.conftest import GMAIL_TOKEN
from hookgate.tests.gateway.helpers import entry_count, gmail_push

URL = "/hooks/globex-gmail"


def test_push_becomes_entry(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = gmail_push(message_id="136969346945")

    response = http.post(URL, params={"token": GMAIL_TOKEN}, content=body)

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{globex}:ingest")
    fields = entry[1]
    assert fields[b"type"] == b"gmail.push"
    assert fields[b"tenant"] == b"globex"
    assert fields[b"provider_event_id"] == b"136969346945"
    assert fields[b"body"] == body


def test_wrong_token_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.post(URL, params={"token": "guess"}, content=gmail_push())

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert entry_count(redis_client) == 0


def test_missing_token_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.post(URL, content=gmail_push())

    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert entry_count(redis_client) == 0


def test_repeated_token_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.post(f"{URL}?token={GMAIL_TOKEN}&token=other", content=gmail_push())

    assert response.status_code == 400
    assert entry_count(redis_client) == 0


def test_data_not_base64_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    envelope = json.loads(gmail_push())
    envelope["message"]["data"] = "%%% not base64 %%%"

    response = http.post(
        URL, params={"token": GMAIL_TOKEN}, content=json.dumps(envelope).encode()
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0


def test_data_without_history_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    envelope = json.loads(gmail_push())
    envelope["message"]["data"] = base64.b64encode(
        b'{"emailAddress": "a@b.c"}'
    ).decode()

    response = http.post(
        URL, params={"token": GMAIL_TOKEN}, content=json.dumps(envelope).encode()
    )

    assert response.status_code == 400
    assert "historyId" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_envelope_without_message_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(
        URL, params={"token": GMAIL_TOKEN}, content=b'{"subscription": "s"}'
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0


def test_unusable_notification_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    for data in (
        b'{"emailAddress": "", "historyId": 1}',
        b'{"emailAddress": "a@b.c", "historyId": -1}',
        b'{"emailAddress": "a@b.c", "historyId": "abc"}',
        b'{"emailAddress": "a@b.c", "historyId": "12\\n"}',
        b'{"emailAddress": "a@b.c", "historyId": "12345678901234567890"}',
        b'{"emailAddress": "a@b.c", "historyId": 9223372036854775808}',
    ):
        envelope = json.loads(gmail_push())
        envelope["message"]["data"] = base64.b64encode(data).decode()

        response = http.post(
            URL, params={"token": GMAIL_TOKEN}, content=json.dumps(envelope).encode()
        )

        assert response.status_code == 400, data
    assert entry_count(redis_client) == 0


def test_largest_history_id_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = gmail_push(history_id=2**63 - 1)

    response = http.post(URL, params={"token": GMAIL_TOKEN}, content=body)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_long_message_id_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = gmail_push(message_id="1" * 257)

    response = http.post(URL, params={"token": GMAIL_TOKEN}, content=body)

    assert response.status_code == 400
    assert "messageId" in response.json()["detail"]
    assert entry_count(redis_client) == 0
