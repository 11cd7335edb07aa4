"""Events per second of one consumer process beside one gateway worker.

Run with ``.venv/bin/python -m hookgate.loadtest.consumer_vs_gateway``. One
invocation, against one private redis-server on a free loopback port:

1. **gateway**: ``hookgate serve --workers 1`` under wrk with pre-signed 1 KB
   Standard Webhooks requests, a warm-up then the measured run, exactly as
   :mod:`hookgate.loadtest.ingest_vs_bare` measures it. No consumer runs, so every
   entry the gateway writes stays in the ingest stream as a backlog.
2. **drain**: one ``hookgate consume`` process starts on that backlog, the real
   entries the gateway just wrote, or the newest N of them with
   ``--drain-entries N``. The harness times it from the process start until the
   group ``hookgate`` has lag 0 and 0 pending. The gateway stays idle meanwhile.
3. **concurrent**: a fresh consumer process runs while wrk drives the gateway, and
   the harness reads the group's backlog every second, to show whether it stays
   bounded or grows. After wrk stops, it times the catch-up.
4. optionally, **profile**: wrk refills a backlog with no consumer running, then
   py-spy records a new consumer while it drains.

It sends traffic only to 127.0.0.1 and never uses the default Redis port. Every
process it starts is stopped by PID when it finishes, fails or gets Ctrl-C, and
every wait is bounded by a timeout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis

from hookgate import keys
from hookgate.loadtest._backlog import (
    BacklogError,
    BacklogSampler,
    Drain,
    GroupState,
    growth_per_second,
    read_group,
    wait_until_drained,
)
from hookgate.loadtest._consumer_report import (
    DOWNSTREAM,
    ConcurrentResult,
    DrainResult,
    Report,
    format_report,
    read_consumer_log,
    to_json,
)
from hookgate.loadtest._harness import (
    BUSY_WARNING_PERCENT,
    HOST,
    PATH,
    SECRET_VARIABLE,
    SOURCE_ID,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    STREAM,
    TENANT,
    Context,
    HarnessError,
    RedisServer,
    measure,
    read_log,
    server_env,
    start_redis,
    tail,
    wait_until_serving,
    working_directory,
)
from hookgate.loadtest._processes import (
    CpuSample,
    CpuWindow,
    Placement,
    ProcessGroup,
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
    code_state,
    format_busy,
    machine_facts,
    tool_versions,
)
from hookgate.loadtest._requests import new_secret, write_pool
from hookgate.loadtest._wrk import WrkError, WrkResult, WrkSettings, run_wrk

DEAD_LETTERS = keys.dead_letter_stream(TENANT)
GROUP = keys.INGEST_GROUP
# Folders whose code the gateway and the consumer run.
MEASURED_FOLDERS = ("gateway", "fastpath", "hookgate", "consumers", "loadtest")

# Seconds between two backlog readings in the concurrent run.
SAMPLE_INTERVAL_S = 1.0
# The concurrent run's pool contains this many times what the gateway's measured
# rate predicts, because the gateway may run faster on its own core.
POOL_HEADROOM = 1.5
MIN_POOL = 50_000
GATEWAY_CONFIG = f"""\
# Written by hookgate.loadtest.consumer_vs_gateway. Gateway settings are the defaults.
[[sources]]
id = "{SOURCE_ID}"
tenant = "{TENANT}"
provider = "standard-webhooks"
secret_env = ["{SECRET_VARIABLE}"]

