"""Retrying failed sync jobs with backoff, and dead-lettering the ones that give up.

A failed job goes, as JSON, into the tenant's retry set
(:func:`hookgate.keys.sync_retry_key`), a sorted set scored by the Unix millisecond
at which the next attempt is due. Its mailbox lease is released in the same script,
so other jobs of that mailbox, and jobs of every other mailbox, run meanwhile. The
mover (:meth:`RetryQueue.take_due`) takes due jobs out of the set together with a
new lease for their mailbox. A job that used its last attempt, or raised
:class:`~hookgate.consumers.jobs.PermanentJobError`, goes to the tenant's
dead-letter stream instead.

Every running job has an entry in the tenant's running hash
(:func:`hookgate.keys.sync_running_key`) until it is committed, filed for a retry
or dead-lettered. An entry whose mailbox lease expired belongs to a worker that
stopped, so recovery (:meth:`RetryQueue.orphans`) files that job as a failed
attempt.

Times come from the Redis server's clock (TIME inside the scripts), so workers on
hosts whose clocks disagree still agree on when a job is due.

A job dead-letter entry has the fields of an ingest dead letter that apply to it
(``error``, ``error_type``, ``failed_at``) and these:

==================  =========================================================
``attempts``        attempts made, the failed last one included
``first_failed_at`` time of the first failed attempt, Unix milliseconds
``last_failed_at``  time of the last failed attempt, Unix milliseconds
``job_id``          the job's id, the same on every attempt
``job_type``        e.g. ``mailbox.sync``
``provider``        the mailbox's provider
``mailbox``         the mailbox
``cursor``          the job's cursor; absent when it had none
``event_count``     events coalesced into the job
``job``             the whole :class:`~hookgate.consumers.jobs.SyncJob` as JSON
==================  =========================================================
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from hookgate.keys import (
    dead_letter_stream,
    sync_fence_key,
    sync_lease_key,
    sync_mailbox,
    sync_retry_key,
    sync_running_key,
)

from .jobs import SyncJob

logger = structlog.get_logger()

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SyncJob)

SERVER_NOW_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# Decides whether the caller may settle a job. A worker may while the lease holds
# its token (ARGV[1]). Recovery passes an empty token and may when the mailbox has
# no lease and the running hash still contains the job it read (ARGV[3]). So a job
# that a live worker settled, or that a successor replaced, is left alone.
# KEYS[1]: lease, KEYS[2]: running hash. ARGV[2]: due-set member.
SETTLE_GUARD_LUA = """
local function may_settle()
  if ARGV[1] ~= '' then
    return redis.call('GET', KEYS[1]) == ARGV[1]
  end
  return redis.call('EXISTS', KEYS[1]) == 0
    and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3]
end
"""

# Files the job for its next attempt, releases its lease and removes it from the
# running hash. Returns the due time in Unix milliseconds, or 0 when the caller may
# not settle the job.
# KEYS: lease, running hash, retry set.
# ARGV: token, member, expected running entry, delay in ms, job JSON.
RESCHEDULE_SCRIPT = (
    SERVER_NOW_LUA
    + SETTLE_GUARD_LUA
    + """
if not may_settle() then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
local due = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[3], due, ARGV[5])
return due
"""
)

# Takes one due job with a new lease on its mailbox and records it in the running
# hash. Returns the new fencing token, or 0 when another worker took the job first.
# Returns -1 when a job of the mailbox still runs, and the job then waits
# busy_delay ms more.
# KEYS: retry set, lease, fencing counter, running hash.
# ARGV: job JSON, lease ms, busy delay ms, due-set member.
TAKE_RETRY_SCRIPT = (
    SERVER_NOW_LUA
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
  return -1
end
redis.call('ZREM', KEYS[1], ARGV[1])
local token = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], token, 'PX', ARGV[2])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[1])
return token
"""
)

# Appends the dead-letter entry, releases the lease and removes the job from the
# running hash in one step, so a crash cannot leave the job recorded nowhere.
# Returns the entry id, or false when the caller may not settle the job.
# KEYS: lease, running hash, dead-letter stream.
# ARGV: token, member, expected running entry, then field and value pairs.
DEAD_LETTER_SCRIPT = (
    SETTLE_GUARD_LUA
    + """
if not may_settle() then
  return false
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
"""
)


def job_dead_letter_fields(job: SyncJob) -> dict[str, str]:
    """Return the dead-letter fields of ``job``, which carries its last failure."""
    error_type, _, error = (job.last_error or "").partition(": ")
    fields = {
        "error": error,
        "error_type": error_type,
        "failed_at": str(job.last_failed_at),
        "attempts": str(job.attempt),
        "first_failed_at": str(job.first_failed_at),
        "last_failed_at": str(job.last_failed_at),
        "job_id": job.job_id,
        "job_type": job.job_type,
        "provider": job.provider,
        "mailbox": job.mailbox,
        "event_count": str(job.event_count),
        "job": _encoder.encode(job).decode(),
    }
    if job.cursor is not None:
        fields["cursor"] = job.cursor
    return fields


