"""The shipped Grafana dashboard queries only metrics that hookgate exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "docs" / "grafana" / "hookgate.json"
SOURCES = ("hookgate/metrics.py", "gateway/telemetry.py", "consumers/telemetry.py")

# Prometheus adds these to the family name for counters and histograms.
SUFFIXES = re.compile(r"_(total|bucket|count|sum)$")


def queried_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names.update(re.findall(r"hookgate_[a-z_]+", target["expr"]))
    return {SUFFIXES.sub("", name) for name in names}


def test_dashboard_metrics_exist() -> None:
    code = "".join((REPO / path).read_text() for path in SOURCES)

    missing = sorted(name for name in queried_metrics() if f'"{name}' not in code)

    assert queried_metrics()
    assert missing == []


def test_dashboard_panels_have_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())

    ids = [panel["id"] for panel in dashboard["panels"]]

    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "hookgate"
