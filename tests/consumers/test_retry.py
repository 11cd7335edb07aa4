"""Tests of sync job retries with backoff and of job dead-lettering.

The handler fails on purpose; delays are tens of milliseconds, on the session's
private Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest
from redis.asyncio import Redis

from hookgate.consumers.coalesce import Coalescer, CoalescerSettings
from hookgate.consumers.jobs import (
    MAILBOX_SYNC,
    PermanentJobError,
    RetryPolicy,
    SyncJob,
)
from hookgate.consumers.lease import committed_cursor
from hookgate.keys import (
    dead_letter_stream,
    sync_lease_key,
    sync_mailbox,
    sync_retry_key,
)

from .syncjobs import (
    Recorder,
    delete_sync_keys,
    mailbox_event,
    publish,
    running_coalescer,
    wait_for,
)

MAILBOX = "a@example.com"
OTHER_MAILBOX = "b@example.com"


class SyncFailed(Exception):
    """What the test handlers raise for a failure worth retrying."""


@pytest.fixture
async def sync_tenant(
    redis: Redis, new_tenant: Callable[[], str]
) -> AsyncIterator[str]:
    tenant = new_tenant()
    yield tenant
    await delete_sync_keys(redis, tenant)


def settings(policy: RetryPolicy) -> CoalescerSettings:
    return CoalescerSettings(
        window_ms=10,
        tick_ms=5,
        block_ms=20,
        retry_policies={MAILBOX_SYNC: policy},
    )


def fail_first(count: int) -> Callable[[SyncJob], Exception | None]:
    def fail(job: SyncJob) -> Exception | None:
        if job.attempt <= count:
            return SyncFailed(f"provider timed out on attempt {job.attempt}")
        return None

    return fail


async def dead_letters(redis: Redis, tenant: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in await redis.xrange(dead_letter_stream(tenant))]


class TestRetryPolicy:
    def test_ceiling_grows_by_factor(self) -> None:
        """Each failure multiplies the delay's upper bound by the factor."""
        policy = RetryPolicy(base_ms=10, factor=3, cap_ms=1_000)

        ceilings = [policy.ceiling_ms(n) for n in (1, 2, 3)]

        assert ceilings == [10, 30, 90]

    def test_ceiling_capped(self) -> None:
        """The upper bound never exceeds the cap, however many failures."""
        policy = RetryPolicy(base_ms=10, factor=3, cap_ms=100)

        assert policy.ceiling_ms(5) == 100
        assert policy.ceiling_ms(10_000) == 100

    def test_jitter_within_ceiling(self) -> None:
        """Full jitter draws from zero to the upper bound."""
        policy = RetryPolicy(base_ms=10, factor=2, cap_ms=1_000)
        rng = random.Random(7)

        delays = [policy.delay_ms(3, rng) for _ in range(200)]

        assert min(delays) >= 0
        assert max(delays) <= 40
        assert len(set(delays)) > 100

    def test_no_jitter_waits_ceiling(self) -> None:
        """Without jitter the delay is the upper bound itself."""
        policy = RetryPolicy(base_ms=10, factor=2, jitter=False)

        assert policy.delay_ms(3) == 40

    @pytest.mark.parametrize(
        "options",
        [{"base_ms": 0}, {"cap_ms": -1}, {"factor": 0.5}, {"max_attempts": 0}],
    )
    def test_invalid_policy_rejected(self, options: dict[str, float]) -> None:
        """Values that cannot make a schedule raise ValueError."""
        with pytest.raises(ValueError, match=r"must be positive|use 1 or more"):
            RetryPolicy(**options)  # type: ignore[arg-type]


