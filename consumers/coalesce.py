"""Coalescing bursts of ``mailbox.changed.v1`` events into sync jobs.

A :class:`Coalescer` reads each tenant's events stream in its own consumer group
(:data:`hookgate.keys.SYNC_GROUP`), so it receives every event without taking any from
other subscribers. Each ``mailbox.changed.v1`` event updates its mailbox's state
hash in one script: the event count, the time of the first waiting event, and the
highest cursor ever seen. The mailbox enters the due set, scored by that first
time plus the coalescing window. Other event types are acknowledged and skipped.

A scheduler loop takes every due mailbox whose lease is free, in one script that
draws a fencing token, sets the lease and clears the count, and runs the job
handler on a :class:`~hookgate.consumers.jobs.SyncJob`. So the events that arrived
within the window become one job, and a mailbox runs one job at a time for as long
as that job keeps its lease (it renews it every third of the lease duration).
Events that arrive while a job runs wait for the next one. The same loop takes due
retries (:mod:`hookgate.consumers.retry`). When the handler returns, the job
commits its cursor through :class:`~hookgate.consumers.lease.Leases`, which a job
that lost its lease cannot do. A third loop (:meth:`Coalescer.recover_once`) files
the running jobs whose lease expired, because their worker stopped, as failed
attempts, so a crash delays a job but does not lose it.

This is an asyncio loop on redis-py rather than a FastStream app, because the work
is timer driven. The scheduler, the retry mover and recovery poll sorted sets and
hashes, so they would be tasks beside a FastStream subscriber anyway. The reader
is one XREADGROUP over every tenant's stream.

Times that decide when a job is due come from Redis' clock (TIME in the scripts).
The failure times that a job carries (``first_failed_at``, ``last_failed_at``) come
from this host's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from hookgate.events import DownstreamEvent, MailboxChanged
from hookgate.keys import (
    SYNC_GROUP,
    events_stream,
    sync_due_key,
    sync_fence_key,
    sync_lease_key,
    sync_mailbox,
    sync_pending_key,
    sync_running_key,
)

from .downstream import EVENT_FIELD
from .jobs import (
    MAILBOX_SYNC,
    JobHandler,
    LeaseExpiredError,
    PermanentJobError,
    RetryPolicy,
    SyncJob,
    describe_error,
)
from .lease import CURSOR_GREATER_LUA, Leases
from .retry import SERVER_NOW_LUA, RetryQueue

logger = structlog.get_logger()

_event_decoder = msgspec.json.Decoder(DownstreamEvent)
_job_decoder = msgspec.json.Decoder(SyncJob)

# Records one event in its mailbox's state. The first waiting event sets
# first_seen and puts the mailbox in the due set (NX keeps the due time of a
# mailbox that already waits, so a steady trickle cannot postpone it forever).
# KEYS: state hash, due set. ARGV: provider, mailbox, cursor ('' for none),
# window in ms, due-set member.
ADD_EVENT_SCRIPT = (
    CURSOR_GREATER_LUA
    + SERVER_NOW_LUA
    + """
if redis.call('HSETNX', KEYS[1], 'first_seen', now) == 1 then
  redis.call('HSET', KEYS[1], 'provider', ARGV[1], 'mailbox', ARGV[2])
  redis.call('ZADD', KEYS[2], 'NX', now + tonumber(ARGV[4]), ARGV[5])
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
if ARGV[3] ~= '' and cursor_greater(ARGV[3], redis.call('HGET', KEYS[1], 'cursor')) then
  redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
end
return 1
"""
)

# Turns a due mailbox's waiting events into a job under a new lease, records the
# job in the running hash and returns it as JSON. Returns -1 when a job of the
# mailbox still runs (the mailbox is then due busy_delay ms later), 0 when nothing
# waits. Redis' cjson writes numbers with 14 significant digits, which is exact for
# fencing tokens and event counts below 10**14.
# KEYS: state hash, due set, lease, fencing counter, running hash.
# ARGV: due-set member, lease ms, busy delay ms, tenant, provider, mailbox, job id.
TAKE_MAILBOX_SCRIPT = (
    SERVER_NOW_LUA
    + """
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[3]), ARGV[1])
  return -1
