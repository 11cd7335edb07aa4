"""Tracing and metrics options of the hookgate command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hookgate.tests.conftest import HOOKGATE, TEST_ENV, RedisServer, write_config


@pytest.mark.parametrize("command", ["serve", "consume"])
def test_unknown_exporter_rejected(
    command: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path)

    result = subprocess.run(
        [HOOKGATE, command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **TEST_ENV,
            "REDIS_URL": redis_server.url,
            "PATH": "/usr/bin:/bin",
            "OTEL_TRACES_EXPORTER": "zipkin",
        },
    )

    assert result.returncode == 1
    assert "invalid OTEL_TRACES_EXPORTER entry 'zipkin'" in result.stderr
    assert "Traceback" not in result.stderr
