"""Test of the ``hookgate sync-worker`` command as a real process."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from hookgate.keys import events_stream
from hookgate.tests.conftest import start_hookgate, write_config

from .streams import redis_url
from .syncjobs import delete_sync_keys, mailbox_event, publish, wait_for

CONFIG = """
[[sources]]
id = "{tenant}-gmail"
tenant = "{tenant}"
provider = "gmail-pubsub"
secret_env = ["TEST_GMAIL_TOKEN"]
"""


@pytest.fixture
async def cli_tenant(redis: Redis) -> AsyncIterator[str]:
    tenant = f"cli-{uuid.uuid4().hex[:12]}"
    yield tenant
    await delete_sync_keys(redis, tenant)
    await redis.delete(events_stream(tenant))


def job_lines(log: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "sync_job.received"]


async def test_sync_worker_logs_one_job(
    redis: Redis, cli_tenant: str, tmp_path: Path
) -> None:
    """Twenty events of one mailbox make one logged job with the last cursor."""
    config = write_config(tmp_path, CONFIG.format(tenant=cli_tenant))
    worker = start_hookgate(
        ["sync-worker", "--config", str(config), "--window-ms", "200"],
        tmp_path,
        redis_url(),
    )
    try:
        events = [
            mailbox_event(cli_tenant, "u@example.com", str(100 + i)) for i in range(20)
        ]
        await publish(redis, cli_tenant, events)

        async def logged() -> bool:
            return bool(job_lines(worker.log()))

        await wait_for(logged, "sync_job.received logged", timeout_s=15)
    finally:
        returncode = worker.stop()

    jobs = job_lines(worker.log())
    assert returncode == 0, worker.log()
    assert len(jobs) == 1, worker.log()
    assert jobs[0]["cursor"] == "119"
    assert jobs[0]["event_count"] == 20
