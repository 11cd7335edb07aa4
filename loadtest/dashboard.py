"""Draw docs/grafana/hookgate.json from a real local run, without Grafana.

Run with ``scripts/render-dashboard``, which installs Prometheus and matplotlib
first. The run itself is :func:`hookgate.loadtest._dashboard_load.run`: a private
Redis, gateway, consumer and Prometheus on 127.0.0.1 under a two-minute mixed load.
This module then evaluates each panel's PromQL expressions with Prometheus'
``query_range`` API and draws the results with matplotlib in the dashboard's grid
layout (``gridPos``), with its titles, legend formats and units.

NOTE: this is a stand-in for a Grafana screenshot, because no Grafana server could
be installed from the package registries this project uses. The picture states that
in its header. It draws only what the stand-in needs: ``timeseries`` panels, the
units the dashboard uses, and ``{{label}}`` legend formats.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "docs" / "grafana" / "hookgate.json"
PICTURE = REPO / "docs" / "grafana" / "hookgate-dashboard.png"

# Grafana's grid is 24 columns wide, and one row unit is 30 px plus an 8 px margin
# (GRID_COLUMN_COUNT, GRID_CELL_HEIGHT, GRID_CELL_VMARGIN in Grafana's
# public/app/core/constants.ts).
GRID_COLUMNS = 24
WIDTH_PX = 1600
ROW_PX = 38
HEADER_PX = 112
# Grafana's classic palette, so the series colours look familiar.
PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9"]
PALETTE += ["#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17", "#890f02"]
TITLE: dict[str, Any] = {"va": "top", "fontsize": 10.5, "fontweight": "bold"}
NO_DATA: dict[str, Any] = {
    "ha": "center",
    "va": "center",
    "fontsize": 12,
    "color": "#888888",
}
UNITS = {"reqps": " req/s", "ops": " ops/s", "short": "", "s": " s"}


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel and the legend format of its series."""

    ref_id: str
    expr: str
    legend_format: str


@dataclass(frozen=True)
class Panel:
    """The parts of a Grafana panel that the drawing uses."""

    id: int
    title: str
    unit: str
    x: int
    y: int
    w: int
    h: int
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Series:
    name: str
    times: list[float]
    """Unix seconds."""
    values: list[float]


def load_panels(path: Path = DASHBOARD) -> list[Panel]:
    """Return every panel of the dashboard at ``path``.

    Raises :class:`ValueError` for a panel that this stand-in cannot draw: not a
    ``timeseries``, or a unit missing from :data:`UNITS`.
    """
    dashboard = json.loads(path.read_text())
    panels = []
    for raw in dashboard["panels"]:
        unit = raw.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        if raw["type"] != "timeseries" or unit not in UNITS:
            raise ValueError(
                f"panel {raw['id']} ({raw['title']!r}) has type {raw['type']!r} and"
                f" unit {unit!r}; this renderer draws timeseries panels with the"
                f" units {sorted(UNITS)}"
            )
        targets = tuple(
            Target(t["refId"], t["expr"], t.get("legendFormat", ""))
            for t in raw["targets"]
        )
        x, y, w, h = (raw["gridPos"][key] for key in "xywh")
        panels.append(Panel(raw["id"], raw["title"], unit, x, y, w, h, targets))
    return panels


def legend_name(legend_format: str, labels: dict[str, str]) -> str:
    """Fill ``{{label}}`` placeholders as Grafana does, a missing label with ""."""
    name = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), legend_format)
    return name.strip() or json.dumps(labels, sort_keys=True)


