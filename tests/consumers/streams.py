"""Redis helpers for the consumer tests: run the app, wait for it, read streams."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from redis.asyncio import Redis

from hookgate.config import Config, GatewaySettings, Source
from hookgate.consumers import EVENT_FIELD, create_app
from hookgate.events import DownstreamEvent
from hookgate.keys import INGEST_GROUP, dead_letter_stream, events_stream


def redis_url() -> str:
    """Return the URL of database 9 on the session's private redis-server."""
    return os.environ["HOOKGATE_TEST_REDIS_URL"]


WAIT_TIMEOUT_S = 10.0


def config_for(*tenants: str) -> Config:
    """Return a configuration with one source per tenant."""
    sources = tuple(
        Source(
            id=f"{tenant}-src",
            tenant=tenant,
            provider="standard-webhooks",
            secrets=(b"key",),
        )
        for tenant in tenants
    )
    return Config(gateway=GatewaySettings(), sources=sources)


@asynccontextmanager
async def running_consumer(*tenants: str) -> AsyncIterator[None]:
    """Run the ingest consumer for ``tenants`` in this event loop."""
    app = create_app(config_for(*tenants), redis_url(), f"test-{uuid.uuid4().hex[:8]}")
    async with app:
        yield


async def group_state(redis: Redis, stream: str) -> tuple[bool, int]:
    """Return whether the group has read every entry, and its pending count."""
    info = await redis.xinfo_stream(stream)
    groups = await redis.xinfo_groups(stream)
    group = next(g for g in groups if g["name"] == INGEST_GROUP.encode())
    read_all = group["last-delivered-id"] == info["last-generated-id"]
    return read_all, int(group["pending"])


async def wait_processed(redis: Redis, stream: str, *, pending: int = 0) -> None:
    """Wait until the group has read every entry and ``pending`` are left unacked.

    Raises :class:`TimeoutError` with the last state seen after WAIT_TIMEOUT_S.
    """
    state: tuple[bool, int] | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_TIMEOUT_S
    while loop.time() < deadline:
        if await redis.exists(stream) and await redis.xinfo_groups(stream):
            state = await group_state(redis, stream)
            if state == (True, pending):
                return
        await asyncio.sleep(0.02)
    raise TimeoutError(
        f"group {INGEST_GROUP!r} on {stream} did not reach (read_all=True,"
        f" pending={pending}) in {WAIT_TIMEOUT_S} s; last state {state}"
    )


async def read_events(redis: Redis, tenant: str) -> list[DownstreamEvent]:
    """Return every event in ``tenant``'s events stream, decoded without FastStream."""
    entries = await redis.xrange(events_stream(tenant))
    return [
        msgspec.json.decode(fields[EVENT_FIELD.encode()], type=DownstreamEvent)
        for _, fields in entries
    ]


async def read_dead_letters(redis: Redis, tenant: str) -> list[dict[bytes, bytes]]:
    """Return the fields of every entry in ``tenant``'s dead-letter stream."""
    entries = await redis.xrange(dead_letter_stream(tenant))
    return [fields for _, fields in entries]
