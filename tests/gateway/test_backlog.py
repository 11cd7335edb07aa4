"""Per-tenant stream length limit: a full ingest stream gets 429 for its tenant only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from hookgate.keys import ingest_stream
from hookgate.tests.conftest import (
    GMAIL_TOKEN,
    TEST_CONFIG,
    Process,
    RedisServer,
    start_gateway,
)
from hookgate.tests.gateway.helpers import (
    entry_count,
    gmail_push,
    graph_item,
    standard_headers,
)

MAX_LENGTH = 3
SMALL_STREAMS = TEST_CONFIG.replace(
    "flush_timeout_ms = 500",
    f"flush_timeout_ms = 500\nmax_stream_length = {MAX_LENGTH}",
)
ACME = ingest_stream("acme")
GLOBEX = ingest_stream("globex")
BODY = b'{"type":"invoice.paid","data":{"id":"inv_1"}}'


@pytest.fixture(scope="module")
def small_gateway(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    directory: Path = tmp_path_factory.mktemp("small-streams")
    process = start_gateway(directory, redis_server.url, config=SMALL_STREAMS)
    yield process
    process.stop()


@pytest.fixture
def http(small_gateway: Process) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_gateway.url, timeout=10) as client:
        yield client


def fill(client: redis.Redis, stream: str, count: int) -> list[bytes]:
    """Write ``count`` filler entries, as a backlog the consumers have not read."""
    return [client.xadd(stream, {"filler": b"1"}) for _ in range(count)]  # type: ignore[misc]


def post_standard(http: httpx.Client, msg_id: str) -> httpx.Response:
    headers = standard_headers(BODY, msg_id=msg_id)
    return http.post("/hooks/acme-mail", content=BODY, headers=headers)


def post_collection(http: httpx.Client, count: int) -> httpx.Response:
    items = [graph_item(resource=f"Users/u/Messages/m{i}") for i in range(count)]
    return http.post("/hooks/acme-outlook", content=json.dumps({"value": items}))


def seen_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(match="hg:{acme}:seen:*"))


def test_full_stream_answers_429(http: httpx.Client, redis_client: redis.Redis) -> None:
    fill(redis_client, ACME, MAX_LENGTH)

    response = post_standard(http, "msg_full")

    assert response.status_code == 429
    assert response.json()["error"] == "tenant_backlogged"
    assert response.headers["retry-after"] == "1"


def test_full_stream_writes_nothing(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    fill(redis_client, ACME, MAX_LENGTH)

    post_standard(http, "msg_full")

    assert redis_client.xlen(ACME) == MAX_LENGTH
    assert entry_count(redis_client) == MAX_LENGTH
    assert seen_keys(redis_client) == []


def test_other_tenant_still_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    fill(redis_client, ACME, MAX_LENGTH)

    rejected = post_standard(http, "msg_full")
    accepted = http.post(
        "/hooks/globex-gmail", params={"token": GMAIL_TOKEN}, content=gmail_push()
    )

    assert rejected.status_code == 429
    assert accepted.status_code == 202
    assert redis_client.xlen(GLOBEX) == 1
    assert redis_client.xlen(ACME) == MAX_LENGTH


def test_below_limit_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    fill(redis_client, ACME, MAX_LENGTH - 1)

    response = post_standard(http, "msg_last")

    assert response.status_code == 202
    assert redis_client.xlen(ACME) == MAX_LENGTH


def test_retry_written_after_room_freed(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    fillers = fill(redis_client, ACME, MAX_LENGTH)
    rejected = post_standard(http, "msg_retry")
    redis_client.xdel(ACME, fillers[0])

    retried = post_standard(http, "msg_retry")

    assert rejected.status_code == 429
    assert retried.status_code == 202
    (_, newest), *_ = redis_client.xrevrange(ACME, count=1)
    assert newest[b"event_id"].decode() == retried.json()["event_id"]


def test_repeat_answered_when_full(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    fill(redis_client, ACME, MAX_LENGTH - 1)
    original = post_standard(http, "msg_repeat")

    repeat = post_standard(http, "msg_repeat")

    assert original.status_code == 202
    assert repeat.status_code == 202
    assert repeat.json()["event_id"] == original.json()["event_id"]
    assert redis_client.xlen(ACME) == MAX_LENGTH


class TestCollection:
    def test_refused_midway_answers_429(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        fill(redis_client, ACME, MAX_LENGTH - 2)

        response = post_collection(http, 3)

        assert response.status_code == 429
        assert response.json()["error"] == "tenant_backlogged"
        # The two items that found room stay written.
        assert redis_client.xlen(ACME) == MAX_LENGTH

    def test_retry_writes_only_rest(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        (filler,) = fill(redis_client, ACME, MAX_LENGTH - 2)
        post_collection(http, 3)
        written = [
            fields[b"event_id"].decode()
            for entry_id, fields in redis_client.xrange(ACME)
            if entry_id != filler
        ]
        redis_client.xdel(ACME, filler)

        retried = post_collection(http, 3)

        assert retried.status_code == 202
        event_ids = retried.json()["event_ids"]
        assert event_ids[:2] == written
        assert event_ids[2] not in written
        assert redis_client.xlen(ACME) == MAX_LENGTH
