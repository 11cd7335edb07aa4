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
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import redis

from hookgate.loadtest._harness import (
    BUSY_WARNING_PERCENT,
    HOST,
    MIN_POOL,
    PATH,
    SECRET_VARIABLE,
    SOURCE_ID,
    STOP_TIMEOUT_S,
    STREAM,
    TENANT,
    Context,
    HarnessError,
    exit_on_sigterm,
    measure,
    read_commandstats,
    read_log,
    server_env,
    start_redis,
    tail,
    wait_until_serving,
    working_directory,
)
from hookgate.loadtest._processes import (
    Placement,
    ProcessGroup,
    command_line,
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

GATEWAY_CONFIG = f"""\
# Written by hookgate.loadtest.ingest_vs_bare. Gateway settings are the defaults.
[[sources]]
id = "{SOURCE_ID}"
tenant = "{TENANT}"
provider = "standard-webhooks"
secret_env = ["{SECRET_VARIABLE}"]
"""


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    placement = plan_placement()
    settings = WrkSettings(
        threads=args.threads, connections=args.connections, timeout_s=5
    )
    signal.signal(signal.SIGTERM, exit_on_sigterm)
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
