"""The gateway answers 503 with Retry-After, never 202, when Redis cannot write.

Each test runs its own redis-server, because it stops or pauses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hookgate.tests.conftest import (
    Process,
    RedisServer,
    start_gateway,
    start_redis,
)
from hookgate.tests.gateway.helpers import entry_count, standard_headers

BODY = b'{"type":"invoice.paid","data":{"id":"inv_9"}}'


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    yield server
    server.resume()
    server.stop()


@pytest.fixture
def own_gateway(own_redis: RedisServer, tmp_path: Path) -> Iterator[Process]:
    process = start_gateway(tmp_path, own_redis.url)
    yield process
    process.stop()


def post_signed(url: str) -> httpx.Response:
    # The 3-second client timeout is Graph's budget: a 503 must come well before it.
    return httpx.post(
        f"{url}/hooks/acme-mail",
        content=BODY,
        headers=standard_headers(BODY),
        timeout=3,
    )


def test_stopped_redis_answers_503(
    own_redis: RedisServer, own_gateway: Process
) -> None:
    assert post_signed(own_gateway.url).status_code == 202
    own_redis.stop()

    response = post_signed(own_gateway.url)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "unavailable"


def test_unavailable_counted_once(own_redis: RedisServer, own_gateway: Process) -> None:
    own_redis.stop()

    assert post_signed(own_gateway.url).status_code == 503

    text = httpx.get(f"{own_gateway.url}/metrics", timeout=3).text
    assert 'hookgate_rejections_total{reason="unavailable"} 1.0' in text
    assert (
        'hookgate_requests_total{provider="standard-webhooks",status="503"} 1.0' in text
    )


def test_stopped_redis_not_ready(own_redis: RedisServer, own_gateway: Process) -> None:
    own_redis.stop()

    response = httpx.get(f"{own_gateway.url}/readyz", timeout=3)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_restarted_redis_accepts_again(
    own_redis: RedisServer, own_gateway: Process, tmp_path: Path
) -> None:
    own_redis.stop()
    assert post_signed(own_gateway.url).status_code == 503

    restarted = start_redis(tmp_path / "redis-again", port=own_redis.port)
    try:
        response = post_signed(own_gateway.url)

        assert response.status_code == 202
        assert entry_count(restarted.client()) == 1
    finally:
        restarted.stop()


def test_paused_redis_answers_503_in_time(
    own_redis: RedisServer, own_gateway: Process
) -> None:
    assert post_signed(own_gateway.url).status_code == 202
    own_redis.pause()

    response = post_signed(own_gateway.url)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_paused_redis_recovers(own_redis: RedisServer, own_gateway: Process) -> None:
    own_redis.pause()
    assert post_signed(own_gateway.url).status_code == 503
    own_redis.resume()

    response = post_signed(own_gateway.url)

    assert response.status_code == 202
