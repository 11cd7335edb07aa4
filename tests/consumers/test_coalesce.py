"""Tests of coalescing mailbox events into sync jobs, and of the mailbox lease.

All run against the session's private Redis with windows of tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from hookgate.consumers.coalesce import Coalescer, CoalescerSettings
from hookgate.consumers.lease import committed_cursor
from hookgate.events import WebhookReceived
from hookgate.keys import SYNC_GROUP, events_stream, sync_due_key, sync_mailbox

from .syncjobs import (
    Recorder,
    delete_sync_keys,
    mailbox_event,
    publish,
    running_coalescer,
    wait_for,
)

GMAIL_A = "a@example.com"
GMAIL_B = "b@example.com"
GRAPH_USER = "users/4b3c"
BURST = 1000
WINDOW_MS = 50


@pytest.fixture
async def sync_tenant(
    redis: Redis, new_tenant: Callable[[], str]
) -> AsyncIterator[str]:
    tenant = new_tenant()
    yield tenant
    await delete_sync_keys(redis, tenant)


def settings(**overrides: int) -> CoalescerSettings:
    values = {"window_ms": WINDOW_MS, "tick_ms": 5, "block_ms": 20} | overrides
    return CoalescerSettings(**values)


async def idle(redis: Redis, coalescer: Coalescer, tenant: str) -> bool:
    due = await redis.zcard(sync_due_key(tenant))
    return due == 0 and coalescer.running_jobs == 0


async def run_burst(redis: Redis, tenant: str) -> tuple[Recorder, dict[str, str]]:
    """Send BURST events over three mailboxes in one pipeline and run every job.

    Returns the recorder and each Gmail mailbox's highest cursor. The Gmail
    cursors arrive shuffled, so the highest one is not the last one sent.
    """
    cursors = {GMAIL_A: list(range(5_000, 5_000 + BURST)), GMAIL_B: []}
    cursors[GMAIL_B] = [c + 2**60 for c in cursors[GMAIL_A]]
    for values in cursors.values():
        random.shuffle(values)
    events = []
    for i in range(BURST):
        mailbox = (GMAIL_A, GMAIL_B, GRAPH_USER)[i % 3]
        if mailbox == GRAPH_USER:
            events.append(mailbox_event(tenant, mailbox, None, provider="graph"))
        else:
            events.append(mailbox_event(tenant, mailbox, str(cursors[mailbox][i])))
    highest = {
        mailbox: str(max(values[i] for i in range(BURST) if i % 3 == n))
        for n, (mailbox, values) in enumerate(cursors.items())
    }
    recorder = Recorder(duration_s=0.01)

    async with running_coalescer(redis, [tenant], recorder, settings()) as coalescer:
        await publish(redis, tenant, events)

        async def all_handled() -> bool:
            handled = sum(run.job.event_count for run in recorder.runs)
            return handled == BURST and await idle(redis, coalescer, tenant)

        await wait_for(all_handled, f"{BURST} events handled")
    return recorder, highest


class TestBurst:
    async def test_few_jobs_per_mailbox(self, redis: Redis, sync_tenant: str) -> None:
        """A burst becomes a handful of jobs per mailbox, not one per event."""
        recorder, _ = await run_burst(redis, sync_tenant)

        for mailbox in (GMAIL_A, GMAIL_B, GRAPH_USER):
            assert 1 <= len(recorder.jobs_of(mailbox)) <= 5, mailbox

    async def test_every_event_counted_once(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """The jobs' event counts add up to the events sent, per mailbox."""
        recorder, _ = await run_burst(redis, sync_tenant)

        counts = {
            mailbox: sum(job.event_count for job in recorder.jobs_of(mailbox))
            for mailbox in (GMAIL_A, GMAIL_B, GRAPH_USER)
        }

        assert counts == {GMAIL_A: 334, GMAIL_B: 333, GRAPH_USER: 333}

    async def test_last_job_has_highest_cursor(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Each Gmail mailbox's last job carries its highest historyId."""
        recorder, highest = await run_burst(redis, sync_tenant)

        assert recorder.jobs_of(GMAIL_A)[-1].cursor == highest[GMAIL_A]
        assert recorder.jobs_of(GMAIL_B)[-1].cursor == highest[GMAIL_B]

    async def test_highest_cursor_committed(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """The committed cursor is the highest one, beyond 2**53 included."""
        _, highest = await run_burst(redis, sync_tenant)

        committed_b = await committed_cursor(
            redis, sync_tenant, "gmail-pubsub", GMAIL_B
        )

        assert committed_b == highest[GMAIL_B]

    async def test_graph_job_has_no_cursor(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Graph events carry no cursor, so neither do their jobs."""
        recorder, _ = await run_burst(redis, sync_tenant)

        assert [job.cursor for job in recorder.jobs_of(GRAPH_USER)] == [None] * len(
            recorder.jobs_of(GRAPH_USER)
        )

    async def test_jobs_of_mailbox_never_overlap(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A mailbox's next job starts only after its previous job ended."""
        recorder, _ = await run_burst(redis, sync_tenant)

        for mailbox in (GMAIL_A, GMAIL_B, GRAPH_USER):
            runs = sorted(
                (run for run in recorder.runs if run.job.mailbox == mailbox),
                key=lambda run: run.started,
            )
            for before, after in itertools.pairwise(runs):
                assert after.started >= before.ended, mailbox

    async def test_fencing_tokens_increase(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Each later job of a mailbox gets a larger fencing token."""
        recorder, _ = await run_burst(redis, sync_tenant)

        for mailbox in (GMAIL_A, GMAIL_B, GRAPH_USER):
            tokens = [job.fencing_token for job in recorder.jobs_of(mailbox)]
            assert tokens == sorted(set(tokens)), mailbox


class TestCoalescing:
    async def test_events_after_window_make_new_job(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """An event after the previous job was taken starts a second job."""
        recorder = Recorder()

        async with running_coalescer(redis, [sync_tenant], recorder, settings()):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "7")]
            )
            await wait_for(lambda: _ran(recorder, 1), "first job")
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "9")]
            )
            await wait_for(lambda: _ran(recorder, 2), "second job")

        assert [job.cursor for job in recorder.runs_jobs()] == ["7", "9"]

    async def test_lower_cursor_keeps_highest(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A later job keeps the highest cursor when its events carry lower ones."""
        recorder = Recorder()

        async with running_coalescer(redis, [sync_tenant], recorder, settings()):
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "10")]
            )
            await wait_for(lambda: _ran(recorder, 1), "first job")
            await publish(
                redis, sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "9")]
            )
            await wait_for(lambda: _ran(recorder, 2), "second job")

        assert recorder.runs_jobs()[1].cursor == "10"

    async def test_cursor_compared_numerically(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """historyId 10 is above 9, although "10" sorts before "9" as text."""
        recorder = Recorder()
        events = [
            mailbox_event(sync_tenant, GMAIL_A, "9"),
            mailbox_event(sync_tenant, GMAIL_A, "10"),
            mailbox_event(sync_tenant, GMAIL_A, "0009"),
        ]

        async with running_coalescer(redis, [sync_tenant], recorder, settings()):
            await publish(redis, sync_tenant, events)
            await wait_for(lambda: _ran(recorder, 1), "job")

        assert recorder.runs_jobs()[0].cursor == "10"

    async def test_each_tenant_coalesced(
        self, redis: Redis, sync_tenant: str, new_tenant: Callable[[], str]
    ) -> None:
        """One coalescer serves several tenants, each from its own stream."""
        other_tenant = new_tenant()
        recorder = Recorder()

        try:
            async with running_coalescer(
                redis, [sync_tenant, other_tenant], recorder, settings()
            ):
                await publish(
                    redis, sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "3")]
                )
                await publish(
                    redis, other_tenant, [mailbox_event(other_tenant, GMAIL_A, "4")]
                )
                await wait_for(lambda: _ran(recorder, 2), "both tenants' jobs")
        finally:
            await delete_sync_keys(redis, other_tenant)

        cursors = {job.tenant: job.cursor for job in recorder.runs_jobs()}
        assert cursors == {sync_tenant: "3", other_tenant: "4"}

    async def test_other_event_types_skipped(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Events other than mailbox changes are acknowledged and make no job."""
        recorder = Recorder()
        other = WebhookReceived(
            event_id="evt_other",
            tenant=sync_tenant,
            source="src",
            provider="standard-webhooks",
            provider_event_id="msg_1",
            event_type="invoice.paid",
            payload=b"{}",  # type: ignore[arg-type]
            received_at=0,
        )

        async with running_coalescer(redis, [sync_tenant], recorder, settings()):
            await publish(redis, sync_tenant, [other])

            async def acknowledged() -> bool:
                groups = await redis.xinfo_groups(events_stream(sync_tenant))
                ours = [g for g in groups if g["name"] == SYNC_GROUP.encode()]
                if not ours:
                    return False  # the coalescer has not created its group yet
                return bool(ours[0]["entries-read"] == 1 and ours[0]["pending"] == 0)

            await wait_for(acknowledged, "entry acknowledged")
            await asyncio.sleep(WINDOW_MS * 2 / 1000)

        assert recorder.runs == []


class TestContention:
    async def test_two_workers_never_overlap(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Two coalescers on one tenant never run one mailbox's jobs at once.

        Events keep arriving while slow jobs run, so the mailbox gets several
        jobs and both workers compete for each.
        """
        recorder = Recorder(duration_s=0.03)
        waves, per_wave = 12, 5
        worker_a = running_coalescer(
            redis, [sync_tenant], recorder, settings(window_ms=10)
        )
        worker_b = running_coalescer(
            redis, [sync_tenant], recorder, settings(window_ms=10)
        )

        async with worker_a as first, worker_b as second:
            for wave in range(waves):
                events = [
                    mailbox_event(sync_tenant, GMAIL_A, str(wave * per_wave + i))
                    for i in range(per_wave)
                ]
                await publish(redis, sync_tenant, events)
                await asyncio.sleep(0.015)

            async def all_handled() -> bool:
                handled = sum(run.job.event_count for run in recorder.runs)
                return (
                    handled == waves * per_wave
                    and await idle(redis, first, sync_tenant)
                    and second.running_jobs == 0
                )

            await wait_for(all_handled, "every event handled")

        runs = sorted(recorder.runs, key=lambda run: run.started)
        assert len(runs) >= 2
        for before, after in itertools.pairwise(runs):
            assert after.started >= before.ended
        assert runs[-1].job.cursor == str(waves * per_wave - 1)


async def _ran(recorder: Recorder, count: int) -> bool:
    return len(recorder.runs) >= count


class TestLease:
    async def test_busy_mailbox_not_taken(self, redis: Redis, sync_tenant: str) -> None:
        """While a job holds the lease, the mailbox's next events wait."""
        coalescer = Coalescer(redis, [sync_tenant], Recorder(), "c1", settings())
        member = sync_mailbox("gmail-pubsub", GMAIL_A)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "1")]
        )
        first = await coalescer.take_mailbox(sync_tenant, member)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "2")]
        )

        second = await coalescer.take_mailbox(sync_tenant, member)

        assert first is not None
        assert second is None

    async def test_stale_holder_cannot_commit(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A job whose lease expired cannot commit after its successor took over."""
        coalescer = Coalescer(
            redis, [sync_tenant], Recorder(), "c1", settings(lease_ms=30)
        )
        member = sync_mailbox("gmail-pubsub", GMAIL_A)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "5")]
        )
        stale = await coalescer.take_mailbox(sync_tenant, member)
        await asyncio.sleep(0.06)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "8")]
        )
        successor = await coalescer.take_mailbox(sync_tenant, member)
        assert stale is not None
        assert successor is not None

        stale_before = await coalescer.leases.commit(stale)
        successor_committed = await coalescer.leases.commit(successor)
        stale_after = await coalescer.leases.commit(stale)

        assert successor.fencing_token > stale.fencing_token
        assert stale_before is False
        assert successor_committed is True
        assert stale_after is False
        assert (
            await committed_cursor(redis, sync_tenant, "gmail-pubsub", GMAIL_A) == "8"
        )

    async def test_stale_holder_cannot_renew(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """Renewing fails once a successor holds the lease."""
        coalescer = Coalescer(
            redis, [sync_tenant], Recorder(), "c1", settings(lease_ms=30)
        )
        member = sync_mailbox("gmail-pubsub", GMAIL_A)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "5")]
        )
        stale = await coalescer.take_mailbox(sync_tenant, member)
        await asyncio.sleep(0.06)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "8")]
        )
        successor = await coalescer.take_mailbox(sync_tenant, member)
        assert stale is not None
        assert successor is not None

        renewed = await coalescer.leases.renew(stale, 30_000)

        assert renewed is False

    async def test_expired_lease_frees_mailbox(
        self, redis: Redis, sync_tenant: str
    ) -> None:
        """A mailbox whose job's lease expired can be taken again."""
        coalescer = Coalescer(
            redis, [sync_tenant], Recorder(), "c1", settings(lease_ms=30)
        )
        member = sync_mailbox("gmail-pubsub", GMAIL_A)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "5")]
        )
        await coalescer.take_mailbox(sync_tenant, member)
        await coalescer.add_events(
            sync_tenant, [mailbox_event(sync_tenant, GMAIL_A, "6")]
        )
        await asyncio.sleep(0.06)

        again = await coalescer.take_mailbox(sync_tenant, member)

        assert again is not None
        assert again.cursor == "6"
        assert again.event_count == 1