end
redis.call('ZREM', KEYS[2], ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'count', 'cursor')
if not state[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'count', 'first_seen')
local token = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[3], token, 'PX', ARGV[2])
local job = cjson.encode({
  tenant = ARGV[4],
  provider = ARGV[5],
  mailbox = ARGV[6],
  cursor = state[2] or cjson.null,
  fencing_token = token,
  job_id = ARGV[7],
  event_count = tonumber(state[1]),
})
redis.call('HSET', KEYS[5], ARGV[1], job)
return job
"""
)


def _cursor(event: MailboxChanged) -> str:
    # A cursor that is not a decimal number cannot be ordered, so it counts as none.
    cursor = event.cursor
    if cursor is None or not cursor.isdecimal() or not cursor.isascii():
        return ""
    return cursor


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class CoalescerSettings:
    """Timing and limits of a :class:`Coalescer`; durations in milliseconds."""

    window_ms: int = 1_000
    """How long a mailbox's first waiting event waits for more before its job."""
    lease_ms: int = 30_000
    """Lease duration; a running job renews it every third of this."""
    tick_ms: int = 50
    """How often the scheduler looks for due mailboxes and due retries."""
    busy_delay_ms: int = 0
    """How much later a due mailbox whose lease is held is tried again; 0 means
    ``window_ms``."""
    max_jobs: int = 16
    """Jobs running at once in this process, over all tenants."""
    read_count: int = 500
    """Entries per XREADGROUP reply."""
    block_ms: int = 100
    """How long one XREADGROUP waits for new entries; bounds the stop latency."""
    recover_interval_ms: int = 1_000
    """How often running jobs whose lease expired are looked for."""
    retry_policies: Mapping[str, RetryPolicy] = field(
        default_factory=lambda: {MAILBOX_SYNC: RetryPolicy()}
    )
    """Retry policy per job type; a type without one gets ``RetryPolicy()``."""

    def __post_init__(self) -> None:
        positive = (
            "window_ms",
            "lease_ms",
            "tick_ms",
            "max_jobs",
            "read_count",
            "recover_interval_ms",
        )
        for name in positive:
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} is {value}; it must be positive")

    def policy(self, job_type: str) -> RetryPolicy:
        return self.retry_policies.get(job_type) or RetryPolicy()