class RetryQueue:
    """The scripts that file, take and dead-letter the sync jobs of all tenants.

    Every method raises :class:`redis.exceptions.RedisError` when Redis fails.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._reschedule = redis.register_script(RESCHEDULE_SCRIPT)
        self._take = redis.register_script(TAKE_RETRY_SCRIPT)
        self._dead_letter = redis.register_script(DEAD_LETTER_SCRIPT)

    async def reschedule(
        self, job: SyncJob, delay_ms: float, *, recovered: bytes | None = None
    ) -> int | None:
        """File ``job`` for another attempt in ``delay_ms`` and release its lease.

        ``job`` is the one to run next: its attempt count and last error are
        already updated. A worker passes the job that holds the lease. Recovery
        passes the running-hash entry it read as ``recovered``, and ``job`` is
        filed only if that entry is unchanged and the mailbox has no lease.
        Returns the due time, Unix milliseconds by Redis' clock, or None when the
        job was not filed.
        """
        member = sync_mailbox(job.provider, job.mailbox)
        token = "" if recovered is not None else job.fencing_token
        due = await self._reschedule(
            keys=[
                sync_lease_key(job.tenant, member),
                sync_running_key(job.tenant),
                sync_retry_key(job.tenant),
            ],
            args=[token, member, recovered or b"", int(delay_ms), _encoder.encode(job)],
        )
        return int(due) or None

    async def dead_letter(
        self, job: SyncJob, *, recovered: bytes | None = None
    ) -> bytes | None:
        """Append ``job`` to its tenant's dead-letter stream and release its lease.

        ``recovered`` works as for :meth:`reschedule`. Returns the new entry's id,
        or None when the job was not dead-lettered.
        """
        member = sync_mailbox(job.provider, job.mailbox)
        token = "" if recovered is not None else job.fencing_token
        args: list[Any] = [token, member, recovered or b""]
        for name, value in job_dead_letter_fields(job).items():
            args += [name, value]
        entry_id = await self._dead_letter(
            keys=[
                sync_lease_key(job.tenant, member),
                sync_running_key(job.tenant),
                dead_letter_stream(job.tenant),
            ],
            args=args,
        )
        return bytes(entry_id) if entry_id else None

    async def orphans(self, tenant: str) -> list[tuple[bytes, SyncJob]]:
        """Return the running-hash entries of ``tenant`` whose mailbox has no lease.

        Each comes with its raw entry, which :meth:`reschedule` and
        :meth:`dead_letter` take as ``recovered``. Their worker stopped, or lost
        Redis for longer than the lease, while the job ran.
        """
        running: Any = await self._redis.hgetall(sync_running_key(tenant))
        found: list[tuple[bytes, SyncJob]] = []
        for member, raw in running.items():
            if await self._redis.exists(sync_lease_key(tenant, member.decode())):
                continue
            try:
                job = _decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._redis.hdel(sync_running_key(tenant), member)
                logger.error(
                    "sync_job.running_entry_dropped", tenant=tenant, reason=str(exc)
                )
                continue
            found.append((raw, job))
        return found

    async def take_due(
        self, tenant: str, *, limit: int, lease_ms: int, busy_delay_ms: int
    ) -> list[SyncJob]:
        """Take at most ``limit`` due jobs of ``tenant``, each with a new lease.

        A job whose mailbox lease is held stays in the set, ``busy_delay_ms``
        later. The returned jobs carry their new fencing tokens.
        """
        if limit <= 0:
            return []
        retry_key = sync_retry_key(tenant)
        seconds, micros = await self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        members: Any = await self._redis.zrangebyscore(
            retry_key, "-inf", now_ms, start=0, num=limit
        )
        jobs: list[SyncJob] = []
        for raw in members:
            try:
                job = _decoder.decode(raw)
            except msgspec.DecodeError as exc:
                # Only this module writes the set, so an invalid member comes from a
                # bug or a hand edit. It is dropped so that it cannot block the set.
                await self._redis.zrem(retry_key, raw)
                logger.error("sync_job.retry_dropped", tenant=tenant, reason=str(exc))
                continue
            member = sync_mailbox(job.provider, job.mailbox)
            token = await self._take(
                keys=[
                    retry_key,
                    sync_lease_key(tenant, member),
                    sync_fence_key(tenant, member),
                    sync_running_key(tenant),
                ],
                args=[raw, lease_ms, busy_delay_ms, member],
            )
            if int(token) > 0:
                jobs.append(msgspec.structs.replace(job, fencing_token=int(token)))
        return jobs
