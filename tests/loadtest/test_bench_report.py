"""The bench's Markdown report, written from a results document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hookgate.loadtest._bench_report import write_report_md


def document(lag_ms: float) -> dict[str, Any]:
    open_run = {
        "offered_rate": 8000,
        "duration_s": 5.0,
        "connections": 64,
        "completed": 40000,
        "p50_ms": 1.5,
        "p99_ms": 60.0,
        "p99_9_ms": 70.0,
        "max_ms": 80.0,
        "non_2xx": 0,
        "unfinished": 0,
        "connection_errors": 0,
        "missing_events": 0,
        "duplicate_entries": 0,
        "late_sends": 7000,
        "queued": 1500,
        "max_generator_lag_ms": lag_ms,
        "foreign_cpu_percent": 1.0,
    }
    return {
        "started": "2026-12-05T00:00:00+00:00",
        "seconds": 90.0,
        "form": "short",
        "slowdown": None,
        "code": "0000000",
        "machine": {},
        "placement": "pinned",
        "budget": [],
        "runs": {"open": open_run},
        "errors": [],
    }


@pytest.mark.parametrize(("lag_ms", "warned"), [(73.0, True), (5.0, False)])
def test_generator_stall_warning(tmp_path: Path, lag_ms: float, warned: bool) -> None:
    path = tmp_path / "report.md"

    write_report_md(path, document(lag_ms))

    text = path.read_text()
    assert f"the longest lag was {lag_ms:.1f} ms" in text
    assert ("generator itself fell" in text) is warned