class Coalescer:
    """Reads mailbox events, coalesces them into sync jobs and runs ``handler``.

    ``consumer_name`` names this process in :data:`hookgate.keys.SYNC_GROUP` and
    must be unique among running coalescers. Several processes may run for the
    same tenants: the due sets and leases make each job run in one of them.
    """

    def __init__(
        self,
        redis: Redis,
        tenants: Sequence[str],
        handler: JobHandler,
        consumer_name: str,
        settings: CoalescerSettings | None = None,
    ) -> None:
        if not consumer_name:
            raise ValueError(
                "consumer_name is empty; pass a name unique to this process"
            )
        self.redis = redis
        self.tenants = tuple(tenants)
        self.handler = handler
        self.consumer_name = consumer_name
        self.settings = settings or CoalescerSettings()
        self.leases = Leases(redis)
        self.retries = RetryQueue(redis)
        self._add_event = redis.register_script(ADD_EVENT_SCRIPT)
        self._take_mailbox = redis.register_script(TAKE_MAILBOX_SCRIPT)
        self._running: set[asyncio.Task[None]] = set()

    @property
    def running_jobs(self) -> int:
        """Number of jobs this process is running now."""
        return len(self._running)

    @property
    def busy_delay_ms(self) -> int:
        return self.settings.busy_delay_ms or self.settings.window_ms

    async def create_groups(self) -> None:
        """Create the sync group on every tenant's events stream, at the start."""
        # Created at id 0, so events written before the first coalescer started
        # are coalesced too, as the ingest consumer does with its group.
        for tenant in self.tenants:
            try:
                await self.redis.xgroup_create(
                    events_stream(tenant), SYNC_GROUP, id="0", mkstream=True
                )
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    async def add_events(self, tenant: str, events: Iterable[MailboxChanged]) -> int:
        """Record ``events`` in their mailboxes' states in one pipelined round trip.

        Returns the number of events recorded.
        """
        window_ms = self.settings.window_ms
        count = 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                member = sync_mailbox(event.provider, event.mailbox)
                await self._add_event(
                    keys=[sync_pending_key(tenant, member), sync_due_key(tenant)],
                    args=[
                        event.provider,
                        event.mailbox,
                        _cursor(event),
                        window_ms,
                        member,
                    ],
                    client=pipe,
                )
                count += 1
            if count:
                await pipe.execute()
        return count

    async def read_once(self, tenant: str, *, pending: bool = False) -> int:
        """Read one batch from ``tenant``'s events stream and record it.

        With ``pending``, reads the entries that this consumer read before and
        did not acknowledge (after a crash) instead of new ones. Entries are
        acknowledged only after their events were recorded. Returns the number of
        entries read.
        """
        # One stream per call, because XREADGROUP over several tenants' streams
        # would span hash slots, which Redis Cluster rejects.
        stream = events_stream(tenant)
        reply: Any = await self.redis.xreadgroup(
            SYNC_GROUP,
            self.consumer_name,
            {stream: "0" if pending else ">"},
            count=self.settings.read_count,
            block=None if pending else self.settings.block_ms,
        )
        read = 0
        for _, entries in reply or []:
            events: list[MailboxChanged] = []
            ids = []
            for entry_id, fields in entries:
                ids.append(entry_id)
                event = self._decode(tenant, entry_id, fields)
                if isinstance(event, MailboxChanged):
                    events.append(event)
            await self.add_events(tenant, events)
            if ids:
                await self.redis.xack(stream, SYNC_GROUP, *ids)
            read += len(ids)
        return read

    def _decode(
        self, tenant: str, entry_id: bytes, fields: Mapping[bytes, bytes] | None
    ) -> DownstreamEvent | None:
        # A deleted entry that was still pending comes back without fields.
        raw = (fields or {}).get(EVENT_FIELD.encode())
        if raw is None:
            return None
        try:
            return _event_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # Events streams contain hookgate's own output, so the entry comes from a
            # newer event type or a foreign writer. Neither is a mailbox change.
            logger.warning(
                "sync_event.skipped",
                tenant=tenant,
                entry_id=entry_id.decode(),
                reason=str(exc),
            )
            return None

    async def take_mailbox(self, tenant: str, member: str) -> SyncJob | None:
        """Turn a mailbox's waiting events into a job holding the mailbox lease.

        Returns None when a job of the mailbox still runs or nothing waits.
        """
        provider, _, mailbox = member.partition(":")
        reply: Any = await self._take_mailbox(
            keys=[
                sync_pending_key(tenant, member),
                sync_due_key(tenant),
                sync_lease_key(tenant, member),
                sync_fence_key(tenant, member),
                sync_running_key(tenant),
            ],
            args=[
                member,
                self.settings.lease_ms,
                self.busy_delay_ms,
                tenant,
                provider,
                mailbox,
                uuid.uuid4().hex,
            ],
        )
        if not isinstance(reply, bytes):
            return None
        return _job_decoder.decode(reply)

    async def schedule_once(self) -> int:
        """Start the jobs of due mailboxes and due retries, up to ``max_jobs``.

        Returns the number of jobs started.
        """
        started = 0
        seconds, micros = await self.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        for tenant in self.tenants:
            free = self.settings.max_jobs - len(self._running)
            if free <= 0:
                break
            members: Any = await self.redis.zrangebyscore(
                sync_due_key(tenant), "-inf", now_ms, start=0, num=free
            )
            for member in members:
                job = await self.take_mailbox(tenant, member.decode())
                if job is not None:
                    self._start(job)
                    started += 1

            retried = await self.retries.take_due(
                tenant,
                limit=self.settings.max_jobs - len(self._running),
                lease_ms=self.settings.lease_ms,
                busy_delay_ms=self.busy_delay_ms,
            )
            for job in retried:
                self._start(job)
                started += 1
        return started

    def _start(self, job: SyncJob) -> None:
        task = asyncio.get_running_loop().create_task(self.run_job(job))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def run_job(self, job: SyncJob) -> None:
        """Run the handler on ``job``, which holds its lease, then settle the job.

        On success the job commits its cursor. On failure it is filed for a retry
        or dead-lettered. Errors from Redis while settling are logged, not raised,
        and :meth:`recover_once` retries the job once its lease expired.
        """
        log = logger.bind(
            tenant=job.tenant,
            provider=job.provider,
            mailbox=job.mailbox,
            job_id=job.job_id,
            attempt=job.attempt,
            fencing_token=job.fencing_token,
        )
        renewer = asyncio.get_running_loop().create_task(self._renew(job, log))
        started = time.monotonic()
        error: Exception | None = None
        try:
            await self.handler(job)
        except Exception as exc:
            error = exc
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        duration_ms = round((time.monotonic() - started) * 1000, 1)

        # A Redis failure here leaves the job in the running hash, and recovery
        # files it once its lease expires, as after a crash.
        try:
            if error is None:
                await self._commit(job, log, duration_ms)
            else:
                await self._settle_failure(job, error, log, duration_ms)
        except RedisError as exc:
            log.error("sync_job.settle_failed", reason=str(exc))

    async def _renew(self, job: SyncJob, log: Any) -> None:
        interval_s = self.settings.lease_ms / 3 / 1000
        while True:
            await asyncio.sleep(interval_s)
            try:
                renewed = await self.leases.renew(job, self.settings.lease_ms)
            except RedisError as exc:
                log.warning("sync_job.lease_renew_failed", reason=str(exc))
                continue
            if not renewed:
                log.warning("sync_job.lease_lost")
                return

    async def _commit(self, job: SyncJob, log: Any, duration_ms: float) -> None:
        if await self.leases.commit(job):
            log.info(
                "sync_job.completed",
                cursor=job.cursor,
                event_count=job.event_count,
                duration_ms=duration_ms,
            )
        else:
            log.warning(
                "sync_job.commit_rejected",
                reason="the lease expired or passed to a later job; unless a later"
                " job took it, recovery runs this job again",
                duration_ms=duration_ms,
            )

    async def _settle_failure(
        self,
        job: SyncJob,
        error: Exception,
        log: Any,
        duration_ms: float | None = None,
        recovered: bytes | None = None,
    ) -> None:
        failed_at = _now_ms()
        failed = msgspec.structs.replace(
            job,
            last_error=describe_error(error),
            first_failed_at=job.first_failed_at or failed_at,
            last_failed_at=failed_at,
        )
        policy = self.settings.policy(job.job_type)
        permanent = isinstance(error, PermanentJobError)
        outcome = {
            "reason": str(error),
            "error_type": type(error).__name__,
            "duration_ms": duration_ms,
        }
        if permanent or job.attempt >= policy.max_attempts:
            entry_id = await self.retries.dead_letter(failed, recovered=recovered)
            if entry_id is None:
                self._log_not_settled(log, recovered)
                return
            log.error("sync_job.dead_lettered", permanent=permanent, **outcome)
            return

        delay_ms = policy.delay_ms(job.attempt)
        retry = msgspec.structs.replace(failed, attempt=job.attempt + 1)
        due = await self.retries.reschedule(retry, delay_ms, recovered=recovered)
        if due is None:
            self._log_not_settled(log, recovered)
            return
        log.warning("sync_job.retry_scheduled", delay_ms=round(delay_ms, 1), **outcome)

    @staticmethod
    def _log_not_settled(log: Any, recovered: bytes | None) -> None:
        if recovered is None:
            # The lease expired while the handler ran, so recovery files the job,
            # unless a later job of the mailbox took the lease first.
            log.warning("sync_job.lease_lost", reason="lease expired before settling")
        # A recovered job that changed meanwhile was settled by a live worker.

    async def recover_once(self) -> int:
        """File the running jobs whose lease expired as failed attempts.

        Their worker stopped, or lost Redis for longer than the lease, while the
        handler ran. Each is retried under its policy, or dead-lettered after its
        last attempt, with :class:`~hookgate.consumers.jobs.LeaseExpiredError` as
        its error. Returns the number of jobs found.
        """
        found = 0
        for tenant in self.tenants:
            for raw, job in await self.retries.orphans(tenant):
                found += 1
                log = logger.bind(
                    tenant=job.tenant,
                    provider=job.provider,
                    mailbox=job.mailbox,
                    job_id=job.job_id,
                    attempt=job.attempt,
                    fencing_token=job.fencing_token,
                )
                log.warning("sync_job.recovered")
                error = LeaseExpiredError(
                    f"the lease of {self.settings.lease_ms} ms expired before the"
                    " job finished, because its worker stopped or lost Redis"
                )
                await self._settle_failure(job, error, log, recovered=raw)
        return found

    async def run(self, stop: asyncio.Event) -> None:
        """Read, coalesce and run jobs until ``stop`` is set, then drain.

        Creates the groups, records this consumer's unacknowledged entries from a
        previous run, then runs the reader and the scheduler. After ``stop`` it
        waits for running jobs to finish. Raises
        :class:`redis.exceptions.RedisError` when Redis fails at the start.
        """
        await self.create_groups()
        for tenant in self.tenants:
            while await self.read_once(tenant, pending=True):
                pass
        logger.info(
            "sync_worker.started",
            tenants=self.tenants,
            consumer=self.consumer_name,
            group=SYNC_GROUP,
        )
        # NOTE: entries that a crashed coalescer read and never acknowledged stay
        # in its pending list until a coalescer with the same name starts again,
        # because nothing claims other consumers' entries (XAUTOCLAIM) yet.
        loop = asyncio.get_running_loop()
        loops = [
            loop.create_task(
                self._loop(
                    f"read:{tenant}", functools.partial(self.read_once, tenant), stop
                )
            )
            for tenant in self.tenants
        ]
        loops.append(
            loop.create_task(
                self._loop(
                    "schedule", self.schedule_once, stop, self.settings.tick_ms / 1000
                )
            )
        )
        loops.append(
            loop.create_task(
                self._loop(
                    "recover",
                    self.recover_once,
                    stop,
                    self.settings.recover_interval_ms / 1000,
                )
            )
        )
        try:
            await asyncio.gather(*loops)
        finally:
            stop.set()
            for task in loops:
                # Each loop checks the event after at most one block or interval.
                with contextlib.suppress(Exception):
                    await task
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
        logger.info("sync_worker.stopped", consumer=self.consumer_name)

    async def _loop(
        self,
        name: str,
        step: Callable[[], Awaitable[int]],
        stop: asyncio.Event,
        interval_s: float = 0.0,
    ) -> None:
        # Stopping goes through an event, as the ingest consumer's reclaim loop
        # does, so that a step in progress (a read, a take) is never cut in half.
        while not stop.is_set():
            try:
                await step()
            except RedisError as exc:
                logger.warning("sync_worker.step_failed", step=name, reason=str(exc))
                # One line a second at most while Redis is down.
                interval = max(interval_s, 1.0)
            else:
                interval = interval_s
            if interval:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)


async def log_job(job: SyncJob) -> None:
    """Log ``job``; the demo handler of ``hookgate sync-worker``."""
    logger.info(
        "sync_job.received",
        tenant=job.tenant,
        provider=job.provider,
        mailbox=job.mailbox,
        cursor=job.cursor,
        job_id=job.job_id,
        attempt=job.attempt,
        event_count=job.event_count,
        fencing_token=job.fencing_token,
    )


async def run_sync_worker(
    tenants: Sequence[str],
    redis_url: str,
    consumer_name: str,
    handler: JobHandler = log_job,
    settings: CoalescerSettings | None = None,
) -> None:
    """Run a :class:`Coalescer` until SIGINT or SIGTERM, then drain its jobs.

    Raises :class:`redis.exceptions.RedisError` when Redis fails at the start.
    """
    redis = Redis.from_url(redis_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        coalescer = Coalescer(redis, tenants, handler, consumer_name, settings)
        await coalescer.run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await redis.aclose()
