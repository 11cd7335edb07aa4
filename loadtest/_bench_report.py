"""The bench's output files: results.json, report.md and two PNG plots.

This module only formats what the runs measured; it starts nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hookgate.loadtest._budget import Verdict
from hookgate.loadtest._report import FOREIGN_WARNING_PERCENT as DISTURBED_PERCENT

THROUGHPUT_PNG = "throughput.png"
# Lag of the open-model generator past which the report warns that its latencies
# include the generator's own stall. In eleven runs, the three whose p99 missed
# 10 ms (29 to 75 ms) had lags of 29 to 73 ms. The others had 3.5 to 10.2 ms.
GENERATOR_STALL_MS = 20.0
LATENCY_PNG = "latency.png"

# The order and labels of the configurations in the table and the bar plot.
CONFIGURATIONS = [
    ("bare", "bare Granian (202, no work)"),
    ("hookgate_nowrite", "hookgate, writes confirmed in memory"),
    ("hookgate", "hookgate, Standard 1 KB"),
    ("hookgate_mix", "hookgate, realistic mix"),
    ("tracing_off", "hookgate, tracing off (median pair)"),
    ("tracing_default", "hookgate, tracing default sampler (0.1%, median pair)"),
    ("tracing_always_on", "hookgate, tracing every request"),
    ("tracing_always_on_off", "hookgate, tracing off (beside every request)"),
    ("fastapi", "FastAPI + one XADD"),
]


def verdicts_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    return [
        {
            "name": v.entry.name,
            "metric": v.entry.metric,
            "op": v.entry.op,
            "limit": v.entry.limit,
            "tolerance": v.entry.tolerance,
            "informational": v.entry.informational,
            "note": v.entry.note,
            "value": v.value,
            "measured": v.measured,
            "passed": v.passed,
            "miss": v.miss,
            "reason": v.entry.reason,
            "source": v.entry.measured,
        }
        for v in verdicts
    ]


def write_results(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def write_report_md(path: Path, document: dict[str, Any]) -> None:
    """Write a Markdown summary: budget outcomes, configurations, open model."""
    runs = document["runs"]
    lines = [
        "# hookgate bench",
        "",
        f"- started: {document['started']} (UTC), took {document['seconds']:.0f} s",
        f"- form: {document['form']}; slowdown: {document['slowdown'] or 'none'};"
        f" batch_io_threads: {'on' if document.get('batch_io_threads') else 'off'}",
        f"- code: {document['code']}",
        f"- machine: {document['machine']}",
        f"- placement: {document['placement']}",
        "",
        "## Budget",
        "",
        "| entry | value | rule | outcome |",
        "| --- | ---: | --- | --- |",
    ]
    for verdict in document["budget"]:
        value = verdict["value"]
        shown = "-" if value is None else f"{value:.4g}"
        rule = f"{verdict['metric']} {verdict['op']} {verdict['limit']:g}"
        if not verdict["measured"]:
            outcome = "not measured"
        elif verdict["passed"]:
            outcome = "pass"
        else:
            outcome = f"miss by {verdict['miss']:.4g}"
        if verdict["informational"]:
            outcome += " (informational)"
        if verdict.get("note"):
            outcome += f"; {verdict['note']}"
        lines.append(f"| {verdict['name']} | {shown} | `{rule}` | {outcome} |")

    lines += [
        "",
        "## Throughput, wrk -t1 -c64, one worker",
        "",
        "| configuration | req/s | events/s | p50 ms | p99 ms | non-2xx"
        " | worker CPU | redis CPU | other CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in CONFIGURATIONS:
        run = runs.get(key)
        if run is None:
            continue
        lines.append(
            f"| {label} | {_number(run['requests_per_second'])}"
            f" | {_number(run['events_per_second'])} | {run['p50_ms']:.2f}"
            f" | {run['p99_ms']:.2f} | {run['non_2xx']}"
            f" | {run['worker_cpu_percent']:.0f}%"
            f" | {_percent(run['redis_cpu_percent'])}"
            f" | {_percent(run['foreign_cpu_percent'])} |"
        )
    disturbed = [
        key
        for key, _ in CONFIGURATIONS
        if key in runs and runs[key]["foreign_cpu_percent"] > DISTURBED_PERCENT
    ]
    lines += [
        "",
        "CPU columns are % of one core over the middle of the measured run. Other"
        " CPU is the busy time of both cores that no process of the bench used.",
    ]
    if disturbed:
        lines.append(
            f"Warning: other work used more than {DISTURBED_PERCENT}% of a core"
            f" during {', '.join(disturbed)}; those figures are low and noisy."
        )
    pairs = runs.get("tracing_pairs", {}).get("pairs")
    if pairs:
        lines += [
            "",
            "## Tracing cost, in pairs of back-to-back runs",
            "",
            "| pair | tracing off req/s | default sampler req/s | lost |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for index, pair in enumerate(pairs):
            lines.append(
                f"| {index} | {_number(pair['off'])} | {_number(pair['default'])}"
                f" | {pair['loss']:.1%} |"
            )
    open_run = runs.get("open")
    if open_run is not None:
        lines += [
            "",
            "## Open model at half of hookgate's rate",
            "",
            f"- offered {open_run['offered_rate']:,.0f} req/s for"
            f" {open_run['duration_s']} s on {open_run['connections']} connections,"
            f" completed {open_run['completed']:,}",
            f"- latency from the scheduled time: p50 {open_run['p50_ms']:.2f} ms,"
            f" p99 {open_run['p99_ms']:.2f} ms, p99.9 {open_run['p99_9_ms']:.2f} ms,"
            f" max {open_run['max_ms']:.2f} ms",
            f"- non-2xx {open_run['non_2xx']}, unfinished {open_run['unfinished']},"
            f" connection errors {open_run['connection_errors']}, acknowledged"
            f" events missing from the stream {open_run['missing_events']},"
            f" entries written twice {open_run.get('duplicate_entries', 0)}",
            f"- missed schedule: {open_run['late_sends']} sent late by the generator,"
            f" {open_run['queued']} waited for a free connection; the longest lag"
            f" was {open_run.get('max_generator_lag_ms', 0):.1f} ms",
            f"- CPU that no process of the bench used:"
            f" {_percent(open_run.get('foreign_cpu_percent'))} of a core",
        ]
        lag = open_run.get("max_generator_lag_ms", 0)
        if lag > GENERATOR_STALL_MS:
            lines.append(
                f"Warning: the generator itself fell {lag:.0f} ms behind its"
                " schedule; the latencies count that stall, so the p99 is high and"
                " noisy."
            )
    if document["errors"]:
        lines += ["", "## Errors", "", *[f"- {error}" for error in document["errors"]]]
    plots = [THROUGHPUT_PNG] if any(key in runs for key, _ in CONFIGURATIONS) else []
    if open_run is not None:
        plots.append(LATENCY_PNG)
    if plots:
        lines += ["", f"Plots: {', '.join(plots)}."]
    lines.append("")
    path.write_text("\n".join(lines))


def write_plots(directory: Path, runs: dict[str, Any], latencies_us: list[int]) -> None:
    """Draw the throughput bars and the open-model latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [(key, label) for key, label in CONFIGURATIONS if key in runs]
    if present:
        figure, axes = plt.subplots(figsize=(9, 4.5))
        values = [runs[key]["requests_per_second"] for key, _ in present]
        axes.barh([label for _, label in present], values, color="#4477aa")
        axes.invert_yaxis()
        axes.set_xlabel("requests per second (wrk -t1 -c64, one worker)")
        for index, value in enumerate(values):
            axes.text(value, index, f" {value:,.0f}", va="center")
        figure.tight_layout()
        figure.savefig(directory / THROUGHPUT_PNG, dpi=100)
        plt.close(figure)

    if latencies_us:
        figure, axes = plt.subplots(figsize=(9, 4.5))
        axes.hist([value / 1000 for value in latencies_us], bins=100, color="#aa7744")
        axes.set_yscale("log")
        axes.set_xlabel("latency from scheduled send, ms (open model)")
        axes.set_ylabel("responses")
        figure.tight_layout()
        figure.savefig(directory / LATENCY_PNG, dpi=100)
        plt.close(figure)
