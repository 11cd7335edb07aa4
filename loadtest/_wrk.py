"""Run wrk with ``wrk/signed_requests.lua`` and read the figures it prints."""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hookgate.loadtest._processes import Placement

SCRIPT = Path(__file__).resolve().parent / "wrk" / "signed_requests.lua"

# Time wrk may take beyond its -d duration: loading the pool and closing sockets.
GRACE_SECONDS = 60


class WrkError(RuntimeError):
    """Raised when wrk is missing, fails, or prints no result line."""


@dataclass
class WrkResult:
    """One wrk run: the counts and latencies printed by the Lua ``done`` hook."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: dict[str, int]
    repeated_ids: int
    statuses: dict[int, int] = field(default_factory=dict)
    cpu_percent: float = 0.0
    """CPU use of wrk in % of one core over its wall-clock time, pool load included."""

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_s

    @property
    def accepted(self) -> int:
        return self.statuses.get(202, 0)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


@dataclass(frozen=True)
class WrkSettings:
    threads: int
    connections: int
    timeout_s: int

    def describe(self) -> str:
        return (
            f"wrk -t{self.threads} -c{self.connections} --timeout {self.timeout_s}s"
            f" -s {SCRIPT.name}"
        )


def parse_output(text: str) -> WrkResult:
    """Build a :class:`WrkResult` from the ``result`` and ``status`` lines."""
    statuses: dict[int, int] = {}
    values: dict[str, int] | None = None
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "status":
            statuses[int(words[1])] = int(words[2])
        elif words and words[0] == "result":
            values = {
                key: int(value)
                for key, value in (word.split("=", 1) for word in words[1:])
            }
    if values is None:
        raise WrkError(f"wrk printed no result line; its output was:\n{text}")
    return WrkResult(
        requests=values["requests"],
        duration_s=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
        socket_errors={
            "connect": values["connect_errors"],
            "read": values["read_errors"],
            "write": values["write_errors"],
            "timeout": values["timeouts"],
        },
        repeated_ids=values["repeated_ids"],
        statuses=statuses,
    )


def run_wrk(
    url: str,
    pool: Path,
    *,
    script: Path = SCRIPT,
    settings: WrkSettings,
    duration_s: int,
    placement: Placement,
    output_path: Path,
) -> WrkResult:
    """Run wrk against ``url`` for ``duration_s`` seconds and return its figures.

    ``script`` is ``wrk/signed_requests.lua`` or ``wrk/raw_requests.lua``, and
    ``pool`` a request pool written for it.

    Blocks until wrk exits, and kills wrk if it runs ``GRACE_SECONDS`` past its
    duration. Raises :class:`WrkError` when wrk fails.
    """
    binary = shutil.which("wrk")
    if binary is None:
        raise WrkError("wrk is not installed; install the wrk package (apt wrk)")
    argv = placement.pin(
        [
            binary,
            f"-t{settings.threads}",
            f"-c{settings.connections}",
            f"-d{duration_s}s",
            f"--timeout={settings.timeout_s}s",
            "-s",
            str(script),
            url,
            "--",
            str(pool),
            str(settings.threads),
        ],
        placement.client,
    )

    # wrk is the only child reaped during the run, so the change in the children's
    # resource usage is wrk's own CPU time.
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration_s + GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise WrkError(
            f"wrk ran {GRACE_SECONDS} s past its {duration_s} s duration and was"
            " killed; check that the server still responds"
        ) from None
    wall = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output_path.write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited with status {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )

    result = parse_output(completed.stdout)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    result.cpu_percent = 100 * cpu / wall
    return result
