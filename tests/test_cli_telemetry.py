"""Tracing and metrics options of the hookgate command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hookgate.tests.conftest import HOOKGATE, TEST_ENV, RedisServer, write_config


def run_hookgate(
    args: list[str], redis_server: RedisServer, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a hookgate command that must exit by itself, with a minimal PATH."""
    return subprocess.run(
        [HOOKGATE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **TEST_ENV,
            "REDIS_URL": redis_server.url,
            "PATH": "/usr/bin:/bin",
            **env,
        },
    )


@pytest.mark.parametrize("command", ["serve", "consume"])
def test_unknown_exporter_rejected(
    command: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path)

    result = run_hookgate(
        [command, "--config", str(config)],
        redis_server,
        {
            "OTEL_TRACES_EXPORTER": "zipkin",
        },
    )

    assert result.returncode == 1
    assert "invalid OTEL_TRACES_EXPORTER entry 'zipkin'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["serve", "consume"])
@pytest.mark.parametrize(
    ("sampler", "argument", "message"),
    [
        (
            "parentbased_traceidration",
            "",
            "unknown sampler 'parentbased_traceidration'",
        ),
        ("parentbased_traceidratio", "abc", "invalid OTEL_TRACES_SAMPLER_ARG 'abc'"),
        ("traceidratio", "2", "invalid OTEL_TRACES_SAMPLER_ARG '2'"),
    ],
    ids=["misspelt", "not_a_number", "above_one"],
)
def test_bad_sampler_rejected(
    command: str,
    sampler: str,
    argument: str,
    message: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    # The SDK would log these and then trace every request.
    config = write_config(tmp_path)

    result = run_hookgate(
        [command, "--config", str(config)],
        redis_server,
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_TRACES_SAMPLER": sampler,
            "OTEL_TRACES_SAMPLER_ARG": argument,
        },
    )

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_metrics_dir_on_file_rejected(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    blocker = tmp_path / "metrics"
    blocker.write_text("a file where the directory should be")

    result = run_hookgate(
        ["serve", "--config", str(config), "--workers", "2"],
        redis_server,
        {
            "HOOKGATE_METRICS_DIR": str(blocker),
        },
    )

    assert result.returncode == 1
    assert f"cannot use {blocker} for the workers' metrics" in result.stderr
    assert "Traceback" not in result.stderr
