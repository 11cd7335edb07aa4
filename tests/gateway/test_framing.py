"""Bodies that break off or are framed wrongly are rejected and write nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from hookgate.tests.conftest import Process
from hookgate.tests.gateway.helpers import entry_count, standard_headers

BODY = b'{"type":"invoice.paid","data":{"id":"inv_7"}}'
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def send(gateway: Process, head: bytes, rest: bytes, *, half_close: bool) -> bytes:
    """Send a signed request's head and ``rest`` and return the gateway's reply.

    With ``half_close``, the sending side is closed after the request, so that a
    body the request left unfinished can never arrive.
    """
    headers = standard_headers(BODY)
    signed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = b"POST /hooks/acme-mail HTTP/1.1\r\nHost: x\r\n" + signed.encode()
    address = urlsplit(gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(request + head + b"\r\n" + rest)
        if not half_close:
            return sock.recv(65536)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for chunk in chunks)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(chunked(BODY[:10], BODY[10:]) + b"0\r\n\r\n", id="two-chunks"),
        pytest.param(chunked(BODY) + b"0\r\nX-Trailer: 1\r\n\r\n", id="trailer"),
        pytest.param(
            b"%x;ext=1\r\n%b\r\n0\r\n\r\n" % (len(BODY), BODY), id="extension"
        ),
    ],
)
def test_complete_chunked_body_accepted(
    gateway: Process, redis_client: redis.Redis, body: bytes
) -> None:
    reply = send(gateway, CHUNKED, body, half_close=False)

    assert reply.startswith(b"HTTP/1.1 202")
    assert entry_count(redis_client) == 1


def test_body_shorter_than_content_length_rejected(
    gateway: Process, redis_client: redis.Redis
) -> None:
    head = b"Content-Length: %d\r\n" % (len(BODY) + 100)

    reply = send(gateway, head, BODY, half_close=True)

    assert reply.startswith(b"HTTP/1.1 400")
    assert b'"error":"incomplete_body"' in reply
    assert entry_count(redis_client) == 0
    assert "Application callable raised" not in gateway.log()


@pytest.mark.parametrize(
    "coding", [b"gzip, chunked", b"chunked, chunked", b"identity, chunked"]
)
def test_other_transfer_codings_rejected(
    gateway: Process, redis_client: redis.Redis, coding: bytes
) -> None:
    head = b"Transfer-Encoding: " + coding + b"\r\n"

    reply = send(gateway, head, chunked(BODY) + b"0\r\n\r\n", half_close=False)

    assert reply.startswith(b"HTTP/1.1 501")
    assert b'"error":"unsupported_transfer_encoding"' in reply
    assert entry_count(redis_client) == 0


def test_http2_streamed_body_accepted(
    gateway: Process, redis_client: redis.Redis
) -> None:
    # Without a length, the body arrives in DATA frames, the last one possibly
    # empty with END_STREAM, which Granian passes on as an empty chunk.
    def frames() -> Iterator[bytes]:
        yield BODY[:10]
        yield BODY[10:]
        yield b""

    with httpx.Client(
        base_url=gateway.url, http1=False, http2=True, timeout=10
    ) as client:
        response = client.post(
            "/hooks/acme-mail", content=frames(), headers=standard_headers(BODY)
        )

    assert response.http_version == "HTTP/2"
    assert response.status_code == 202
    assert entry_count(redis_client) == 1
