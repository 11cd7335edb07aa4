"""Figures of one ``consumer_vs_gateway`` invocation: results, checks, output.

This module only describes, formats and reads logs. It starts nothing and sends no
traffic.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hookgate import keys
from hookgate.loadtest._harness import STREAM, TENANT, read_log
from hookgate.loadtest._profile import ProfileSummary
from hookgate.loadtest._report import (
    Measurement,
    format_busy,
    format_others,
    format_profile,
)
from hookgate.loadtest._wrk import WrkResult

DOWNSTREAM = keys.events_stream(TENANT)

# A backlog that grows by less than this share of the gateway's accepted rate,
# fitted over the concurrent run, counts as bounded: the consumer keeps up.
BOUNDED_GROWTH_SHARE = 0.01


@dataclass
class DrainResult:
    """One consumer process draining a backlog that nothing else adds to."""

    consumer_core: str
    backlog: int
    """Entries not acknowledged when the consumer started."""
    seconds_to_first_entry: float | None
    """From the consumer's start to the first reading that showed it reading."""
    seconds_to_drain: float | None
    """From the consumer's start to lag 0 and 0 pending; ``None`` on timeout."""
    acknowledged: int
    published: int
    """Entries the downstream stream gained during the drain."""
    consumer_cpu_seconds: float
    """CPU time of the consumer process, start-up included."""
    redis_cpu_percent: float
    cores: dict[int, Any]
    foreign_percent: float
    """CPU use, in % of one core, not by this harness's processes."""

    @property
    def rate(self) -> float:
        """Acknowledged entries per second from the consumer's start."""
        if self.seconds_to_drain:
            return self.acknowledged / self.seconds_to_drain
        return 0.0

    @property
    def steady_rate(self) -> float:
        """Acknowledged entries per second from the first entry read."""
        if self.seconds_to_drain and self.seconds_to_first_entry is not None:
            return self.acknowledged / (
                self.seconds_to_drain - self.seconds_to_first_entry
            )
        return 0.0

    @property
    def cpu_per_entry_us(self) -> float:
        if not self.acknowledged:
            return 0.0
        return 1e6 * self.consumer_cpu_seconds / self.acknowledged


@dataclass
class ConcurrentResult:
    """A consumer and the gateway running at once, with the backlog read each second."""

    consumer_core: str
    wrk: WrkResult
    samples: list[tuple[float, int, int, int]]
    """(seconds since wrk started, lag, pending, downstream entries gained)."""
    growth_per_second: float
    """Least-squares slope of lag plus pending over the run, in entries/s."""
    consumed_per_second: float
    """Downstream entries gained per second between the first and last reading."""
    seconds_to_catch_up: float | None
    """From wrk's end to lag 0 and 0 pending; ``None`` on timeout."""
    gateway_worker_cpu_percent: float
    consumer_cpu_percent: float
    redis_cpu_percent: float
    cores: dict[int, Any]
    others: list[tuple[str, float]]
    foreign_percent: float

    @property
    def keeps_up(self) -> bool:
        rate = self.wrk.requests_per_second
        return self.growth_per_second < BOUNDED_GROWTH_SHARE * rate


@dataclass
class Report:
    machine: dict[str, str]
    versions: dict[str, str]
    code: str
    placement: list[str]
    load: str
    busy_before: dict[int, Any]
    gateway: Measurement
    drain: DrainResult
    concurrent: ConcurrentResult
    code_after: str = ""
    profile: ProfileSummary | None = None
    profiled: WrkResult | None = None
    profile_path: str | None = None
    skipped: int = 0
    """Older entries the group started past, with ``--drain-entries``."""
    ingest_entries: int = 0
    downstream_entries: int = 0
    dead_letters: int = 0
    final_backlog: int = 0
    gateway_log: list[str] = field(default_factory=list)
    consumer_log: list[str] = field(default_factory=list)
    log_levels: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Drain rate of one consumer over the gateway's accepted rate."""
        return self.drain.rate / self.gateway.result.requests_per_second

    def checks(self) -> list[tuple[bool, str]]:
        """Return each check as (passed, description)."""
        runs = [self.gateway.warmup, self.gateway.result, self.concurrent.wrk]
        if self.profiled is not None:
            runs.append(self.profiled)
        non_2xx = sum(run.non_2xx for run in runs)
        errors = sum(sum(run.socket_errors.values()) for run in runs)
        repeated = sum(run.repeated_ids for run in runs)
        return [
            (non_2xx == 0, f"non-2xx responses over every run: {non_2xx}"),
            (errors == 0, f"socket errors and timeouts over every run: {errors}"),
            (repeated == 0, f"requests that repeated a webhook-id: {repeated}"),
            (
                self.drain.seconds_to_drain is not None,
                "drain finished within the timeout",
            ),
            (
                self.downstream_entries + self.final_backlog + self.skipped
                == self.ingest_entries,
                f"{STREAM} contains {self.ingest_entries:,} entries: published"
                f" {self.downstream_entries:,}, still in the backlog"
                f" {self.final_backlog:,}, skipped {self.skipped:,}",
            ),
            (self.dead_letters == 0, f"dead letters: {self.dead_letters}"),
            (
                not self.gateway_log and not self.consumer_log,
                f"warnings and errors logged: gateway {len(self.gateway_log)},"
                f" consumers {len(self.consumer_log)} (distinct lines)",
            ),
            (
                self.code_after == self.code,
                "measured code unchanged during the run"
                if self.code_after == self.code
                else f"measured code changed during the run: now {self.code_after}",
            ),
        ]