class TestRetries:
    async def test_succeeds_on_third_attempt(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A handler failing twice runs a third time, and that run commits."""
        policy = RetryPolicy(base_ms=30, factor=3, max_attempts=5, jitter=False)
        recorder = Recorder(fail=fail_first(2))

        async with running_coalescer(
            redis, [sync_tenant], recorder, settings(policy)
        ) as coalescer:
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def done() -> bool:
                return len(recorder.runs) == 3 and coalescer.running_jobs == 0

            await wait_for(done, "third attempt")

        attempts = [run.job.attempt for run in recorder.runs]
        assert attempts == [1, 2, 3]
        assert await committed_cursor(redis, sync_tenant, "gmail-pubsub", MAILBOX) == (
            "42"
        )
        assert await dead_letters(redis, sync_tenant) == []

    async def test_delays_grow(self, redis: Redis, sync_tenant: str) -> None:
        """The wait before the third attempt is longer than before the second."""
        policy = RetryPolicy(base_ms=30, factor=3, max_attempts=5, jitter=False)
        recorder = Recorder(fail=fail_first(2))

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def third_ran() -> bool:
                return len(recorder.runs) == 3

            await wait_for(third_ran, "third attempt")

        first, second, third = recorder.runs
        first_wait = second.started - first.ended
        second_wait = third.started - second.ended
        # Redis' clock counts whole milliseconds, hence the small margin.
        assert first_wait >= 0.028
        assert second_wait >= 0.088
        assert second_wait > first_wait

    async def test_attempt_carries_last_error(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A retried job carries the previous attempt's error and failure times."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=5)
        recorder = Recorder(fail=fail_first(2))

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def third_ran() -> bool:
                return len(recorder.runs) == 3

            await wait_for(third_ran, "third attempt")

        first, second, third = (run.job for run in recorder.runs)
        assert first.last_error is None
        assert second.last_error == "SyncFailed: provider timed out on attempt 1"
        assert third.last_error == "SyncFailed: provider timed out on attempt 2"
        assert third.first_failed_at == second.first_failed_at
        assert third.last_failed_at is not None
        assert second.last_failed_at is not None
        assert third.last_failed_at >= second.last_failed_at
        assert third.job_id == first.job_id

    async def test_retry_gets_new_fencing_token(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Each attempt takes the lease anew, with a larger token."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=5)
        recorder = Recorder(fail=fail_first(1))

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def second_ran() -> bool:
                return len(recorder.runs) == 2

            await wait_for(second_ran, "second attempt")

        first, second = (run.job for run in recorder.runs)
        assert second.fencing_token > first.fencing_token

    async def test_backoff_does_not_block_other_mailbox(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Another mailbox's job runs while a failed job waits for its retry."""
        policy = RetryPolicy(base_ms=2_000, factor=2, max_attempts=2, jitter=False)

        def fail(job: SyncJob) -> Exception | None:
            return SyncFailed("down") if job.mailbox == MAILBOX else None

        recorder = Recorder(fail=fail)

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "1")]
            )

            async def failed_once() -> bool:
                return len(recorder.runs) == 1

            await wait_for(failed_once, "first failure")
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, OTHER_MAILBOX, "2")]
            )

            async def other_ran() -> bool:
                return len(recorder.runs) == 2

            await wait_for(other_ran, "other mailbox's job", timeout_s=1.0)

        assert recorder.runs[1].job.mailbox == OTHER_MAILBOX

    async def test_failed_job_releases_lease(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A job waiting for its retry holds no lease on its mailbox."""
        policy = RetryPolicy(base_ms=2_000, factor=2, max_attempts=2, jitter=False)
        recorder = Recorder(fail=fail_first(1))

        async with running_coalescer(
            redis, [sync_tenant], recorder, settings(policy)
        ) as coalescer:
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "1")]
            )

            async def failed_once() -> bool:
                return len(recorder.runs) == 1 and coalescer.running_jobs == 0

            await wait_for(failed_once, "first failure")
            lease = sync_lease_key(sync_tenant, sync_mailbox("gmail-pubsub", MAILBOX))

            assert await redis.exists(lease) == 0


class TestDeadLetters:
    async def test_exhausted_job_dead_lettered(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A job failing every attempt lands in the dead-letter stream once."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=3)
        recorder = Recorder(fail=fail_first(99))

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def dead_lettered() -> bool:
                return bool(await redis.xlen(dead_letter_stream(sync_tenant)))

            await wait_for(dead_lettered, "dead letter")

        (fields,) = await dead_letters(redis, sync_tenant)
        assert len(recorder.runs) == 3
        assert fields[b"attempts"] == b"3"
        assert fields[b"error"] == b"provider timed out on attempt 3"
        assert fields[b"error_type"] == b"SyncFailed"
        assert fields[b"mailbox"] == MAILBOX.encode()
        assert fields[b"cursor"] == b"42"
        assert fields[b"job_id"] == recorder.runs[0].job.job_id.encode()
        assert int(fields[b"first_failed_at"]) <= int(fields[b"last_failed_at"])
        assert fields[b"failed_at"] == fields[b"last_failed_at"]

    async def test_dead_letter_holds_whole_job(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """The ``job`` field decodes back into the last attempt's job."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=2)
        recorder = Recorder(fail=fail_first(99))

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def dead_lettered() -> bool:
                return bool(await redis.xlen(dead_letter_stream(sync_tenant)))

            await wait_for(dead_lettered, "dead letter")

        (fields,) = await dead_letters(redis, sync_tenant)
        job = msgspec.json.decode(fields[b"job"], type=SyncJob)
        assert job.attempt == 2
        assert job.last_error == "SyncFailed: provider timed out on attempt 2"

    async def test_permanent_error_dead_lettered_at_once(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """PermanentJobError skips every retry."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=5)
        recorder = Recorder(fail=lambda job: PermanentJobError("mailbox deleted"))

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "42")]
            )

            async def dead_lettered() -> bool:
                return bool(await redis.xlen(dead_letter_stream(sync_tenant)))

            await wait_for(dead_lettered, "dead letter")

        (fields,) = await dead_letters(redis, sync_tenant)
        assert len(recorder.runs) == 1
        assert fields[b"attempts"] == b"1"
        assert fields[b"error"] == b"mailbox deleted"
        assert fields[b"error_type"] == b"PermanentJobError"

    async def test_dead_letter_releases_lease(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """After dead-lettering, the mailbox's next event runs a new job."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=1)
        recorder = Recorder(
            fail=lambda job: None if job.cursor == "2" else SyncFailed()
        )

        async with running_coalescer(redis, [sync_tenant], recorder, settings(policy)):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "1")]
            )

            async def dead_lettered() -> bool:
                return bool(await redis.xlen(dead_letter_stream(sync_tenant)))

            await wait_for(dead_lettered, "dead letter")
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "2")]
            )

            async def second_ran() -> bool:
                return len(recorder.runs) == 2

            await wait_for(second_ran, "second job")

        assert recorder.runs[1].job.cursor == "2"


