"""Figures of one ``ingest_vs_bare`` invocation: what was measured, checks, output.

This module only describes and formats. It starts nothing and sends no traffic.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hookgate.loadtest._processes import CoreUse
from hookgate.loadtest._profile import ProfileSummary
from hookgate.loadtest._wrk import WrkResult

REPOSITORY = Path(__file__).resolve().parent.parent
# Folders whose code the two servers run.
MEASURED_CODE = ("gateway", "fastpath", "hookgate", "loadtest")

# CPU use, in % of one core, not by the harness's processes during a measured run,
# above which the report calls that run disturbed.
FOREIGN_WARNING_PERCENT = 10


@dataclass
class Measurement:
    """One server's warm-up and measured run, with CPU use during the latter."""

    server: str
    warmup: WrkResult
    result: WrkResult
    server_cpu_percent: float
    """Granian's main process and its worker, in % of one core."""
    worker_cpu_percent: float
    worker_pid: int
    redis_cpu_percent: float | None
    cores: dict[int, CoreUse]
    """Use of each core over the same window as the CPU figures."""
    others: list[tuple[str, float]]
    """Processes this harness did not start that used CPU in that window."""
    foreign_percent: float
    """CPU use in that window, in % of one core, not by this harness's processes."""

    @property
    def worker_cpu_per_request_us(self) -> float:
        """Worker CPU time per response, in µs, assuming the window's rate held."""
        rate = self.result.requests_per_second
        return self.worker_cpu_percent * 10_000 / rate if rate else 0.0


@dataclass(frozen=True)
class RedisCommand:
    """One line of Redis's INFO commandstats: network and AOF time excluded."""

    name: str
    calls: int
    usec_per_call: float


@dataclass
class Report:
    machine: dict[str, str]
    versions: dict[str, str]
    code: str
    """Commit of the measured code and the files changed since, at the start."""
    placement: str
    load: str
    stream: str
    busy_before: dict[int, CoreUse]
    """Use of each core during the second before the harness started anything."""
    bare: Measurement
    hookgate: Measurement
    code_after: str = ""
    profiled: WrkResult | None = None
    profile: ProfileSummary | None = None
    profile_path: str | None = None
    stream_entries: int = 0
    accepted_total: int = 0
    redis_commands: list[RedisCommand] = field(default_factory=list)
    log_levels: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return (
            self.hookgate.result.requests_per_second
            / self.bare.result.requests_per_second
        )

    def hookgate_runs(self) -> list[WrkResult]:
        runs = [self.hookgate.warmup, self.hookgate.result]
        if self.profiled is not None:
            runs.append(self.profiled)
        return runs

    def checks(self) -> list[tuple[bool, str]]:
        """Return each check as (passed, description)."""
        runs = {
            "bare": [self.bare.warmup, self.bare.result],
            "hookgate": self.hookgate_runs(),
        }
        non_2xx = {name: sum(run.non_2xx for run in runs[name]) for name in runs}
        socket_errors = {
            name: sum(sum(run.socket_errors.values()) for run in runs[name])
            for name in runs
        }
        repeated = sum(run.repeated_ids for run in runs["hookgate"])
        warnings = self.log_levels.get("warning", 0)
        errors = self.log_levels.get("error", 0) + self.log_levels.get("critical", 0)
        return [
            (
                not any(non_2xx.values()),
                f"non-2xx responses over every run: bare {non_2xx['bare']},"
                f" hookgate {non_2xx['hookgate']}",
            ),
            (
                not any(socket_errors.values()),
                "socket errors and timeouts over every run: bare"
                f" {socket_errors['bare']}, hookgate {socket_errors['hookgate']}",
            ),
            (
                self.stream_entries >= self.accepted_total,
                f"stream {self.stream} contains {self.stream_entries} entries; wrk"
                f" counted {self.accepted_total} responses with 202 over every"
                " hookgate run, warm-up included",
            ),
            (
                repeated == 0,
                f"requests to hookgate that repeated a webhook-id: {repeated}",
            ),
            (
                warnings == 0 and errors == 0,
                f"gateway log: {warnings} warnings, {errors} errors",
            ),
            (
                self.code_after == self.code,
                "measured code unchanged during the run"
                if self.code_after == self.code
                else f"measured code changed during the run: now {self.code_after}",
            ),
        ]


def machine_facts() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    allowed = sorted(os.sched_getaffinity(0))
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "cores_allowed": ",".join(str(core) for core in allowed),
        "memory": memory,
        "kernel": platform.release(),
    }


def tool_versions() -> dict[str, str]:
    from hookgate.fastpath import IMPLEMENTATION

    versions = {"python": platform.python_version()}
    for package in ("granian", "uvloop", "hiredis", "msgspec"):
        versions[package] = importlib.metadata.version(package)
    versions["redis-server"] = _version_of(["redis-server", "--version"], r"v=(\S+)")
    versions["wrk"] = _version_of(["wrk", "--version"], r"wrk (\S+)")
    versions["signature check"] = IMPLEMENTATION
    return versions


def _version_of(argv: list[str], pattern: str) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    # wrk --version prints its usage and exits 1, so the status is not checked.
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=10, check=False
    )
    match = re.search(pattern, completed.stdout + completed.stderr)
    return match.group(1) if match else "unknown"


