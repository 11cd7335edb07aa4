"""Mailbox leases with fencing tokens, so one sync job per mailbox runs at a time.

A job holds its mailbox's lease (:func:`hookgate.keys.sync_lease_key`) while it
runs. The lease's value is a fencing token drawn with INCR from the mailbox's
counter, so every holder gets a larger token than the one before it. The lease
expires unless the running job renews it. A job whose lease expired cannot renew
it, commit, or file itself for a retry any more, because each of those scripts
first checks that the lease still holds the job's own token. This module owns the
renew and commit scripts and never runs a job handler.

The scripts that take a lease live with the code that takes jobs
(:mod:`hookgate.consumers.coalesce`, :mod:`hookgate.consumers.retry`). A lease is
taken in the same atomic step that removes the job from its sorted set and records
it in the running hash (:func:`hookgate.keys.sync_running_key`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from hookgate.keys import (
    sync_cursor_key,
    sync_lease_key,
    sync_mailbox,
    sync_running_key,
)

from .jobs import SyncJob

# Compares two Gmail historyIds of any length as unsigned integers, because Lua
# numbers are doubles and lose precision above 2**53. A missing b counts as lower.
CURSOR_GREATER_LUA = """
local function cursor_greater(a, b)
  if not b or b == '' then return true end
  a = (string.gsub(a, '^0+', ''))
  b = (string.gsub(b, '^0+', ''))
  if #a ~= #b then return #a > #b end
  return a > b
end
"""

# KEYS: lease. ARGV: token, lease duration in ms.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Stores the job's cursor as the mailbox's committed cursor, releases the lease and
# removes the job from the running hash, only while the lease holds the job's
# token. A cursor lower than the committed one is not stored, so a retried older
# job cannot move the mailbox back.
# KEYS: lease, committed cursor, running hash. ARGV: token, cursor ('' for none),
# due-set member.
COMMIT_SCRIPT = (
    CURSOR_GREATER_LUA
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] ~= '' and cursor_greater(ARGV[2], redis.call('GET', KEYS[2])) then
  redis.call('SET', KEYS[2], ARGV[2])
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[3])
return 1
"""
)


class Leases:
    """Renews and commits the leases of running sync jobs.

    Every method awaits one script call and raises
    :class:`redis.exceptions.RedisError` when it fails.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._renew = redis.register_script(RENEW_SCRIPT)
        self._commit = redis.register_script(COMMIT_SCRIPT)

    async def renew(self, job: SyncJob, lease_ms: int) -> bool:
        """Extend ``job``'s lease to ``lease_ms`` from now.

        Returns False when the lease expired or passed to a later job.
        """
        lease = sync_lease_key(job.tenant, sync_mailbox(job.provider, job.mailbox))
        renewed = await self._renew(keys=[lease], args=[job.fencing_token, lease_ms])
        return bool(renewed)

    async def commit(self, job: SyncJob) -> bool:
        """Store ``job.cursor`` as the mailbox's committed cursor and end the lease.

        Returns False, and changes nothing, when the lease no longer holds the
        job's fencing token because it expired or a later job took it.
        """
        member = sync_mailbox(job.provider, job.mailbox)
        committed = await self._commit(
            keys=[
                sync_lease_key(job.tenant, member),
                sync_cursor_key(job.tenant, member),
                sync_running_key(job.tenant),
            ],
            args=[job.fencing_token, job.cursor or "", member],
        )
        return bool(committed)


async def committed_cursor(
    redis: Redis, tenant: str, provider: str, mailbox: str
) -> str | None:
    """Return the cursor of the mailbox's last committed sync, or None."""
    key = sync_cursor_key(tenant, sync_mailbox(provider, mailbox))
    value: Any = await redis.get(key)
    return value.decode() if value is not None else None