class TestRecovery:
    async def test_crashed_job_retried(self, redis: Redis, sync_tenant: str) -> None:
        """A job whose worker stopped mid-run is retried once its lease expires."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=3)
        crashed = Coalescer(
            redis, [sync_tenant], Recorder(), "crashed", crash_settings(policy)
        )
        await crashed.add_events(
            sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "7")]
        )
        lost = await crashed.take_mailbox(
            sync_tenant, sync_mailbox("gmail-pubsub", MAILBOX)
        )
        assert lost is not None
        recorder = Recorder()

        async with running_coalescer(
            redis, [sync_tenant], recorder, crash_settings(policy)
        ):

            async def retried() -> bool:
                return len(recorder.runs) == 1

            await wait_for(retried, "recovered job")

        (job,) = recorder.runs_jobs()
        assert job.job_id == lost.job_id
        assert job.attempt == 2
        assert job.cursor == "7"
        assert job.last_error is not None
        assert job.last_error.startswith("LeaseExpiredError: the lease of 30 ms")
        assert job.fencing_token > lost.fencing_token

    async def test_crash_on_last_attempt_dead_lettered(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A crashed job that had no attempts left goes to the dead-letter stream."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=1)
        crashed = Coalescer(
            redis, [sync_tenant], Recorder(), "crashed", crash_settings(policy)
        )
        await crashed.add_events(
            sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "7")]
        )
        await crashed.take_mailbox(sync_tenant, sync_mailbox("gmail-pubsub", MAILBOX))
        recorder = Recorder()

        async with running_coalescer(
            redis, [sync_tenant], recorder, crash_settings(policy)
        ):

            async def dead_lettered() -> bool:
                return bool(await redis.xlen(dead_letter_stream(sync_tenant)))

            await wait_for(dead_lettered, "dead letter")

        (fields,) = await dead_letters(redis, sync_tenant)
        assert recorder.runs == []
        assert fields[b"error_type"] == b"LeaseExpiredError"
        assert fields[b"attempts"] == b"1"

    async def test_renewed_job_not_recovered(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A job running longer than its lease keeps it by renewing it."""
        policy = RetryPolicy(base_ms=10, factor=2, max_attempts=3)
        recorder = Recorder(duration_s=0.6)
        # Long enough that a loaded machine's pauses do not let it lapse between
        # renewals, and still a quarter of the job's run.
        settings = dataclasses.replace(crash_settings(policy), lease_ms=150)

        async with running_coalescer(
            redis, [sync_tenant], recorder, settings
        ) as coalescer:
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, MAILBOX, "7")]
            )

            async def finished() -> bool:
                return len(recorder.runs) == 1 and coalescer.running_jobs == 0

            await wait_for(finished, "slow job")
            await asyncio.sleep(0.1)

        assert len(recorder.runs) == 1
        assert await committed_cursor(redis, sync_tenant, "gmail-pubsub", MAILBOX) == (
            "7"
        )
        assert await redis.zcard(sync_retry_key(sync_tenant)) == 0


def crash_settings(policy: RetryPolicy) -> CoalescerSettings:
    # The lease is short, so that a crashed job is recovered within the test.
    return CoalescerSettings(
        window_ms=10,
        tick_ms=5,
        block_ms=20,
        lease_ms=30,
        recover_interval_ms=10,
        retry_policies={MAILBOX_SYNC: policy},
    )
