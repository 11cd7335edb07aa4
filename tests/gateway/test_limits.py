"""Queue bound and body timeout, on a gateway configured with small limits."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from hookgate.tests.conftest import TEST_CONFIG, Process, RedisServer, start_gateway
from hookgate.tests.gateway.helpers import entry_count, graph_item

SMALL_LIMITS = TEST_CONFIG.replace(
    "flush_timeout_ms = 500",
    "flush_timeout_ms = 500\nmax_pending = 8\nbody_timeout_s = 1",
)


@pytest.fixture(scope="module")
def small_gateway(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    directory: Path = tmp_path_factory.mktemp("small-gateway")
    process = start_gateway(directory, redis_server.url, config=SMALL_LIMITS)
    yield process
    process.stop()


def test_collection_over_queue_bound(
    small_gateway: Process, redis_client: redis.Redis
) -> None:
    items = [graph_item(resource=f"Users/u/Messages/m{i}") for i in range(9)]

    response = httpx.post(
        f"{small_gateway.url}/hooks/acme-outlook",
        content=json.dumps({"value": items}),
        timeout=5,
    )

    assert response.status_code == 413
    assert response.json()["error"] == "too_many_events"
    assert entry_count(redis_client) == 0


def test_collection_at_queue_bound(
    small_gateway: Process, redis_client: redis.Redis
) -> None:
    items = [graph_item(resource=f"Users/u/Messages/m{i}") for i in range(8)]

    response = httpx.post(
        f"{small_gateway.url}/hooks/acme-outlook",
        content=json.dumps({"value": items}),
        timeout=5,
    )

    assert response.status_code == 202
    assert entry_count(redis_client) == 8


def test_slow_body_times_out(small_gateway: Process, redis_client: redis.Redis) -> None:
    address = urlsplit(small_gateway.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"POST /hooks/acme-mail HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()

        reply = sock.recv(65536)

    assert reply.startswith(b"HTTP/1.1 408"), reply[:60]
    assert b"body_timeout" in reply
    assert time.monotonic() - started < 5
    assert entry_count(redis_client) == 0
