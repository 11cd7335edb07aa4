"""Odd and hostile input: each gets a precise 4xx and nothing is enqueued."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import socket
import time
import zlib
from urllib.parse import urlsplit

import httpx
import redis

from hookgate.tests.conftest import GMAIL_TOKEN, MAX_BODY, STANDARD_SECRET, Process
from hookgate.tests.gateway.helpers import entry_count, standard_headers

URL = "/hooks/acme-mail"
BODY = b'{"type":"invoice.paid","data":{"id":"inv_5"}}'


def signed_bytes(body: bytes, msg_id: str = "msg_hostile") -> dict[str, str]:
    """Sign arbitrary bytes; the reference library signs only text."""
    timestamp = str(int(time.time()))
    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def test_gzip_body_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = {**standard_headers(BODY), "content-encoding": "gzip"}

    response = http.post(URL, content=gzip.compress(BODY), headers=headers)

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    assert entry[1][b"body"] == BODY


def test_deflate_body_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = {**standard_headers(BODY), "content-encoding": "deflate"}

    response = http.post(URL, content=zlib.compress(BODY), headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_zip_bomb_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    bomb = gzip.compress(b"0" * (200 * MAX_BODY))
    assert len(bomb) < MAX_BODY
    headers = {**signed_bytes(b"irrelevant"), "content-encoding": "gzip"}

    response = http.post(URL, content=bomb, headers=headers)

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert entry_count(redis_client) == 0


def test_corrupt_gzip_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = {**standard_headers(BODY), "content-encoding": "gzip"}

    response = http.post(URL, content=gzip.compress(BODY)[:-6], headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_content"
    assert entry_count(redis_client) == 0


def test_data_after_gzip_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    for extra in (b"TRAILING-GARBAGE", gzip.compress(b"{}")):
        body = gzip.compress(BODY) + extra
        headers = {**signed_bytes(BODY), "content-encoding": "gzip"}

        response = http.post(URL, content=body, headers=headers)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_content"
    assert entry_count(redis_client) == 0


def test_data_after_deflate_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = zlib.compress(BODY) + b"TRAILING-GARBAGE"
    headers = {**signed_bytes(BODY), "content-encoding": "deflate"}

    response = http.post(URL, content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_content"
    assert entry_count(redis_client) == 0


def test_unknown_encoding_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {**standard_headers(BODY), "content-encoding": "br"}

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_content_encoding"
    assert entry_count(redis_client) == 0


def test_declared_charset_honoured(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = '{"type":"café.créé","data":{}}'.encode("utf-16")
    headers = {
        **signed_bytes(body),
        "content-type": "application/json; charset=UTF-16",
    }

    response = http.post(URL, content=body, headers=headers)

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    assert entry[1][b"body"] == body


def test_unknown_charset_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {
        **standard_headers(BODY),
        "content-type": "application/json; charset=klingon",
    }

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_charset"
    assert entry_count(redis_client) == 0


def test_empty_body_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.post(URL, content=b"", headers=signed_bytes(b""))

    assert response.status_code == 400
    assert response.json()["error"] == "empty_body"
    assert entry_count(redis_client) == 0


def test_non_utf8_body_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"type":"\xff\xfe"}'

    response = http.post(URL, content=body, headers=signed_bytes(body))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_encoding"
    assert entry_count(redis_client) == 0


def test_deep_nesting_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"data":' + b"[" * 5000 + b"]" * 5000 + b"}"

    response = http.post(URL, content=body, headers=signed_bytes(body))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert entry_count(redis_client) == 0


def test_deep_graph_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"value":[{"x":' + b"[" * 5000 + b"]" * 5000 + b"}]}"

    response = http.post("/hooks/acme-outlook", content=body)

    assert response.status_code == 400
    assert entry_count(redis_client) == 0


def test_deep_gmail_data_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    data = base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()
    body = json.dumps(
        {"message": {"data": data, "messageId": "1"}, "subscription": "s"}
    )

    response = http.post(
        "/hooks/globex-gmail", params={"token": GMAIL_TOKEN}, content=body.encode()
    )

    assert response.status_code == 400
    assert entry_count(redis_client) == 0


def test_conflicting_headers_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = [*standard_headers(BODY).items(), ("webhook-id", "msg_other")]

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "conflicting_headers"
    assert entry_count(redis_client) == 0


def test_identical_repeat_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    signed = standard_headers(BODY)
    headers = [*signed.items(), ("webhook-id", signed["webhook-id"])]

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_huge_signature_header_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {
        **standard_headers(BODY),
        "webhook-signature": " ".join(["v1," + "A" * 43 + "="] * 2200),
    }
    assert len(headers["webhook-signature"]) > 100_000

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature_header"
    assert entry_count(redis_client) == 0


def raw_request(gateway: Process, request: bytes) -> bytes:
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_raw_traversal_paths_not_found(
    gateway: Process, redis_client: redis.Redis
) -> None:
    for path in (
        b"/hooks/../hooks/acme-mail",
        b"/hooks/%2e%2e/acme-mail",
        b"/hooks/acme-mail/",
        b"/hooks/acme-mail%00",
        b"/hooks/",
        b"/hooks//acme-mail",
    ):
        request = (
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        )

        reply = raw_request(gateway, request)

        assert reply.startswith((b"HTTP/1.1 404", b"HTTP/1.1 400")), (path, reply[:40])
    assert entry_count(redis_client) == 0
