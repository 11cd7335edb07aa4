"""loadtest/locustfile.py run headless against a real gateway for a few seconds."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hookgate.tests.conftest import (
    REPO,
    TEST_ENV,
    Process,
    RedisServer,
    start_gateway,
)
from hookgate.tests.gateway.helpers import all_entries

LOCUST = str(Path(sys.executable).with_name("locust"))
LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
USERS = ["StandardUser", "GraphUser", "GmailUser", "GitHubUser", "StripeUser"]
PROVIDERS = ["standard-webhooks", "graph", "gmail-pubsub", "github", "stripe"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def locust_gateway(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    directory = tmp_path_factory.mktemp("locust-gateway")
    process = start_gateway(directory, redis_server.url)
    yield process
    process.stop()


def run_locust(
    gateway: Process,
    directory: Path,
    users: list[str],
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run locust headless for 4 s with one user per class; return the result
    and the event log."""
    event_log = directory / "event-ids.txt"
    env = {
        **os.environ,
        **TEST_ENV,
        "HOOKGATE_CONFIG": str(gateway.log_path.parent / "hookgate.toml"),
        "HOOKGATE_LOCUST_EVENT_LOG": str(event_log),
        **(extra_env or {}),
    }
    argv = [LOCUST, "-f", str(LOCUSTFILE), "--host", gateway.url, "--headless"]
    argv += ["-u", str(len(users)), "-r", str(len(users)), "-t", "4s"]
    argv += ["--csv", str(directory / "locust"), "--only-summary", *users]
    completed = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return completed, event_log


def read_stats(directory: Path) -> dict[str, dict[str, str]]:
    with (directory / "locust_stats.csv").open() as stats:
        return {row["Name"]: row for row in csv.DictReader(stats)}


def stream_event_ids(client: redis.Redis) -> set[str]:
    return {
        fields[b"event_id"].decode()
        for key, entries in all_entries(client).items()
        if key.endswith(":ingest")
        for _, fields in entries
    }


def test_every_provider_accepted(
    locust_gateway: Process, redis_client: redis.Redis, tmp_path: Path
) -> None:
    completed, event_log = run_locust(locust_gateway, tmp_path, USERS)
    output = completed.stdout + completed.stderr

    assert completed.returncode == 0, output
    stats = read_stats(tmp_path)
    assert stats["Aggregated"]["Failure Count"] == "0", output
    for provider in PROVIDERS:
        row = stats[f"{provider} /hooks/{{source_id}}"]
        assert int(row["Request Count"]) > 0, provider
        assert row["Failure Count"] == "0", provider

    answered = event_log.read_text().split()
    assert answered
    assert len(answered) == len(set(answered))
    missing = set(answered) - stream_event_ids(redis_client)
    assert not missing


def test_mix_user_accepted(
    locust_gateway: Process, redis_client: redis.Redis, tmp_path: Path
) -> None:
    completed, event_log = run_locust(locust_gateway, tmp_path, ["MixUser"] * 3)
    output = completed.stdout + completed.stderr

    assert completed.returncode == 0, output
    stats = read_stats(tmp_path)
    assert stats["Aggregated"]["Failure Count"] == "0", output
    assert int(stats["Aggregated"]["Request Count"]) > 0
    answered = set(event_log.read_text().split())
    assert answered
    assert not answered - stream_event_ids(redis_client)


def test_fixed_rate_paces_each_user(
    locust_gateway: Process, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Four users at 10 requests per second each for 4 s offer about 160 requests;
    # unpaced, the same users send thousands.
    completed, event_log = run_locust(
        locust_gateway, tmp_path, ["StandardUser"] * 4, {"HOOKGATE_LOCUST_RATE": "10"}
    )
    output = completed.stdout + completed.stderr

    assert completed.returncode == 0, output
    stats = read_stats(tmp_path)
    assert stats["Aggregated"]["Failure Count"] == "0", output
    assert 100 <= int(stats["Aggregated"]["Request Count"]) <= 200, output
    answered = set(event_log.read_text().split())
    assert not answered - stream_event_ids(redis_client)
