"""Helpers for the sync job tests: publish mailbox events, run a coalescer, wait."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from hookgate.consumers.coalesce import Coalescer, CoalescerSettings
from hookgate.consumers.downstream import event_fields
from hookgate.consumers.jobs import JobHandler, SyncJob
from hookgate.events import DownstreamEvent, MailboxChanged
from hookgate.keys import events_stream

WAIT_TIMEOUT_S = 10.0


def mailbox_event(
    tenant: str, mailbox: str, cursor: str | None, provider: str = "gmail-pubsub"
) -> MailboxChanged:
    return MailboxChanged(
        event_id=f"evt_{uuid.uuid4().hex}",
        tenant=tenant,
        source=f"{tenant}-{provider}",
        provider=provider,
        mailbox=mailbox,
        cursor=cursor,
        received_at=time.time_ns() // 1_000_000,
    )


async def publish(redis: Redis, tenant: str, events: Sequence[DownstreamEvent]) -> None:
    """Append ``events`` to ``tenant``'s events stream in one pipelined round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            fields: dict[Any, Any] = event_fields(event)
            pipe.xadd(events_stream(tenant), fields)
        await pipe.execute()


@dataclass(frozen=True)
class Run:
    """One handler call: the job and when it started and ended (monotonic s)."""

    job: SyncJob
    started: float
    ended: float


class Recorder:
    """A job handler that records its calls and fails as ``fail`` decides."""

    def __init__(
        self,
        duration_s: float = 0.0,
        fail: Callable[[SyncJob], Exception | None] | None = None,
    ) -> None:
        self.runs: list[Run] = []
        self.duration_s = duration_s
        self.fail = fail

    async def __call__(self, job: SyncJob) -> None:
        started = time.monotonic()
        await asyncio.sleep(self.duration_s)
        ended = time.monotonic()
        self.runs.append(Run(job, started, ended))
        error = self.fail(job) if self.fail else None
        if error is not None:
            raise error

    def runs_jobs(self) -> list[SyncJob]:
        return [run.job for run in self.runs]

    def jobs_of(self, mailbox: str) -> list[SyncJob]:
        return [run.job for run in self.runs if run.job.mailbox == mailbox]


@asynccontextmanager
async def running_coalescer(
    redis: Redis,
    tenants: Sequence[str],
    handler: JobHandler,
    settings: CoalescerSettings,
) -> AsyncIterator[Coalescer]:
    """Run a coalescer in this event loop; stop it and wait for it on exit."""
    coalescer = Coalescer(
        redis, tenants, handler, f"test-{uuid.uuid4().hex[:8]}", settings
    )
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(coalescer.run(stop))
    try:
        yield coalescer
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_TIMEOUT_S)


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    description: str,
    timeout_s: float = WAIT_TIMEOUT_S,
) -> None:
    """Poll ``condition`` every 10 ms; raise TimeoutError naming ``description``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{description} did not happen within {timeout_s} s")


async def delete_sync_keys(redis: Redis, tenant: str) -> None:
    """Delete every coalescer key of ``tenant``."""
    keys = [key async for key in redis.scan_iter(match=f"hg:{{{tenant}}}:sync:*")]
    if keys:
        await redis.delete(*keys)