# FastStream prints its own start and stop lines as text, not JSON.
TEXT_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")


def read_consumer_log(path: Path) -> tuple[dict[str, int], list[str]]:
    """Count a consumer's JSON log lines by level and list warnings and errors.

    Text lines count as problems only when they name a level of WARNING or above.
    """
    json_lines = path.with_suffix(".json-lines")
    text_problems = []
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            kept.append(line)
        elif TEXT_PROBLEM.search(line):
            text_problems.append(f"text line: {line[:120]}")
    json_lines.write_text("\n".join(kept) + "\n")
    levels, problems = read_log(json_lines)
    return levels, problems + text_problems


def format_report(report: Report) -> str:
    machine = report.machine
    gateway, drain, concurrent = report.gateway, report.drain, report.concurrent
    first_entry = drain.seconds_to_first_entry
    lines = [
        "",
        "one consumer process beside one gateway worker",
        f"machine:   {machine['cpu']}, {machine['cores']} cores"
        f" (allowed {machine['cores_allowed']}), {machine['memory']} RAM,"
        f" Linux {machine['kernel']}",
        "versions:  " + ", ".join(f"{k} {v}" for k, v in report.versions.items()),
        f"code:      {report.code}",
        *(f"placement: {line}" for line in report.placement),
        f"load:      {report.load}",
        "",
        f"gateway:    {gateway.result.requests_per_second:,.0f} accepted/s,"
        f" p50 {gateway.result.p50_ms:.2f} ms, p99 {gateway.result.p99_ms:.2f} ms,"
        f" worker {gateway.worker_cpu_percent:.0f}% of a core,"
        f" redis-server {gateway.redis_cpu_percent or 0:.0f}%",
        f"drain:      {drain.acknowledged:,} of {drain.backlog:,} entries in "
        + (
            f"{drain.seconds_to_drain:.1f} s: {drain.rate:,.0f} entries/s from the"
            f" consumer's start, {drain.steady_rate:,.0f}/s from its first entry"
            if drain.seconds_to_drain is not None
            else "(timed out)"
        ),
        f"            first entry read {first_entry or 0:.2f} s after start;"
        f" {drain.published:,} events published; consumer CPU"
        f" {drain.consumer_cpu_seconds:.1f} s ({drain.cpu_per_entry_us:.0f} µs per"
        f" entry, start-up included); redis-server {drain.redis_cpu_percent:.0f}%",
        f"            cores {format_busy(drain.cores)}; CPU not used by this harness"
        f" {drain.foreign_percent:.0f}%; older entries skipped: {report.skipped:,}",
        f"ratio:      consumer drain rate / gateway accepted rate = {report.ratio:.2f}",
        f"concurrent: gateway {concurrent.wrk.requests_per_second:,.0f} accepted/s,"
        f" consumer {concurrent.consumed_per_second:,.0f} events/s, backlog growth"
        f" {concurrent.growth_per_second:,.0f} entries/s ->"
        + (
            " bounded, the consumer keeps up"
            if concurrent.keeps_up
            else " grows, the consumer falls behind"
        ),
        f"            CPU % of a core: gateway worker"
        f" {concurrent.gateway_worker_cpu_percent:.0f}, consumer"
        f" {concurrent.consumer_cpu_percent:.0f}, redis-server"
        f" {concurrent.redis_cpu_percent:.0f}; cores {format_busy(concurrent.cores)};"
        f" other processes {format_others(concurrent.others)}; CPU not used by this"
        f" harness {concurrent.foreign_percent:.0f}%",
        "            catch-up after wrk stopped: "
        + (
            f"{concurrent.seconds_to_catch_up:.1f} s"
            if concurrent.seconds_to_catch_up is not None
            else "timed out"
        ),
        "            s since wrk start, lag, pending, events published:",
        *(
            f"            {at:6.1f} {lag:>9,} {pending:>6,} {published:>9,}"
            for at, lag, pending, published in concurrent.samples
        ),
        f"cores busy before the run: {format_busy(report.busy_before)}",
    ]
    if report.profile is not None and report.profiled is not None:
        lines += ["", *format_profile(report.profiled, report.profile)]
        lines.append(f"speedscope file: {report.profile_path}")
    lines += ["", "checks:"]
    for passed, description in report.checks():
        lines.append(f"  {'ok  ' if passed else 'FAIL'}  {description}")
    lines += [f"        {line}" for line in report.gateway_log + report.consumer_log]
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    document = asdict(report)
    document["ratio"] = report.ratio
    document["gateway"]["requests_per_second"] = (
        report.gateway.result.requests_per_second
    )
    document["drain"]["rate"] = report.drain.rate
    document["drain"]["steady_rate"] = report.drain.steady_rate
    document["concurrent"]["keeps_up"] = report.concurrent.keeps_up
    document["checks"] = [
        {"passed": passed, "description": text} for passed, text in report.checks()
    ]
    return document
