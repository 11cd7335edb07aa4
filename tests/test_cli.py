"""The hookgate command line, run as a user would run it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from hookgate.cli import main
from hookgate.tests.conftest import (
    HOOKGATE,
    TEST_ENV,
    RedisServer,
    free_port,
    start_hookgate,
    write_config,
)


def test_tail_survives_idle_stream(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    env = {"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"}
    tail = subprocess.Popen(
        [HOOKGATE, "tail", "--tenant", "acme", "--count", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # Longer than XREAD's block time, which once ended the command on a timeout.
    time.sleep(6.5)
    redis_client.xadd("hg:{acme}:events", {"__data__": b'{"type": "x"}'})

    out, err = tail.communicate(timeout=15)

    assert tail.returncode == 0, err.decode()
    line = json.loads(out)
    assert line["stream"] == "hg:{acme}:events"
    assert line["fields"]["__data__"] == {"type": "x"}


def test_consume_unreachable_redis_message(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    url = f"redis://127.0.0.1:{free_port()}/0"

    result = subprocess.run(
        [HOOKGATE, "consume", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**TEST_ENV, "REDIS_URL": url, "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 1
    assert "check REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_consume_fails_when_group_deleted(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    consumer = start_hookgate(
        ["consume", "--config", str(write_config(tmp_path))],
        tmp_path,
        redis_server.url,
    )
    try:
        deadline = time.monotonic() + 30
        while "consumer.started" not in consumer.log():
            assert consumer.process.poll() is None, consumer.log()
            assert time.monotonic() < deadline, consumer.log()
            time.sleep(0.1)

        redis_client.xgroup_destroy("hg:{acme}:ingest", "hookgate")

        returncode = consumer.process.wait(timeout=30)
    finally:
        consumer.stop()

    assert returncode == 1, consumer.log()
    assert "consumer stopped" in consumer.log()
    assert "no longer exists" in consumer.log()


def _signed_headers(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def test_sign_uses_raw_body_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("SIGN_TEST_SECRET", "whsec_" + base64.b64encode(key).decode())
    config = tmp_path / "hookgate.toml"
    config.write_text(
        '[[sources]]\nid = "mail"\ntenant = "acme"\n'
        'provider = "standard-webhooks"\nsecret_env = ["SIGN_TEST_SECRET"]\n'
    )
    # A Latin-1 byte, as a shell hands it over: click decodes argv with the file
    # system encoding, so the byte arrives as a surrogate.
    raw = b'{"type":"caf\xe9"}'

    result = CliRunner().invoke(
        main,
        [
            "sign",
            "--config",
            str(config),
            "--source",
            "mail",
            "--body",
            raw.decode("utf-8", "surrogateescape"),
        ],
    )

    assert result.exit_code == 0, result.output
    headers = _signed_headers(result.output)
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + raw
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()
