"""scripts/render-dashboard reads every panel and query of the shipped dashboard.

The render itself takes minutes and needs Prometheus, so only its parsing and
formatting run here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookgate.loadtest.dashboard import (
    DASHBOARD,
    UNITS,
    format_value,
    legend_name,
    load_panels,
)


def test_render_reads_every_panel() -> None:
    raw = json.loads(DASHBOARD.read_text())["panels"]

    panels = load_panels()

    assert [panel.id for panel in panels] == [panel["id"] for panel in raw]
    for panel, source in zip(panels, raw, strict=True):
        assert [t.expr for t in panel.targets] == [t["expr"] for t in source["targets"]]
        assert (panel.x, panel.y, panel.w, panel.h) == tuple(
            source["gridPos"][key] for key in "xywh"
        )
        assert panel.unit in UNITS


def test_render_rejects_unknown_unit(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    dashboard["panels"][0]["fieldConfig"]["defaults"]["unit"] = "bytes"
    path = tmp_path / "dashboard.json"
    path.write_text(json.dumps(dashboard))

    with pytest.raises(ValueError, match="unit 'bytes'"):
        load_panels(path)


def test_legend_name_fills_labels() -> None:
    labels = {"provider": "github", "status": "202"}

    assert legend_name("{{provider}} {{ status }}", labels) == "github 202"
    assert legend_name("lag {{tenant}}", {"tenant": "acme"}) == "lag acme"
    assert legend_name("", {"le": "1"}) == '{"le": "1"}'


def test_format_value_units() -> None:
    assert format_value(0.004, "s") == "4 ms"
    assert format_value(2, "s") == "2 s"
    assert format_value(1500, "short") == "1.5k"
    assert format_value(12, "reqps") == "12 req/s"
    assert format_value(0, "ops") == "0 ops/s"
