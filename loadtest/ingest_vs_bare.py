"""Accepted webhooks per second of one hookgate worker beside a bare Granian worker.

Run with ``.venv/bin/python -m hookgate.loadtest.ingest_vs_bare``. The harness:

1. starts a private redis-server on a free loopback port (AOF on, ``appendfsync
   everysec``, data in a temporary directory);
2. serves :mod:`hookgate.loadtest.bare` with Granian and loads it with wrk: a
   warm-up, then the measured run;
3. serves ``hookgate serve`` with one Standard Webhooks source and loads it the
   same way, with requests signed just before each run;
4. optionally profiles the hookgate worker with py-spy in one more run;
5. checks that no response was outside 2xx and that the ingest stream contains at
   least as many entries as wrk counted 202 responses, then prints the figures.

It sends traffic only to 127.0.0.1 and never uses the default Redis port. Every
process it starts is stopped by PID when it finishes, fails or gets Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from hookgate import keys
from hookgate.loadtest._processes import (
    CpuWindow,
    Placement,
    ProcessGroup,
    command_line,
    descendants,
    free_port,
    machine_busy,
    plan_placement,
)
from hookgate.loadtest._profile import (
    ProfileSummary,
    py_spy_binary,
    record_argv,
    summarize,
)
from hookgate.loadtest._report import (
    Measurement,
    RedisCommand,
    Report,
    code_state,
    format_busy,
    format_report,
    machine_facts,
    to_json,
    tool_versions,
)
from hookgate.loadtest._requests import new_secret, write_pool
from hookgate.loadtest._wrk import WrkError, WrkResult, WrkSettings, run_wrk

HOST = "127.0.0.1"
TENANT = "bench"
SOURCE_ID = "bench"
SECRET_VARIABLE = "HOOKGATE_LOADTEST_SECRET"
PATH = f"/hooks/{SOURCE_ID}"
STREAM = keys.ingest_stream(TENANT)
DEFAULT_REDIS_PORT = 6379

# A guess of the fastest warm-up rate, in requests per second, used to size the
# warm-up's pool. A faster server repeats webhook-ids, which the checks report.
WARMUP_RATE_GUESS = 80_000
# The measured run's pool contains this many times what the warm-up rate predicts.
POOL_HEADROOM = 1.5
MIN_POOL = 50_000

# Busy % of a core, before the run, above which the harness warns that others use
# the machine.
BUSY_WARNING_PERCENT = 10

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15

GATEWAY_CONFIG = f"""\
# Written by hookgate.loadtest.ingest_vs_bare. Gateway settings are the defaults.
[[sources]]
id = "{SOURCE_ID}"
tenant = "{TENANT}"
provider = "standard-webhooks"
secret_env = ["{SECRET_VARIABLE}"]
"""


class HarnessError(RuntimeError):
    """Raised when a process does not start or a step cannot go on."""


@dataclass(frozen=True)
class Context:
    """Settings and secret shared by every load run of one invocation."""

    args: argparse.Namespace
    settings: WrkSettings
    placement: Placement
    directory: Path
    secret: str
    """The source's Standard Webhooks secret, made up for this invocation."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hookgate.loadtest.ingest_vs_bare",
        description=(
            "Measure accepted webhooks per second of one hookgate worker beside a"
            " Granian worker that responds 202 and does nothing else."
        ),
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=10,
        help="length of the measured run per server, in seconds",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="length of the warm-up run per server, in seconds",
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="wrk connections (-c)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="wrk threads (-t); one suffices when wrk has one core to itself",
    )

    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="also profile the hookgate worker with py-spy during one more run and"
        " write a speedscope file here",
    )
    parser.add_argument(
        "--profile-duration",
        type=int,
        default=10,
        help="length of the profiled run, in seconds",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="let py-spy sample native frames too (C, Cython, Rust)",
    )
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="let py-spy read the worker's memory without pausing it",
    )

    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep logs, request pools and wrk output here instead of a temporary"
        " directory that is removed at the end",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file"
    )

    args = parser.parse_args(argv)
    for name in ("duration", "warmup", "connections", "threads", "profile_duration"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """Return the environment for a server, without the caller's hookgate settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("HOOKGATE_") and name != "REDIS_URL"
    }
    # The signature implementation may be chosen on purpose (HOOKGATE_FASTPATH).
    if "HOOKGATE_FASTPATH" in os.environ:
        env["HOOKGATE_FASTPATH"] = os.environ["HOOKGATE_FASTPATH"]
    env["HOOKGATE_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    client: redis.Redis

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


def start_redis(
    processes: ProcessGroup, directory: Path, placement: Placement
) -> RedisServer:
    """Start redis-server with AOF on and return it once it replies to PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise HarnessError("redis-server is not installed; run scripts/bootstrap")
    port = free_port()
    # Ports come from the ephemeral range, which could be set to include Redis's
    # default port. That port may belong to another Redis, so it is never used.
    while port == DEFAULT_REDIS_PORT:
        port = free_port()

    data = directory / "redis"
    data.mkdir()
    argv = [
        binary,
        "--bind",
        HOST,
        "--port",
        str(port),
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--logfile",
        str(data / "redis.log"),
    ]
    process = processes.start(
        "redis-server", placement.pin(argv, placement.client), directory / "redis.out"
    )

    client = redis.Redis(host=HOST, port=port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            client.ping()
            return RedisServer(process, port, client)
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(
                    f"redis-server on port {port} did not start:\n"
                    f"{tail(data / 'redis.log')}"
                ) from None
            time.sleep(0.05)


def wait_until_serving(
    port: int, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    """Wait until the server on ``port`` responds to ``GET /healthz`` at all."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        connection = http.client.HTTPConnection(HOST, port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(
                    f"server on port {port} did not start:\n{tail(log_path)}"
                ) from None
            time.sleep(0.1)
        finally:
            connection.close()


def busiest(percent: dict[int, float], candidates: list[int]) -> int:
    """Return the candidate PID that used the most CPU, the Granian worker."""
    return max(candidates, key=lambda pid: percent.get(pid, 0.0))


def measure(
    name: str,
    port: int,
    server: subprocess.Popen[bytes],
    redis_pid: int | None,
    context: Context,
) -> Measurement:
    """Warm up and measure one server with wrk, sampling CPU use meanwhile."""
    args, settings = context.args, context.settings
    placement, directory, secret = context.placement, context.directory, context.secret
    url = f"http://{HOST}:{port}{PATH}"
    pool = directory / f"{name}-warmup.pool"
    write_pool(pool, secret, args.warmup * WARMUP_RATE_GUESS)
    warmup = run_wrk(
        url,
        pool,
        settings=settings,
        duration_s=args.warmup,
        placement=placement,
        output_path=directory / f"{name}-warmup.wrk",
    )
    if warmup.non_2xx:
        raise HarnessError(
            f"{name}: {warmup.non_2xx} responses outside 2xx during the warm-up"
            f" (by status: {warmup.statuses}); see {directory}"
        )

    size = max(
        MIN_POOL,
        math.ceil(warmup.requests_per_second * args.duration * POOL_HEADROOM),
    )
    pool = directory / f"{name}.pool"
    write_pool(pool, secret, size)

    # The window skips wrk's first second (pool loading) and its last one.
    window = CpuWindow(start_after=1.5, length=max(args.duration - 2, 1))
    window.start()
    try:
        result = run_wrk(
            url,
            pool,
            settings=settings,
            duration_s=args.duration,
            placement=placement,
            output_path=directory / f"{name}.wrk",
        )
    finally:
        window.cancel()
        window.join()

    percent = window.percent
    workers = descendants(server.pid)
    worker_pid = busiest(percent, workers) if workers else server.pid
    server_percent = sum(percent.get(pid, 0.0) for pid in [server.pid, *workers])
    redis_percent = None
    if redis_pid is not None and percent:
        redis_percent = percent.get(redis_pid, 0.0)
    return Measurement(
        server=name,
        warmup=warmup,
        result=result,
        server_cpu_percent=server_percent,
        worker_cpu_percent=percent.get(worker_pid, 0.0),
        worker_pid=worker_pid,
        redis_cpu_percent=redis_percent,
        cores=window.cores,
        others=window.others(),
        foreign_percent=window.foreign_percent(),
    )


def profile_worker(
    url: str,
    worker_pid: int,
    expected_rate: float,
    processes: ProcessGroup,
    context: Context,
) -> tuple[WrkResult, ProfileSummary]:
    """Record the worker with py-spy during one more wrk run, then rank functions."""
    args, settings = context.args, context.settings
    placement, directory, secret = context.placement, context.directory, context.secret
    binary = py_spy_binary()
    if binary is None:
        raise HarnessError(
            "py-spy is not installed; install it with .venv/bin/pip install py-spy"
        )
    pool = directory / "hookgate-profiled.pool"
    size = max(MIN_POOL, math.ceil(expected_rate * args.profile_duration * 2))
    write_pool(pool, secret, size)

    output = args.profile.resolve()
    spy = processes.start(
        "py-spy",
        record_argv(
            binary,
            worker_pid,
            output,
            args.profile_duration,
            placement,
            native=args.native,
            nonblocking=args.nonblocking,
        ),
        directory / "py-spy.log",
    )
    # wrk runs one second longer, so py-spy samples only under load.
    result = run_wrk(
        url,
        pool,
        settings=settings,
        duration_s=args.profile_duration + 1,
        placement=placement,
        output_path=directory / "hookgate-profiled.wrk",
    )
    try:
        spy.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"py-spy did not finish; see {directory / 'py-spy.log'}"
        ) from None
    finally:
        processes.stop(spy)
    if spy.returncode != 0 or not output.exists():
        raise HarnessError(
            f"py-spy failed with status {spy.returncode}:\n"
            f"{tail(directory / 'py-spy.log')}"
        )
    return result, summarize(output)


def read_commandstats(client: redis.Redis, top: int = 5) -> list[RedisCommand]:
    """Return the commands Redis spent most time on, from INFO commandstats."""
    commands = [
        RedisCommand(
            name=key.removeprefix("cmdstat_"),
            calls=int(stats["calls"]),
            usec_per_call=float(stats["usec_per_call"]),
        )
        for key, stats in client.info("commandstats").items()
    ]
    commands.sort(key=lambda command: -command.calls * command.usec_per_call)
    return commands[:top]


def read_log(path: Path) -> tuple[dict[str, int], list[str]]:
    """Count the gateway's log lines by level and list its warnings and errors."""
    levels: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            levels["unparsed"] += 1
            problems[f"unparsed line: {line[:120]}"] += 1
            continue
        if not isinstance(record, dict):
            continue
        level = str(record.get("level", "unknown"))
        levels[level] += 1
        if level in ("warning", "error", "critical"):
            detail = record.get("reason") or record.get("error") or ""
            problems[f"{level} {record.get('event')} {detail}".strip()] += 1
    listed = [f"{count} x {text}" for text, count in problems.most_common(10)]
    return dict(levels), listed


def run(
    args: argparse.Namespace,
    directory: Path,
    placement: Placement,
    settings: WrkSettings,
    processes: ProcessGroup,
) -> Report:
    busy_before = machine_busy()
    if any(use.busy > BUSY_WARNING_PERCENT for use in busy_before.values()):
        print(
            "warning: other processes keep the machine busy"
            f" ({format_busy(busy_before)}); the figures will be low and noisy",
            flush=True,
        )
    code = code_state()
    secret = new_secret()
    redis_server = start_redis(processes, directory, placement)
    context = Context(args, settings, placement, directory, secret)

    bare_port = free_port()
    bare_log = directory / "bare.log"
    bare_argv = [
        sys.executable,
        "-m",
        "hookgate.loadtest.bare",
        "--host",
        HOST,
        "--port",
        str(bare_port),
        "--workers",
        "1",
    ]
    bare = processes.start(
        "bare", placement.pin(bare_argv, placement.server), bare_log, server_env({})
    )
    wait_until_serving(bare_port, bare, bare_log)
    print(f"bare: serving on port {bare_port}, measuring", flush=True)
    bare_measurement = measure("bare", bare_port, bare, None, context)
    processes.stop(bare, STOP_TIMEOUT_S)

    config = directory / "hookgate.toml"
    config.write_text(GATEWAY_CONFIG)
    gateway_port = free_port()
    gateway_log = directory / "hookgate.log"
    gateway_argv = [
        str(Path(sys.executable).with_name("hookgate")),
        "serve",
        "--config",
        str(config),
        "--host",
        HOST,
        "--port",
        str(gateway_port),
        "--workers",
        "1",
    ]
    environment = server_env({"REDIS_URL": redis_server.url, SECRET_VARIABLE: secret})
    gateway = processes.start(
        "hookgate",
        placement.pin(gateway_argv, placement.server),
        gateway_log,
        environment,
    )
    wait_until_serving(gateway_port, gateway, gateway_log)
    print(f"hookgate: serving on port {gateway_port}, measuring", flush=True)
    hookgate_measurement = measure(
        "hookgate", gateway_port, gateway, redis_server.process.pid, context
    )
    print(
        f"hookgate: worker PID {hookgate_measurement.worker_pid}"
        f" ({command_line(hookgate_measurement.worker_pid)[:80]})",
        flush=True,
    )

    report = Report(
        machine=machine_facts(),
        versions=tool_versions(),
        code=code,
        placement=placement.description,
        stream=STREAM,
        busy_before=busy_before,
        load=(
            f"{settings.describe()}, warm-up {args.warmup} s, measured"
            f" {args.duration} s per server, POST {PATH} with 1024-byte JSON"
            " bodies, one webhook-id per request, signed before each run"
        ),
        bare=bare_measurement,
        hookgate=hookgate_measurement,
    )
    if args.profile is not None:
        print("hookgate: profiling the worker with py-spy", flush=True)
        report.profiled, report.profile = profile_worker(
            f"http://{HOST}:{gateway_port}{PATH}",
            hookgate_measurement.worker_pid,
            hookgate_measurement.result.requests_per_second,
            processes,
            context,
        )
        report.profile_path = str(args.profile.resolve())

    # Stopping the gateway flushes what its batcher still holds.
    processes.stop(gateway, STOP_TIMEOUT_S)
    report.code_after = code_state()
    report.stream_entries = redis_server.client.xlen(STREAM)
    report.redis_commands = read_commandstats(redis_server.client)
    report.accepted_total = sum(run.accepted for run in report.hookgate_runs())
    report.log_levels, report.log_problems = read_log(gateway_log)
    redis_server.client.close()
    return report


@contextlib.contextmanager
def working_directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="hookgate-loadtest-") as name:
        yield Path(name)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raising here unwinds through the finally blocks that stop every process.
    print("terminated; stopping every process started", file=sys.stderr)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    placement = plan_placement()
    settings = WrkSettings(
        threads=args.threads, connections=args.connections, timeout_s=5
    )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    processes = ProcessGroup()
    with working_directory(args.workdir) as directory:
        print(f"placement: {placement.description}", flush=True)
        print(f"working directory: {directory}", flush=True)
        try:
            report = run(args, directory, placement, settings, processes)
        except (HarnessError, WrkError, redis.RedisError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; stopping every process started", file=sys.stderr)
            return 130
        finally:
            processes.stop_all()

    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(report), indent=2) + "\n")
    return 0 if all(passed for passed, _ in report.checks()) else 1


if __name__ == "__main__":
    sys.exit(main())
