"""The metrics port of a real ``hookgate consume`` process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from hookgate import metrics
from hookgate.consumers import create_app
from hookgate.keys import INGEST_GROUP, ingest_stream
from hookgate.tests.conftest import free_port, start_hookgate

from .entries import ingest_fields, standard_webhook_body
from .streams import config_for, redis_url, wait_processed


def consumer_config(tenant: str) -> str:
    return f"""
[[sources]]
id = "{tenant}-src"
tenant = "{tenant}"
provider = "standard-webhooks"
secret_env = ["TEST_STANDARD_SECRET"]
"""


async def scrape(url: str) -> dict[tuple[str, str], float]:
    """Return the page's samples by name and tenant label, retrying until it is up."""
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(100):
            try:
                response = await client.get(url)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"no metrics served at {url}")
    assert response.status_code == 200
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, sample.labels.get("tenant", ""))] = sample.value
    return found


async def test_consumer_metrics_port(redis: Redis, tenant: str, tmp_path: Path) -> None:
    """The port serves processed counts and the tenant's stream gauges."""
    config = tmp_path / "hookgate.toml"
    config.write_text(consumer_config(tenant))
    port = free_port()
    process = start_hookgate(
        ["consume", "--config", str(config), "--metrics-port", str(port)],
        tmp_path,
        redis_url(),
    )
    try:
        fields = ingest_fields(
            tenant=tenant,
            type="standard-webhooks.event",
            provider="standard-webhooks",
            body=standard_webhook_body(),
            provider_event_id="msg_1",
        )
        await redis.xadd(ingest_stream(tenant), fields)
        await wait_processed(redis, ingest_stream(tenant))

        found = await scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        returncode = process.stop()

    assert returncode == 0, process.log()
    assert found[("hookgate_entries_processed_total", tenant)] == 1
    assert found[("hookgate_stream_length", tenant)] == 1
    assert found[("hookgate_group_lag", tenant)] == 0
    assert found[("hookgate_group_pending", tenant)] == 0


async def test_reclaimed_poison_counted(redis: Redis, tenant: str) -> None:
    """A reclaim and the dead letter it leads to are counted under the tenant."""
    stream = ingest_stream(tenant)
    await redis.xgroup_create(stream, INGEST_GROUP, id="0", mkstream=True)
    await redis.xadd(
        stream,
        ingest_fields(
            tenant=tenant,
            type="standard-webhooks.event",
            provider="standard-webhooks",
            body=standard_webhook_body(),
            provider_event_id="msg_1",
        ),
    )
    # A consumer that reads the entry and dies leaves it pending.
    await redis.xreadgroup(INGEST_GROUP, "crashed", {stream: ">"})

    app = create_app(
        config_for(tenant),
        redis_url(),
        "reclaimer",
        visibility_timeout_ms=1,
        max_deliveries=1,
        reclaim_interval_s=0.05,
    )
    async with app:
        await wait_processed(redis, stream)

    assert metrics.reclaimed[tenant] == 1
    assert metrics.dead_letters[(tenant, "PoisonEntryError")] == 1
