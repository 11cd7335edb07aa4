"""Stream retention: what the trimmer removes and, above all, what it keeps.

Old entries are written with explicit ids in the past, on the Redis server's clock,
which is the clock the trimmer measures ages by.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
from redis.asyncio import Redis

from hookgate.config import RetentionSettings
from hookgate.consumers import create_app
from hookgate.consumers.retention import next_id, parse_id, trim_tenant
from hookgate.entry import STANDARD_WEBHOOK
from hookgate.keys import (
    INGEST_GROUP,
    dead_letter_stream,
    events_stream,
    ingest_stream,
)

from .entries import ingest_fields, standard_webhook_body
from .streams import WAIT_TIMEOUT_S, config_for, read_events, redis_url

SETTINGS = RetentionSettings(
    ingest_processed_s=600, events_s=600, dead_s=1200, interval_s=0.05
)
# An age past every retention in SETTINGS.
OLD_S = 3600
OTHER_GROUP = "audit"


def fields(tenant: str) -> dict[str, bytes]:
    return ingest_fields(
        tenant=tenant,
        type=STANDARD_WEBHOOK,
        provider="standard-webhooks",
        body=standard_webhook_body(),
        provider_event_id=f"msg_{uuid.uuid4().hex[:8]}",
    )


async def server_ms(redis: Redis) -> int:
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


async def add_aged(redis: Redis, stream: str, tenant: str, age_s: int) -> list[bytes]:
    """Write three entries that arrived ``age_s`` seconds ago; return their ids."""
    ms = await server_ms(redis) - age_s * 1000
    entry_ids = []
    for sequence in range(1, 4):
        entry_id = await redis.xadd(stream, fields(tenant), id=f"{ms}-{sequence}")  # type: ignore[arg-type]
        entry_ids.append(entry_id)
    return entry_ids


async def add_now(redis: Redis, stream: str, tenant: str) -> bytes:
    entry_id: bytes = await redis.xadd(stream, fields(tenant))  # type: ignore[arg-type]
    return entry_id


async def deliver(redis: Redis, stream: str, group: str, count: int) -> list[bytes]:
    """Have a consumer of ``group`` read ``count`` entries; return their ids."""
    reply = await redis.xreadgroup(group, "reader", {stream: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]]


async def remaining(redis: Redis, stream: str) -> list[bytes]:
    return [entry_id for entry_id, _ in await redis.xrange(stream)]


class TestStreamIds:
    def test_next_id_increments_sequence(self) -> None:
        assert next_id(parse_id(b"1700000000000-4")) == (1700000000000, 5)

    def test_next_id_carries_into_ms(self) -> None:
        assert next_id((5, 2**64 - 1)) == (6, 0)


class TestIngestTrim:
    async def test_acknowledged_old_entries_trimmed(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        old = await add_aged(redis, stream, tenant, OLD_S)
        young = await add_now(redis, stream, tenant)
        await redis.xack(
            stream, INGEST_GROUP, *await deliver(redis, stream, INGEST_GROUP, 4)
        )

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["ingest"] == 3
        assert await remaining(redis, stream) == [young]
        assert not set(old) & set(await remaining(redis, stream))

    async def test_acknowledged_young_entries_kept(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        young = [await add_now(redis, stream, tenant) for _ in range(3)]
        await redis.xack(
            stream, INGEST_GROUP, *await deliver(redis, stream, INGEST_GROUP, 3)
        )

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["ingest"] == 0
        assert await remaining(redis, stream) == young

    async def test_all_acknowledged_old_entries_trimmed(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        old = await add_aged(redis, stream, tenant, OLD_S)
        await redis.xack(
            stream, INGEST_GROUP, *await deliver(redis, stream, INGEST_GROUP, 3)
        )

        await trim_tenant(redis, tenant, SETTINGS)

        # The last-delivered entry goes too, since nothing after it is pending.
        assert len(old) == 3
        assert await remaining(redis, stream) == []

    async def test_pending_entry_kept(self, redis: Redis, tenant: str) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        first, pending, third = await add_aged(redis, stream, tenant, OLD_S)
        await deliver(redis, stream, INGEST_GROUP, 3)
        await redis.xack(stream, INGEST_GROUP, first, third)

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["ingest"] == 1
        assert await remaining(redis, stream) == [pending, third]

    async def test_entries_unread_by_other_group_kept(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        await redis.xgroup_create(stream, OTHER_GROUP, id="0")
        first, second, third = await add_aged(redis, stream, tenant, OLD_S)
        await redis.xack(
            stream, INGEST_GROUP, *await deliver(redis, stream, INGEST_GROUP, 3)
        )
        await redis.xack(
            stream, OTHER_GROUP, *await deliver(redis, stream, OTHER_GROUP, 1)
        )

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["ingest"] == 1
        assert await remaining(redis, stream) == [second, third]
        assert first not in await remaining(redis, stream)

    async def test_pending_in_other_group_kept(self, redis: Redis, tenant: str) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        await redis.xgroup_create(stream, OTHER_GROUP, id="0")
        old = await add_aged(redis, stream, tenant, OLD_S)
        await redis.xack(
            stream, INGEST_GROUP, *await deliver(redis, stream, INGEST_GROUP, 3)
        )
        await deliver(redis, stream, OTHER_GROUP, 3)

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["ingest"] == 0
        assert await remaining(redis, stream) == old

    async def test_without_ingest_group_nothing_trimmed(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, OTHER_GROUP, id="0", mkstream=True)
        old = await add_aged(redis, stream, tenant, OLD_S)
        await redis.xack(
            stream, OTHER_GROUP, *await deliver(redis, stream, OTHER_GROUP, 3)
        )

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["ingest"] == 0
        assert await remaining(redis, stream) == old

    async def test_missing_streams_skipped(self, redis: Redis, tenant: str) -> None:
        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed == {"ingest": 0, "events": 0, "dead": 0}
        assert not await redis.exists(ingest_stream(tenant))

    async def test_zero_retention_disables_trim(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
        old = await add_aged(redis, stream, tenant, OLD_S)
        await redis.xack(
            stream, INGEST_GROUP, *await deliver(redis, stream, INGEST_GROUP, 3)
        )
        settings = msgspec.structs.replace(SETTINGS, ingest_processed_s=0)

        trimmed = await trim_tenant(redis, tenant, settings)

        assert "ingest" not in trimmed
        assert await remaining(redis, stream) == old


class TestAgeTrim:
    async def test_old_events_trimmed_unread(self, redis: Redis, tenant: str) -> None:
        stream = events_stream(tenant)
        # A downstream group that read nothing does not hold back the events stream.
        await redis.xgroup_create(stream, "downstream", id="0", mkstream=True)
        await add_aged(redis, stream, tenant, OLD_S)
        young = await add_now(redis, stream, tenant)

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["events"] == 3
        assert await remaining(redis, stream) == [young]

    async def test_dead_letters_use_own_retention(
        self, redis: Redis, tenant: str
    ) -> None:
        stream = dead_letter_stream(tenant)
        await add_aged(redis, stream, tenant, 1500)
        # Older than events_s (600 s) and younger than dead_s (1200 s).
        within_dead_s = await add_aged(redis, stream, tenant, 900)

        trimmed = await trim_tenant(redis, tenant, SETTINGS)

        assert trimmed["dead"] == 3
        assert await remaining(redis, stream) == within_dead_s

    async def test_zero_retention_keeps_events(self, redis: Redis, tenant: str) -> None:
        stream = events_stream(tenant)
        old = await add_aged(redis, stream, tenant, OLD_S)
        settings = msgspec.structs.replace(SETTINGS, events_s=0)

        trimmed = await trim_tenant(redis, tenant, settings)

        assert "events" not in trimmed
        assert await remaining(redis, stream) == old


class TestConsumerApp:
    async def test_processed_entries_trimmed(self, redis: Redis, tenant: str) -> None:
        stream = ingest_stream(tenant)
        await add_aged(redis, stream, tenant, OLD_S)
        config = msgspec.structs.replace(config_for(tenant), retention=SETTINGS)
        app = create_app(config, redis_url(), f"trimmer-{uuid.uuid4().hex[:6]}")

        async with app:
            for _ in range(int(WAIT_TIMEOUT_S / 0.05)):
                if not await redis.xlen(stream):
                    break
                await asyncio.sleep(0.05)

        assert await redis.xlen(stream) == 0
        assert len(await read_events(redis, tenant)) == 3

    async def test_stop_skips_waiting_interval(self, redis: Redis, tenant: str) -> None:
        settings = msgspec.structs.replace(SETTINGS, interval_s=600.0)
        config = msgspec.structs.replace(config_for(tenant), retention=settings)
        app = create_app(config, redis_url(), f"trimmer-{uuid.uuid4().hex[:6]}")

        async with app:
            await asyncio.sleep(0.2)
            stopping = time.monotonic()

        assert time.monotonic() - stopping < 5
