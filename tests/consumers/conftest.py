"""Fixtures for the consumer tests: a real Redis client and throwaway tenants.

The tests fail, and never skip, when Redis is unreachable, so a broken setup
cannot pass as a green run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hookgate.keys import dead_letter_stream, events_stream, ingest_stream

from .streams import redis_url


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url())
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        pytest.fail(f"Redis at {redis_url()} is unreachable ({exc})")
    yield client
    await client.aclose()


@pytest.fixture
async def new_tenant(redis: Redis) -> AsyncIterator[Callable[[], str]]:
    """Return a factory of unique tenant names, and delete their keys afterwards."""
    created: list[str] = []

    def make() -> str:
        tenant = f"t-{uuid.uuid4().hex[:12]}"
        created.append(tenant)
        return tenant

    yield make

    for tenant in created:
        await redis.delete(
            ingest_stream(tenant), events_stream(tenant), dead_letter_stream(tenant)
        )


@pytest.fixture
def tenant(new_tenant: Callable[[], str]) -> str:
    return new_tenant()
