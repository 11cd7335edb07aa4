"""Crash recovery: reclaimed entries, poison entries and effects that happen once."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from hookgate.consumers import create_app
from hookgate.entry import STANDARD_WEBHOOK
from hookgate.keys import INGEST_GROUP, ingest_stream

from .entries import ingest_fields, standard_webhook_body
from .streams import (
    config_for,
    read_dead_letters,
    read_events,
    redis_url,
    wait_processed,
)


def standard_entry(tenant: str, event_id: str | None = None) -> dict[str, bytes]:
    return ingest_fields(
        tenant=tenant,
        type=STANDARD_WEBHOOK,
        provider="standard-webhooks",
        body=standard_webhook_body(),
        provider_event_id=f"msg_{uuid.uuid4().hex[:8]}",
        event_id=event_id,
    )


@asynccontextmanager
async def consumer(tenant: str, **options: object) -> AsyncIterator[None]:
    options = {"visibility_timeout_ms": 100, "reclaim_interval_s": 0.05, **options}
    app = create_app(
        config_for(tenant), redis_url(), f"survivor-{uuid.uuid4().hex[:6]}", **options
    )
    async with app:
        yield


async def strand(redis: Redis, tenant: str, fields: dict[str, bytes]) -> bytes:
    """Write an entry and have a consumer that then vanished read it without ack."""
    stream = ingest_stream(tenant)
    await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
    entry_id: bytes = await redis.xadd(stream, fields)  # type: ignore[arg-type]
    await redis.xreadgroup(INGEST_GROUP, "vanished", {stream: ">"}, count=1)
    return entry_id


async def test_stranded_entry_reclaimed(redis: Redis, tenant: str) -> None:
    await strand(redis, tenant, standard_entry(tenant))

    async with consumer(tenant):
        await asyncio.sleep(0.3)
        await wait_processed(redis, ingest_stream(tenant))

    assert len(await read_events(redis, tenant)) == 1


async def test_fresh_pending_not_reclaimed(redis: Redis, tenant: str) -> None:
    await strand(redis, tenant, standard_entry(tenant))

    async with consumer(tenant, visibility_timeout_ms=60_000):
        await asyncio.sleep(0.3)

    assert await read_events(redis, tenant) == []
    pending = await redis.xpending(ingest_stream(tenant), INGEST_GROUP)
    assert pending["pending"] == 1


async def test_poison_entry_dead_lettered(redis: Redis, tenant: str) -> None:
    entry_id = await strand(redis, tenant, standard_entry(tenant))
    # Pretend earlier consumers already took it many times.
    await redis.xclaim(
        ingest_stream(tenant), INGEST_GROUP, "vanished", 0, [entry_id], retrycount=9
    )

    async with consumer(tenant, max_deliveries=5):
        await asyncio.sleep(0.3)
        await wait_processed(redis, ingest_stream(tenant))

    assert await read_events(redis, tenant) == []
    (dead,) = await read_dead_letters(redis, tenant)
    assert dead[b"error_type"] == b"PoisonEntryError"
    assert b"delivered" in dead[b"error"]


async def test_redelivery_publishes_once(redis: Redis, tenant: str) -> None:
    fields = standard_entry(tenant, event_id="evt_same")

    async with consumer(tenant):
        await redis.xadd(ingest_stream(tenant), fields)  # type: ignore[arg-type]
        await wait_processed(redis, ingest_stream(tenant))
        await redis.xadd(ingest_stream(tenant), fields)  # type: ignore[arg-type]
        await wait_processed(redis, ingest_stream(tenant))

    assert len(await read_events(redis, tenant)) == 1


async def test_killed_consumer_loses_nothing(
    redis: Redis, tenant: str, tmp_path: Path
) -> None:
    count = 2000
    stream = ingest_stream(tenant)
    await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.xadd(stream, standard_entry(tenant, event_id=f"evt_{n}"))  # type: ignore[arg-type]
        await pipe.execute()

    script = tmp_path / "victim.py"
    call = f"run_consumer(config_for({tenant!r}), {redis_url()!r}, 'victim')"
    script.write_text(
        "import asyncio\n"
        "from hookgate.consumers import run_consumer\n"
        "from hookgate.tests.consumers.streams import config_for\n"
        f"asyncio.run({call})\n"
    )
    victim = await asyncio.create_subprocess_exec(sys.executable, str(script))
    # Kill it once it has published some events but not all.
    for _ in range(400):
        published = await redis.xlen(f"hg:{{{tenant}}}:events")
        if published >= 50:
            break
        await asyncio.sleep(0.025)
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    assert 0 < published < count

    async with consumer(tenant):
        await wait_processed(redis, stream)

    events = await read_events(redis, tenant)
    assert len(events) == count
    assert len({event.event_id for event in events}) == count


async def test_failed_publish_retried_later(redis: Redis, tenant: str) -> None:
    # A string key where the events stream belongs makes the publish fail.
    await redis.set(f"hg:{{{tenant}}}:events", b"not a stream")

    async with consumer(tenant):
        await redis.xadd(ingest_stream(tenant), standard_entry(tenant))  # type: ignore[arg-type]
        await wait_processed(redis, ingest_stream(tenant), pending=1)
        await redis.delete(f"hg:{{{tenant}}}:events")
        await asyncio.sleep(0.3)
        await wait_processed(redis, ingest_stream(tenant))

    assert len(await read_events(redis, tenant)) == 1
