"""The group-commit batcher against a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import hiredis
import pytest
import redis

from hookgate.gateway.batcher import Batcher, Saturated, WriteFailed
from hookgate.gateway.resp import RedisUnavailable, RespConnection
from hookgate.tests.conftest import RedisServer, start_redis


def xadd(stream: str, value: int) -> bytes:
    return hiredis.pack_command(("XADD", stream, "*", "n", value))


def make_batcher(url: str, **overrides: float) -> Batcher:
    options = {
        "max_pending": 10_000,
        "max_batch": 512,
        "flush_timeout": 1.0,
        **overrides,
    }
    return Batcher(
        RespConnection(url),
        max_pending=int(options["max_pending"]),
        max_batch=int(options["max_batch"]),
        flush_timeout=options["flush_timeout"],
    )


async def test_concurrent_entries_share_flushes(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url)
    batcher.start()

    futures = [batcher.submit(xadd("hg:{t}:ingest", i)) for i in range(1000)]
    replies = await asyncio.gather(*futures)
    await batcher.close(timeout=1)

    assert len(set(replies)) == 1000
    assert redis_client.xlen("hg:{t}:ingest") == 1000
    assert batcher.stats.entries == 1000
    assert batcher.stats.flushes <= 1000 // 512 + 1


async def test_entries_written_in_order(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    batcher = make_batcher(redis_server.url, max_batch=7)
    batcher.start()

    await asyncio.gather(*[batcher.submit(xadd("hg:{t}:ingest", i)) for i in range(50)])
    await batcher.close(timeout=1)

    values = [int(fields[b"n"]) for _, fields in redis_client.xrange("hg:{t}:ingest")]
    assert values == list(range(50))


async def test_rejected_command_fails_alone(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    redis_client.set("hg:{t}:not-a-stream", "x")
    batcher = make_batcher(redis_server.url)
    batcher.start()

    good = batcher.submit(xadd("hg:{t}:ingest", 1))
    bad = batcher.submit(xadd("hg:{t}:not-a-stream", 2))
    also_good = batcher.submit(xadd("hg:{t}:ingest", 3))
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    await batcher.close(timeout=1)

    assert isinstance(results[0], bytes)
    assert isinstance(results[1], WriteFailed)
    assert isinstance(results[2], bytes)
    assert redis_client.xlen("hg:{t}:ingest") == 2


async def test_full_queue_raises_saturated(redis_server: RedisServer) -> None:
    batcher = make_batcher(redis_server.url, max_pending=3)

    for i in range(3):
        batcher.submit(xadd("hg:{t}:ingest", i))

    with pytest.raises(Saturated):
        batcher.submit(xadd("hg:{t}:ingest", 4))
    batcher.start()
    await batcher.close(timeout=1)


async def test_unreachable_redis_fails_entries(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    url = server.url
    server.stop()
    batcher = make_batcher(url)
    batcher.start()

    future = batcher.submit(xadd("hg:{t}:ingest", 1))

    with pytest.raises(RedisUnavailable):
        await future
    await batcher.close(timeout=1)


async def test_paused_redis_times_out(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    batcher = make_batcher(server.url, flush_timeout=0.3)
    batcher.start()
    try:
        await batcher.submit(xadd("hg:{t}:ingest", 1))
        server.pause()

        future = batcher.submit(xadd("hg:{t}:ingest", 2))

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
    futures = [batcher.submit(xadd("hg:{t}:ingest", i)) for i in range(20)]

    await batcher.close(timeout=2)

    assert all(future.done() and not future.exception() for future in futures)
    assert redis_client.xlen("hg:{t}:ingest") == 20