def query_range(
    prometheus: str, target: Target, start: float, end: float, step: float
) -> list[Series]:
    """Evaluate one target over ``[start, end]`` (Unix seconds) in Prometheus."""
    response = httpx.get(
        prometheus + "/api/v1/query_range",
        params={"query": target.expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    response.raise_for_status()
    series = []
    for result in response.json()["data"]["result"]:
        times = [float(at) for at, _ in result["values"]]
        values = [float(value) for _, value in result["values"]]
        series.append(
            Series(legend_name(target.legend_format, result["metric"]), times, values)
        )
    return series


def format_value(value: float, unit: str) -> str:
    """Format an axis value in ``unit`` roughly as Grafana does."""
    if unit == "s" and 0 < abs(value) < 1:
        return f"{value * 1000:g} ms"
    for factor, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{suffix}{UNITS[unit]}"
    return f"{value:g}{UNITS[unit]}"


def draw(
    panels: list[Panel],
    data: dict[int, list[Series]],
    header: str,
    window: tuple[float, float],
    out: Path,
) -> None:
    """Draw every panel in its grid place into the PNG file ``out``.

    ``window`` is the time range of every panel, in Unix seconds.
    """
    # Imported here, so that parsing the dashboard needs no matplotlib.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter
    from PIL import Image

    rows = max(panel.y + panel.h for panel in panels)
    height_px = HEADER_PX + rows * ROW_PX
    figure = plt.figure(figsize=(WIDTH_PX / 100, height_px / 100), dpi=100)
    figure.patch.set_facecolor("#f4f5f5")
    figure.text(0.008, 1 - 10 / height_px, header, va="top", linespacing=1.5)
    column_px = WIDTH_PX / GRID_COLUMNS
    limits = (np.array(window) * 1000).astype("datetime64[ms]")

    def box(
        x: float, y: float, w: float, h: float
    ) -> tuple[float, float, float, float]:
        # Pixels from the top-left corner to figure fractions from the bottom-left.
        return (x / WIDTH_PX, 1 - (y + h) / height_px, w / WIDTH_PX, h / height_px)

    for panel in panels:
        left, top = panel.x * column_px + 4, HEADER_PX + panel.y * ROW_PX + 4
        width, height = panel.w * column_px - 8, panel.h * ROW_PX - 8
        series = data.get(panel.id, [])
        legend_rows = math.ceil(len(series) / 4)

        frame = figure.add_axes(box(left, top, width, height), facecolor="white")
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color("#d0d3d6")
        frame.text(0.008, 0.975, panel.title, transform=frame.transAxes, **TITLE)

        # Room below the plot for the time labels and the legend rows.
        below = 30 + 19 * legend_rows
        axes = figure.add_axes(
            box(left + 76, top + 32, width - 112, height - 40 - below)
        )
        axes.grid(True, color="#e6e8ea", linewidth=0.8)
        axes.tick_params(labelsize=8, colors="#464c54", length=0)
        axes.tick_params(axis="x", pad=7)
        for spine in axes.spines.values():
            spine.set_visible(False)
        for index, line in enumerate(series):
            times = (np.array(line.times) * 1000).astype("datetime64[ms]")
            axes.plot(
                times,
                line.values,
                color=PALETTE[index % len(PALETTE)],
                linewidth=1.4,
                label=line.name,
            )
        if any(not math.isnan(v) for line in series for v in line.values):
            axes.set_ylim(bottom=0)
            legend_top = box(left + 70, top + height - below + 22, 0, 0)
            axes.legend(
                loc="upper left",
                bbox_to_anchor=legend_top[:2],
                bbox_transform=figure.transFigure,
                ncol=4,
                fontsize=8.5,
                frameon=False,
            )
        else:
            axes.text(0.5, 0.5, "No data", transform=axes.transAxes, **NO_DATA)
        axes.set_xlim(limits[0], limits[1])
        formatter = mdates.DateFormatter("%H:%M:%S", tz=UTC)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(formatter)
        unit = panel.unit
        axes.yaxis.set_major_formatter(
            FuncFormatter(lambda value, _, unit=unit: format_value(value, unit))
        )

    figure.savefig(out, dpi=100, facecolor=figure.get_facecolor())
    plt.close(figure)
    # A 256-colour palette keeps the lines smooth and the file about a third as big.
    with Image.open(out) as image:
        image.convert("RGB").quantize(256).save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    from ._dashboard_load import Timeline, run
    from ._processes import ProcessGroup

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="Length of the load, in seconds."
    )
    parser.add_argument("--out", type=Path, default=PICTURE, help="The PNG to write.")
    parser.add_argument("--keep", action="store_true", help="Keep logs and data.")
    options = parser.parse_args(argv)
    panels = load_panels()
    work = Path(tempfile.mkdtemp(prefix="hookgate-render-"))
    group = ProcessGroup()
    failed = True
    try:
        timeline = Timeline(options.seconds)
        started, ended, statuses, prometheus = run(work, timeline, group)
        start, end = math.floor(started), math.ceil(ended) + 2
        data: dict[int, list[Series]] = {}
        for panel in panels:
            data[panel.id] = [
                series
                for target in panel.targets
                for series in query_range(prometheus, target, start, end, 1.0)
            ]
        version = httpx.get(prometheus + "/api/v1/status/buildinfo").json()
        failed = False
    finally:
        group.stop_all()
        if failed or options.keep:
            print(f"render-dashboard: logs and data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work)

    day = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d")
    counts = ", ".join(f"{n}x {s}" for s, n in sorted(statuses.items()))
    header = (
        "hookgate: drawn by scripts/render-dashboard with matplotlib from the PromQL"
        " queries in docs/grafana/hookgate.json. NOT a Grafana screenshot.\n"
        f"Prometheus {version['data']['version']} evaluated each query"
        f" (query_range, step 1 s) over a local run on {day} (times in UTC):"
        f" {options.seconds:.0f} s of load, {sum(statuses.values())}"
        f" requests ({counts}).\n{timeline.describe()}"
    )
    draw(panels, data, header, (start, end), options.out)
    empty = [p.title for p in panels if not any(s.values for s in data[p.id])]
    print(f"render-dashboard: wrote {options.out}")
    if empty:
        print(f"render-dashboard: panels without data: {empty}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
