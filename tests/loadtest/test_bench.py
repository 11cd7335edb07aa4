"""``hookgate bench`` end to end, in its short form with batching turned off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HOOKGATE = str(Path(sys.executable).with_name("hookgate"))


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_no_batching_misses_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    argv = [HOOKGATE, "bench", "--short", "--slowdown", "no-batching"]
    argv += ["--only", "nowrite", "--only", "hookgate", "--out", str(out)]

    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=85, check=False
    )
    output = completed.stdout + completed.stderr

    assert completed.returncode == 1, output
    assert "redis_round_trips_per_event: MISS" in completed.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["slowdown"] == "no-batching"
    # max_batch = 1 allows no grouping, so each event takes its own flush.
    assert results["metrics"]["redis.round_trips_per_event"] >= 0.9
    verdicts = {v["name"]: v for v in results["budget"]}
    assert not verdicts["redis_round_trips_per_event"]["passed"]
    assert verdicts["redis_round_trips_per_event"]["miss"] > 0.9
    # A flush per event also costs throughput, which the write-cost entry catches.
    assert "gateway_write_cost: MISS" in completed.stdout
    assert not verdicts["gateway_write_cost"]["passed"]
    assert not verdicts["gateway_vs_bare"]["measured"]
    assert (out / "report.md").exists()
    assert (out / "throughput.png").exists()
    assert (out / "work" / "redis" / "redis.log").exists()
    assert not (out / "work" / "redis" / "appendonlydir").exists()


def test_unknown_step_rejected(tmp_path: Path) -> None:
    completed = subprocess.run(
        [HOOKGATE, "bench", "--only", "nothing", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert completed.returncode == 1
    assert "unknown bench step nothing" in completed.stderr
