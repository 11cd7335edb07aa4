"""``hookgate dlq``: list, show, replay and purge a dead-letter stream."""

from __future__ import annotations

import json

import pytest
import redis
from click.testing import CliRunner

from hookgate.cli import main
from hookgate.consumers.deadletter import dead_letter_fields
from hookgate.entry import EntryError
from hookgate.tests.conftest import RedisServer

DEAD = "hg:{acme}:dead"
INGEST = "hg:{acme}:ingest"


def ingest_entry(event_id: str, source: str = "acme-mail") -> dict[bytes, bytes]:
    return {
        b"v": b"1",
        b"event_id": event_id.encode(),
        b"type": b"standard-webhooks.event",
        b"tenant": b"acme",
        b"source": source.encode(),
        b"provider": b"standard-webhooks",
        b"received_at": b"1796400000000",
        b"provider_event_id": b"msg_1",
        b"headers": b"{}",
        b"body": b'{"type": "t"}',
    }


def kill(
    client: redis.Redis, event_id: str, *, source: str = "acme-mail", failed_at: int
) -> str:
    fields = dead_letter_fields(
        ingest_entry(event_id, source),
        error=EntryError("boom"),
        stream=INGEST,
        entry_id=b"1-0",
        failed_at=failed_at,
    )
    entry_id: bytes = client.xadd(DEAD, fields)  # type: ignore[arg-type]
    return entry_id.decode()


@pytest.fixture
def cli(redis_server: RedisServer, redis_client: redis.Redis) -> CliRunner:
    return CliRunner(env={"REDIS_URL": redis_server.url})


def test_list_prints_each_entry(cli: CliRunner, redis_client: redis.Redis) -> None:
    kill(redis_client, "evt_a", failed_at=1_796_400_000_000)
    kill(redis_client, "evt_b", failed_at=1_796_400_000_000)

    result = cli.invoke(main, ["dlq", "list", "--tenant", "acme"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "event_id=evt_a" in lines[0]
    assert "EntryError: boom" in lines[0]


def test_list_filters_source_and_time(
    cli: CliRunner, redis_client: redis.Redis
) -> None:
    kill(redis_client, "evt_old", failed_at=1_700_000_000_000)
    kill(redis_client, "evt_other", source="acme-other", failed_at=1_796_400_000_000)
    kill(redis_client, "evt_match", failed_at=1_796_400_000_000)

    result = cli.invoke(
        main,
        [
            "dlq",
            "list",
            "--tenant",
            "acme",
            "--source",
            "acme-mail",
            "--since",
            "2026-01-01",
        ],
    )

    assert result.exit_code == 0, result.output
    assert "evt_match" in result.output
    assert "evt_old" not in result.output
    assert "evt_other" not in result.output


def test_show_prints_fields(cli: CliRunner, redis_client: redis.Redis) -> None:
    entry_id = kill(redis_client, "evt_show", failed_at=1_796_400_000_000)

    result = cli.invoke(main, ["dlq", "show", "--tenant", "acme", entry_id])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["event_id"] == "evt_show"
    assert shown["error_type"] == "EntryError"


def test_show_unknown_id_fails(cli: CliRunner, redis_client: redis.Redis) -> None:
    result = cli.invoke(main, ["dlq", "show", "--tenant", "acme", "1-1"])

    assert result.exit_code == 1
    assert "no dead-letter entry" in result.output


def test_replay_keeps_event_id(cli: CliRunner, redis_client: redis.Redis) -> None:
    entry_id = kill(redis_client, "evt_replay", failed_at=1_796_400_000_000)

    result = cli.invoke(main, ["dlq", "replay", "--tenant", "acme", entry_id])

    assert result.exit_code == 0, result.output
    assert "replayed 1 entry to" in result.output
    assert redis_client.xlen(DEAD) == 0
    ((_, fields),) = redis_client.xrange(INGEST)
    assert fields == ingest_entry("evt_replay")


def test_replay_filters_error_type(cli: CliRunner, redis_client: redis.Redis) -> None:
    kill(redis_client, "evt_x", failed_at=1_796_400_000_000)

    result = cli.invoke(
        main, ["dlq", "replay", "--tenant", "acme", "--error-type", "PoisonEntryError"]
    )

    assert result.exit_code == 0, result.output
    assert "replayed 0" in result.output
    assert redis_client.xlen(DEAD) == 1


def test_purge_asks_first(cli: CliRunner, redis_client: redis.Redis) -> None:
    kill(redis_client, "evt_keep", failed_at=1_796_400_000_000)

    result = cli.invoke(main, ["dlq", "purge", "--tenant", "acme"], input="n\n")

    assert result.exit_code == 1
    assert redis_client.xlen(DEAD) == 1


def test_purge_with_yes_deletes(cli: CliRunner, redis_client: redis.Redis) -> None:
    kill(redis_client, "evt_gone", failed_at=1_796_400_000_000)
    kill(redis_client, "evt_gone_too", failed_at=1_796_400_000_000)

    result = cli.invoke(main, ["dlq", "purge", "--tenant", "acme", "--yes"])

    assert result.exit_code == 0, result.output
    assert "deleted 2" in result.output
    assert redis_client.xlen(DEAD) == 0


def test_replay_skips_job_dead_letters(
    cli: CliRunner, redis_client: redis.Redis
) -> None:
    redis_client.xadd(DEAD, {"error": "boom", "error_type": "JobError", "job": "{}"})

    result = cli.invoke(main, ["dlq", "replay", "--tenant", "acme"])

    assert result.exit_code == 0, result.output
    assert "skipped 1 entry without the fields of an ingest entry" in result.output
    assert redis_client.xlen(DEAD) == 1
    assert redis_client.exists(INGEST) == 0
