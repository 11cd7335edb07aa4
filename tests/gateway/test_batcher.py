"""The group-commit batcher against a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

from hookgate import entry, keys
from hookgate.gateway.batcher import (
    PIPELINED_BATCH,
    Batcher,
    Saturated,
    WriteFailed,
)
from hookgate.gateway.resp import RedisUnavailable, RespConnection
from hookgate.tests.conftest import RedisServer, start_redis

WINDOW_S = 60


def writer(tenant: str = "t", max_length: int = 0) -> entry.IngestWriter:
    stream = keys.ingest_stream(tenant).encode()
    return entry.IngestWriter(tenant, stream, WINDOW_S, max_length)


T = writer("t")


def packed(value: int, *, source: str = "s") -> tuple[bytes, bytes]:
    """Return the seen key and values of one entry whose body is ``value``."""
    seen = entry.bulk(keys.seen_key("t", source, f"p{value}").encode())
    values = entry.pack_entry(
        event_id=f"evt_{value}".encode(),
        type=entry.STANDARD_WEBHOOK.encode(),
        source_and_provider=entry.bulk(source.encode()) + entry.bulk(b"test"),
        received_at=b"1",
        provider_event_id=f"p{value}".encode(),
        headers=b"{}",
        body=str(value).encode(),
    )
    return seen, values


def submit(
    batcher: Batcher, value: int, target: entry.IngestWriter = T
) -> asyncio.Future[list[Any]]:
    return batcher.submit(target, *packed(value), 1)


def make_batcher(url: str, **overrides: float) -> Batcher:
    options = {
        "max_pending": 10_000,
        "max_batch": 512,
        "flush_timeout": 1.0,
        **overrides,
    }
    return Batcher(
        RespConnection(url, scripts=(entry.INGEST_SCRIPT,)),
        max_pending=int(options["max_pending"]),
        max_batch=int(options["max_batch"]),
        flush_timeout=options["flush_timeout"],
    )


async def test_concurrent_entries_share_flushes(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)
    batcher.start()

    futures = [submit(batcher, i) for i in range(1000)]
    replies = await asyncio.gather(*futures)
    await batcher.close(timeout=1)

    assert replies == [[entry.INGEST_WRITTEN, f"evt_{i}".encode()] for i in range(1000)]
    assert redis_client.xlen("hg:{t}:ingest") == 1000
    assert batcher.stats.entries == 1000
    # The first flush leaves with one entry; the rest share full batches.
    assert batcher.stats.flushes <= 1 + 1000 // 512 + 1


async def test_entries_written_in_order(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url, max_batch=7)
    batcher.start()

    await asyncio.gather(*[submit(batcher, i) for i in range(50)])
    await batcher.close(timeout=1)

    values = [
        int(fields[b"body"]) for _, fields in redis_client.xrange("hg:{t}:ingest")
    ]
    assert values == list(range(50))


async def test_rejected_tenant_fails_alone(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    # The broken tenant's stream key contains a string, so its XADD fails.
    redis_client.set(keys.ingest_stream("broken"), "x")
    batcher = make_batcher(redis_server.url)
    batcher.start()
    await submit(batcher, 0)

    good = submit(batcher, 1)
    bad = submit(batcher, 2, writer("broken"))
    also_good = submit(batcher, 3)
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    await batcher.close(timeout=1)

    assert results[0] == [entry.INGEST_WRITTEN, b"evt_1"]
    assert isinstance(results[1], WriteFailed)
    assert results[2] == [entry.INGEST_WRITTEN, b"evt_3"]
    assert redis_client.xlen("hg:{t}:ingest") == 3
    # The failed entry left no seen key behind, so a retry is written.
    assert not redis_client.exists(keys.seen_key("t", "s", "p2"))
    assert redis_client.exists(keys.seen_key("t", "s", "p3"))


async def test_request_entries_share_future(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)
    batcher.start()
    first, second = packed(1), packed(2)

    future = batcher.submit(T, first[0] + second[0], first[1] + second[1], 2)
    single = submit(batcher, 3)
    replies = await asyncio.gather(future, single)
    await batcher.close(timeout=1)

    assert replies[0] == [1, b"evt_1", 1, b"evt_2"]
    assert replies[1] == [1, b"evt_3"]
    assert redis_client.xlen("hg:{t}:ingest") == 3


async def test_repeat_in_batch_written_once(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)

    # Queued before the flush task starts, so both land in one script call.
    futures = [submit(batcher, 7), submit(batcher, 7)]
    batcher.start()
    replies = await asyncio.gather(*futures)
    await batcher.close(timeout=1)

    assert replies == [
        [entry.INGEST_WRITTEN, b"evt_7"],
        [entry.INGEST_DUPLICATE, b"evt_7"],
    ]
    assert batcher.stats.flushes == 1
    assert redis_client.xlen("hg:{t}:ingest") == 1


async def test_full_stream_rejects_batch_rest(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)
    limited = writer("t", max_length=2)

    futures = [submit(batcher, i, limited) for i in range(4)]
    batcher.start()
    replies = await asyncio.gather(*futures)
    await batcher.close(timeout=1)

    statuses = [reply[0] for reply in replies]
    assert statuses == [1, 1, entry.INGEST_FULL, entry.INGEST_FULL]
    assert redis_client.xlen("hg:{t}:ingest") == 2
    # A rejected entry sets no seen key, so its retry is written later.
    assert not redis_client.exists(keys.seen_key("t", "s", "p2"))


async def test_second_flush_waits_for_batch(redis_server: RedisServer) -> None:
    batcher = make_batcher(redis_server.url)
    batcher.start()
    await submit(batcher, 0)

    first = submit(batcher, 1)
    await asyncio.sleep(0)
    assert batcher.in_flight == 1
    # A few entries wait for the flush in flight rather than go out in a flush of
    # their own.
    few = []
    for value in range(2, 5):
        few.append(submit(batcher, value))
        await asyncio.sleep(0)
        assert batcher.in_flight == 1
    await asyncio.gather(first, *few)

    assert batcher.stats.flushes == 3
    await batcher.close(timeout=1)


async def test_full_batch_flushes_alongside(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)
    batcher.start()
    await submit(batcher, 0)

    first = submit(batcher, 1)
    await asyncio.sleep(0)
    many = [submit(batcher, value) for value in range(2, 2 + PIPELINED_BATCH)]
    await asyncio.sleep(0)

    assert batcher.in_flight == 2
    await asyncio.gather(first, *many)
    await batcher.close(timeout=1)
    values = [
        int(fields[b"body"]) for _, fields in redis_client.xrange("hg:{t}:ingest")
    ]
    assert values == list(range(2 + PIPELINED_BATCH))


async def test_full_queue_raises_saturated(redis_server: RedisServer) -> None:
    batcher = make_batcher(redis_server.url, max_pending=3)

    for i in range(3):
        submit(batcher, i)

    with pytest.raises(Saturated):
        submit(batcher, 4)
    # A request is queued whole or not at all.
    two = packed(5)
    with pytest.raises(Saturated):
        batcher.submit(T, two[0] * 2, two[1] * 2, 2)
    assert batcher.waiting == 3
    batcher.start()
    await batcher.close(timeout=1)


async def test_unreachable_redis_fails_entries(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    url = server.url
    server.stop()
    batcher = make_batcher(url)
    batcher.start()

    future = submit(batcher, 1)

    with pytest.raises(RedisUnavailable):
        await future
    await batcher.close(timeout=1)


async def test_paused_redis_times_out(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    batcher = make_batcher(server.url, flush_timeout=0.3)
    batcher.start()
    try:
        await submit(batcher, 1)
        server.pause()

        future = submit(batcher, 2)

        with pytest.raises(RedisUnavailable, match="timed out"):
            await future
    finally:
        server.resume()
        await batcher.close(timeout=1)
        server.stop()


async def test_close_flushes_waiting_entries(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)
    batcher.start()
    futures = [submit(batcher, i) for i in range(20)]

    await batcher.close(timeout=2)

    assert all(future.done() and not future.exception() for future in futures)
    assert redis_client.xlen("hg:{t}:ingest") == 20