def code_state(folders: tuple[str, ...] = MEASURED_CODE) -> str:
    """Return the commit of the measured code and the files changed in ``folders``.

    Runs git with ``--no-optional-locks``, so ``git status`` does not take the
    index lock that a commit made at the same time needs. Outside a git work tree
    the text starts with "unknown".
    """
    git = shutil.which("git")
    if git is None:
        return "unknown: git not found"
    base = [git, "--no-optional-locks", "-C", str(REPOSITORY)]
    head = subprocess.run(
        [*base, "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if head.returncode != 0:
        return "unknown: not a git work tree"
    status = subprocess.run(
        [*base, "status", "--porcelain", "--", *folders],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    changed = [line[3:] for line in status.stdout.splitlines()]
    if not changed:
        return f"{head.stdout.strip()}, no uncommitted changes"
    return f"{head.stdout.strip()} with uncommitted changes in {', '.join(changed)}"


def format_report(report: Report) -> str:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    def row(measurement: Measurement) -> str:
        result = measurement.result
        errors = sum(result.socket_errors.values())
        return (
            f"{measurement.server:<9}{result.requests_per_second:>9,.0f}"
            f"{result.p50_ms:>8.2f}{result.p99_ms:>8.2f}{result.accepted:>10,}"
            f"{result.non_2xx:>9}{errors:>10}"
            f"{percent(measurement.worker_cpu_percent):>8}"
            f"{measurement.worker_cpu_per_request_us:>8.0f}"
            f"{percent(measurement.redis_cpu_percent):>7}"
            f"{percent(result.cpu_percent):>6}"
        )

    machine = report.machine
    lines = [
        "",
        "hookgate ingest beside bare Granian, one worker each",
        f"machine:   {machine['cpu']}, {machine['cores']} cores"
        f" (allowed {machine['cores_allowed']}), {machine['memory']} RAM,"
        f" Linux {machine['kernel']}",
        "versions:  " + ", ".join(f"{k} {v}" for k, v in report.versions.items()),
        f"code:      {report.code}",
        f"placement: {report.placement}",
        f"load:      {report.load}",
        "",
        f"{'server':<9}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'202s':>10}"
        f"{'non-2xx':>9}{'sock.err':>10}{'worker':>8}{'µs/req':>8}{'redis':>7}"
        f"{'wrk':>6}",
        row(report.bare),
        row(report.hookgate),
        "",
        f"hookgate / bare: {report.ratio:.2f}",
        "CPU columns: % of one core; worker and redis over the middle of the"
        " measured run, wrk over its whole life including loading its pool;"
        " µs/req is the worker's CPU time per response.",
        f"cores busy before the run: {format_busy(report.busy_before)}",
        *(
            f"during {m.server}: {format_busy(m.cores)}; other processes:"
            f" {format_others(m.others)}; CPU not used by this harness:"
            f" {m.foreign_percent:.0f}% of a core"
            for m in (report.bare, report.hookgate)
        ),
        "redis-server time per command, every hookgate run: "
        + ", ".join(
            f"{c.name} {c.usec_per_call:.1f} µs x {c.calls:,}"
            for c in report.redis_commands
        ),
    ]
    if report.profiled is not None and report.profile is not None:
        lines += ["", *format_profile(report.profiled, report.profile)]
        lines.append(f"speedscope file: {report.profile_path}")
    disturbed = [
        m.server
        for m in (report.bare, report.hookgate)
        if m.foreign_percent > FOREIGN_WARNING_PERCENT
    ]
    if disturbed:
        lines.append(
            f"warning: other work took more than {FOREIGN_WARNING_PERCENT}% of a core"
            f" during {' and '.join(disturbed)}; rerun on a quiet machine"
        )
    lines += ["", "checks:"]
    for passed, description in report.checks():
        lines.append(f"  {'ok  ' if passed else 'FAIL'}  {description}")
    lines += [f"        {problem}" for problem in report.log_problems]
    return "\n".join(lines)


def format_busy(cores: dict[int, CoreUse]) -> str:
    if not cores:
        return "not measured"
    return ", ".join(
        f"core {core} {use.busy:.0f}% (interrupts {use.interrupts:.0f}%)"
        for core, use in cores.items()
    )


def format_others(others: list[tuple[str, float]]) -> str:
    if not others:
        return "none above 2%"
    return ", ".join(f"{name} {percent:.0f}%" for name, percent in others[:5])


def format_profile(profiled: WrkResult, profile: ProfileSummary) -> list[str]:
    lines = [
        f"profiled run, py-spy attached: {profiled.requests_per_second:,.0f} req/s"
        f" over {profiled.duration_s:.0f} s, {profiled.non_2xx} non-2xx",
        "worker threads, samples taken while running (with Python frames):",
    ]
    lines += [
        f"  {thread.name}: {thread.samples} ({thread.python_samples})"
        for thread in profile.threads
    ]
    lines += [
        f"functions of {profile.ranked_thread}, by self time"
        " (self % and total % of its samples with Python frames):",
        *(
            f"  {r.self_percent:5.1f} {r.total_percent:5.1f}  {r.function}"
            for r in profile.by_self
        ),
        "by total time, without the frames on every stack (total % and self %):",
        *(
            f"  {r.total_percent:5.1f} {r.self_percent:5.1f}  {r.function}"
            for r in profile.by_total
        ),
    ]
    return lines


def to_json(report: Report) -> dict[str, Any]:
    """Return the report as JSON-ready data, with the derived figures added."""
    document = asdict(report)
    document["ratio"] = report.ratio
    for name in ("bare", "hookgate"):
        measurement = getattr(report, name)
        document[name]["requests_per_second"] = measurement.result.requests_per_second
        document[name]["worker_cpu_per_request_us"] = (
            measurement.worker_cpu_per_request_us
        )
    document["checks"] = [
        {"passed": passed, "description": text} for passed, text in report.checks()
    ]
    return document
