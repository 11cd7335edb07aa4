"""The hookgate command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import redis

from hookgate.tests.conftest import (
    HOOKGATE,
    TEST_ENV,
    RedisServer,
    free_port,
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