# Ingest entries stay untrimmed, so the final check can account for every entry:
# stream length = published + backlog + skipped.
[retention]
ingest_processed_s = 0
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hookgate.loadtest.consumer_vs_gateway",
        description=(
            "Measure accepted webhooks per second of one gateway worker, events"
            " per second of one consumer process draining a backlog, and whether"
            " that consumer keeps up while the gateway is under load."
        ),
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=10,
        help="length of the gateway's measured run, in seconds",
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="length of the warm-up, in seconds"
    )

    parser.add_argument(
        "--concurrent-duration",
        type=int,
        default=20,
        help="length of the run with the consumer and the gateway at once, seconds",
    )
    parser.add_argument(
        "--concurrent-core",
        choices=("client", "server"),
        default="client",
        help="core of the consumer in the concurrent run: 'client' shares the core"
        " of wrk and redis-server, 'server' the core of the gateway",
    )

    parser.add_argument(
        "--drain-entries",
        type=int,
        default=0,
        help="drain only the newest N entries the gateway wrote; the group starts"
        " past the older ones (default 0: drain them all)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=int,
        default=180,
        help="maximum wait for the drain, in seconds",
    )
    parser.add_argument(
        "--catch-up-timeout",
        type=int,
        default=30,
        help="maximum wait, after the concurrent run, for the consumer to catch up,"
        " in seconds",
    )

    parser.add_argument(
        "--connections", type=int, default=64, help="wrk connections (-c)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")

    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="also refill a backlog and record a draining consumer with py-spy,"
        " writing a speedscope file here",
    )
    parser.add_argument(
        "--profile-duration",
        type=int,
        default=10,
        help="length of the py-spy recording, in seconds",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="let py-spy sample native frames too (C, Cython, Rust)",
    )
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="let py-spy read the consumer's memory without pausing it",
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
    for name in (
        "duration",
        "warmup",
        "concurrent_duration",
        "drain_timeout",
        "catch_up_timeout",
        "connections",
        "threads",
        "profile_duration",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.drain_entries < 0:
        parser.error("--drain-entries must be 0 or more")
    return args


@dataclass
class Harness:
    """Everything one invocation started and the paths it writes to."""

    args: argparse.Namespace
    context: Context
    processes: ProcessGroup
    redis_server: RedisServer
    config: Path
    environment: dict[str, str]
    consumer_logs: list[Path] = field(default_factory=list)

    @property
    def placement(self) -> Placement:
        return self.context.placement

    def cores(self, side: str) -> str | None:
        """Return the ``taskset -c`` list of ``side``, "server" or "client"."""
        return self.placement.server if side == "server" else self.placement.client

    def core(self, side: str) -> str:
        cores = self.cores(side)
        return cores if cores is not None else "any"

    def start_consumer(self, name: str, side: str) -> subprocess.Popen[bytes]:
        """Start ``hookgate consume`` as consumer ``name`` on the ``side``'s core."""
        argv = [
            str(Path(sys.executable).with_name("hookgate")),
            "consume",
            "--config",
            str(self.config),
            "--name",
            name,
        ]
        log = self.context.directory / f"{name}.log"
        self.consumer_logs.append(log)
        return self.processes.start(
            name, self.placement.pin(argv, self.cores(side)), log, self.environment
        )

    def read(self) -> GroupState:
        return read_group(self.redis_server.client, STREAM, GROUP, DOWNSTREAM)

    def wait_for_consumer(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Wait until consumer ``name`` has logged ``consumer.started`` or read.

        The app logs ``consumer.started`` once its subscribers run. Redis 7.0 lists a
        consumer in ``XINFO CONSUMERS`` only after a read that returned entries, so
        that alone cannot tell when a consumer of an empty backlog is ready.
        """
        log = self.context.directory / f"{name}.log"
        deadline = time.monotonic() + START_TIMEOUT_S
        while name not in self.read().consumers:
            if '"consumer.started"' in log.read_text(errors="replace"):
                return
            if process.poll() is not None or time.monotonic() > deadline:
                raise HarnessError(f"consumer {name} did not start:\n{tail(log)}")
            time.sleep(0.05)

    def drain(
        self, process: subprocess.Popen[bytes], started_at: float, timeout_s: float
    ) -> Drain:
        """Wait until the backlog drains or ``timeout_s`` s after ``started_at``."""
        return wait_until_drained(
            self.redis_server.client,
            STREAM,
            GROUP,
            DOWNSTREAM,
            started_at=started_at,
            timeout_s=timeout_s,
            consumer_running=lambda: process.poll() is None,
        )


def run_drain(harness: Harness, gateway_rate: float) -> DrainResult:
    """Start one consumer on the gateway's idle core and time it over the backlog."""
    name = "loadtest-drain"
    print(f"drain: starting consumer {name}", flush=True)
    before = harness.read()
    first = CpuSample.take()
    started_at = time.monotonic()
    consumer = harness.start_consumer(name, "server")
    drain = harness.drain(consumer, started_at, harness.args.drain_timeout)
    last = CpuSample.take()
    percent = last.percent_since(first)
    wall = last.at - first.at
    me = os.getpid()
    own = [me, *descendants(me, last.processes)]
    cores = last.core_use_since(first)
    foreign = sum(use.busy for use in cores.values()) - sum(
        percent.get(pid, 0.0) for pid in own
    )

    after = drain.samples[-1]
    # Taskset replaces itself with the consumer, so the PID started is the consumer.
    pids = [consumer.pid, *descendants(consumer.pid, last.processes)]
    cpu_seconds = sum(percent.get(pid, 0.0) for pid in pids) * wall / 100
    harness.processes.stop(consumer, STOP_TIMEOUT_S)

    seconds = None if drain.drained_at is None else drain.drained_at - started_at
    first_entry = None
    if drain.first_progress_at is not None:
        first_entry = drain.first_progress_at - started_at
    result = DrainResult(
        consumer_core=harness.core("server"),
        backlog=before.backlog,
        seconds_to_first_entry=first_entry,
        seconds_to_drain=seconds,
        acknowledged=before.backlog - after.backlog,
        published=after.downstream_length - before.downstream_length,
        consumer_cpu_seconds=cpu_seconds,
        redis_cpu_percent=percent.get(harness.redis_server.process.pid, 0.0),
        cores=cores,
        foreign_percent=foreign,
    )
    if seconds is None:
        print(
            f"drain: not drained after {harness.args.drain_timeout} s,"
            f" {after.backlog} entries left",
            flush=True,
        )
    else:
        print(
            f"drain: {result.acknowledged} entries in {seconds:.1f} s,"
            f" {result.rate:,.0f} entries/s (gateway {gateway_rate:,.0f}/s)",
            flush=True,
        )
    return result


def run_concurrent(
    harness: Harness,
    gateway_url: str,
    gateway: subprocess.Popen[bytes],
    gateway_rate: float,
) -> ConcurrentResult:
    """Run wrk against the gateway while one consumer works, reading the backlog."""
    args, context = harness.args, harness.context
    name = "loadtest-concurrent"
    consumer = harness.start_consumer(name, args.concurrent_core)
    harness.wait_for_consumer(name, consumer)

    pool = context.directory / "concurrent.pool"
    size = math.ceil(gateway_rate * args.concurrent_duration * POOL_HEADROOM)
    write_pool(pool, context.secret, max(MIN_POOL, size))
    sampler = BacklogSampler(
        harness.redis_server.url, STREAM, GROUP, DOWNSTREAM, SAMPLE_INTERVAL_S
    )
    window = CpuWindow(start_after=1.5, length=max(args.concurrent_duration - 2, 1))
    print(
        f"concurrent: consumer {name} on core {harness.core(args.concurrent_core)},"
        f" wrk for {args.concurrent_duration} s",
        flush=True,
    )
    sampler.start()
    window.start()
    wrk_started = time.monotonic()
    try:
        result = run_wrk(
            gateway_url,
            pool,
            settings=context.settings,
            duration_s=args.concurrent_duration,
            placement=context.placement,
            output_path=context.directory / "concurrent.wrk",
        )
    finally:
        wrk_ended = time.monotonic()
        window.cancel()
        sampler.cancel()
        window.join()
        sampler.join()
    if sampler.error is not None:
        raise HarnessError(f"reading the backlog failed: {sampler.error}")

    drain = harness.drain(consumer, wrk_ended, args.catch_up_timeout)
    catch_up = None if drain.drained_at is None else drain.drained_at - wrk_ended

    percent = window.percent
    workers = descendants(gateway.pid)
    worker = max(workers, key=lambda pid: percent.get(pid, 0.0), default=gateway.pid)
    harness.processes.stop(consumer, STOP_TIMEOUT_S)

    during = [s for s in sampler.samples if wrk_started <= s.at <= wrk_ended]
    base = sampler.samples[0].downstream_length if sampler.samples else 0
    samples = [
        (s.at - wrk_started, s.lag, s.pending, s.downstream_length - base)
        for s in sampler.samples
    ]
    # wrk loads its pool in the first second, so the fit starts after it.
    fitted = [s for s in during if s.at - wrk_started >= 1.0]
    consumed = 0.0
    if len(fitted) >= 2:
        span = fitted[-1].at - fitted[0].at
        consumed = (fitted[-1].downstream_length - fitted[0].downstream_length) / span
    return ConcurrentResult(
        consumer_core=harness.core(args.concurrent_core),
        wrk=result,
        samples=samples,
        growth_per_second=growth_per_second(fitted),
        consumed_per_second=consumed,
        seconds_to_catch_up=catch_up,
        gateway_worker_cpu_percent=percent.get(worker, 0.0),
        consumer_cpu_percent=percent.get(consumer.pid, 0.0),
        redis_cpu_percent=percent.get(harness.redis_server.process.pid, 0.0),
        cores=window.cores,
        others=window.others(),
        foreign_percent=window.foreign_percent(),
    )


def run_profile(
    harness: Harness, gateway_url: str, drain_rate: float, gateway_rate: float
) -> tuple[WrkResult, ProfileSummary, str]:
    """Refill a backlog with no consumer running, then record one that drains it."""
    args, context = harness.args, harness.context
    binary = py_spy_binary()
    if binary is None:
        raise HarnessError(
            "py-spy is not installed; install it with .venv/bin/pip install py-spy"
        )
    # The backlog must outlast the recording even though the consumer starts up
    # first, so it is twice what the consumer drains in that time.
    needed = 2 * drain_rate * (args.profile_duration + 5)
    fill_s = max(2, math.ceil(needed / max(gateway_rate, 1.0)))
    pool = context.directory / "profile-fill.pool"
    write_pool(
        pool, context.secret, max(MIN_POOL, math.ceil(gateway_rate * fill_s * 1.5))
    )
    print(f"profile: refilling a backlog for {fill_s} s", flush=True)
    filled = run_wrk(
        gateway_url,
        pool,
        settings=context.settings,
        duration_s=fill_s,
        placement=context.placement,
        output_path=context.directory / "profile-fill.wrk",
    )

    name = "loadtest-profiled"
    consumer = harness.start_consumer(name, "server")
    harness.wait_for_consumer(name, consumer)
    output = args.profile.resolve()
    log = context.directory / "py-spy.log"
    print(
        f"profile: recording consumer {name} for {args.profile_duration} s", flush=True
    )
    spy = harness.processes.start(
        "py-spy",
        record_argv(
            binary,
            consumer.pid,
            output,
            args.profile_duration,
            context.placement,
            native=args.native,
            nonblocking=args.nonblocking,
        ),
        log,
    )
    try:
        spy.wait(timeout=args.profile_duration + STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"py-spy did not finish; see {log}") from None
    finally:
        harness.processes.stop(spy)
    if spy.returncode != 0 or not output.exists():
        raise HarnessError(f"py-spy failed with status {spy.returncode}:\n{tail(log)}")
    still_waiting = harness.read().backlog
    # The rest of the backlog stays for the final checks, which count it.
    harness.processes.stop(consumer, STOP_TIMEOUT_S)
    note = f"backlog when py-spy stopped: {still_waiting} entries" + (
        "" if still_waiting else "; the consumer idled for part of the recording"
    )
    return filled, summarize(output), note


def run(args: argparse.Namespace, directory: Path, processes: ProcessGroup) -> Report:
    placement = plan_placement()
    settings = WrkSettings(
        threads=args.threads, connections=args.connections, timeout_s=5
    )
    busy_before = machine_busy()
    if any(use.busy > BUSY_WARNING_PERCENT for use in busy_before.values()):
        print(
            "warning: other processes keep the machine busy"
            f" ({format_busy(busy_before)}); the figures will be low and noisy",
            flush=True,
        )
    code = code_state(MEASURED_FOLDERS)
    secret = new_secret()
    redis_server = start_redis(processes, directory, placement)
    context = Context(args, settings, placement, directory, secret)

    config = directory / "hookgate.toml"
    config.write_text(GATEWAY_CONFIG)
    environment = server_env({"REDIS_URL": redis_server.url, SECRET_VARIABLE: secret})
    harness = Harness(args, context, processes, redis_server, config, environment)

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
    gateway = processes.start(
        "hookgate",
        placement.pin(gateway_argv, placement.server),
        gateway_log,
        environment,
    )
    wait_until_serving(gateway_port, gateway, gateway_log)
    gateway_url = f"http://{HOST}:{gateway_port}{PATH}"

    print(f"gateway: serving on port {gateway_port}, measuring", flush=True)
    measured = measure(
        "hookgate", gateway_port, gateway, redis_server.process.pid, context
    )
    gateway_rate = measured.result.requests_per_second
    print(f"gateway: {gateway_rate:,.0f} accepted/s", flush=True)
    skipped = start_group_before_newest(redis_server.client, args.drain_entries)

    drain = run_drain(harness, gateway_rate)
    concurrent = run_concurrent(harness, gateway_url, gateway, gateway_rate)

    report = Report(
        machine=machine_facts(),
        versions={**tool_versions(), **consumer_versions()},
        code=code,
        placement=placement_lines(harness),
        load=(
            f"{settings.describe()}, warm-up {args.warmup} s, measured"
            f" {args.duration} s, concurrent {args.concurrent_duration} s,"
            f" POST {PATH} with 1024-byte JSON bodies, one webhook-id per request"
        ),
        busy_before=busy_before,
        gateway=measured,
        drain=drain,
        concurrent=concurrent,
        skipped=skipped,
    )
    if args.profile is not None:
        report.profiled, report.profile, note = run_profile(
            harness, gateway_url, drain.rate, gateway_rate
        )
        report.profile_path = f"{args.profile.resolve()} ({note})"

    processes.stop(gateway, STOP_TIMEOUT_S)
    report.code_after = code_state(MEASURED_FOLDERS)
    client = redis_server.client
    report.final_backlog = harness.read().backlog
    report.ingest_entries = client.xlen(STREAM)
    report.downstream_entries = client.xlen(DOWNSTREAM)
    report.dead_letters = client.xlen(DEAD_LETTERS)
    levels, report.gateway_log = read_log(gateway_log)
    report.log_levels = dict(levels)
    for log in harness.consumer_logs:
        consumer_levels, problems = read_consumer_log(log)
        report.consumer_log += problems
        for level, count in consumer_levels.items():
            report.log_levels[level] = report.log_levels.get(level, 0) + count
    client.close()
    return report


def start_group_before_newest(client: redis.Redis, count: int) -> int:
    """Create the consumer group so that only the newest ``count`` entries are unread.

    Returns how many older entries the group starts past. Creates nothing and
    returns 0 when ``count`` is 0 or not below the stream's length, and the
    consumer then creates the group at the first entry.
    """
    length = client.xlen(STREAM)
    if count == 0 or count >= length:
        return 0
    newest = client.xrevrange(STREAM, count=count + 1)
    if not newest or newest[-1][0] is None:
        raise HarnessError(f"{STREAM} returned no entries to start the group at")
    skipped = length - count
    # ENTRIESREAD keeps the group's lag exact from the start.
    client.xgroup_create(STREAM, GROUP, id=newest[-1][0], entries_read=skipped)
    return skipped


def consumer_versions() -> dict[str, str]:
    import importlib.metadata

    return {
        package: importlib.metadata.version(package)
        for package in ("faststream", "redis")
    }


def placement_lines(harness: Harness) -> list[str]:
    if harness.placement.server is None:
        return [harness.placement.description]
    server, client = harness.core("server"), harness.core("client")
    concurrent = harness.core(harness.args.concurrent_core)
    return [
        f"gateway (Granian main and worker): core {server} throughout",
        f"redis-server and wrk: core {client} throughout; py-spy on core {client}",
        f"drain: consumer on core {server}, alone there (the gateway is idle)",
        f"concurrent: consumer on core {concurrent}, sharing it with the"
        + (" gateway" if concurrent == server else " wrk and redis-server"),
    ]


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raising here unwinds through the finally blocks that stop every process.
    print("terminated; stopping every process started", file=sys.stderr)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    processes = ProcessGroup()
    with working_directory(args.workdir) as directory:
        print(f"working directory: {directory}", flush=True)
        try:
            report = run(args, directory, processes)
        except (HarnessError, BacklogError, WrkError, redis.RedisError) as exc:
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
