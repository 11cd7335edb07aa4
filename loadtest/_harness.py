"""Scaffolding shared by the load tests: Redis, servers, wrk runs and their logs.

:mod:`hookgate.loadtest.ingest_vs_bare`, :mod:`hookgate.loadtest.consumer_vs_gateway`
and :mod:`hookgate.loadtest.bench` start their processes and measure them through
this module. It sends traffic only to 127.0.0.1 and never uses the default Redis
port. Every process it starts belongs to the caller's :class:`ProcessGroup`, which
stops it by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from hookgate import keys
from hookgate.loadtest._processes import (
    CpuWindow,
    Placement,
    ProcessGroup,
    descendants,
    free_port,
)
from hookgate.loadtest._report import Measurement, RedisCommand
from hookgate.loadtest._requests import write_pool
from hookgate.loadtest._wrk import SCRIPT, WrkSettings, run_wrk

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

PoolWriter = Callable[[Path, int], None]
"""Writes a request pool of a given size for a wrk script."""


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
        # Every run empties its stream, so the AOF only grows, and Redis rewrote
        # it every few seconds: a fork and a full write on the core that wrk and
        # redis-server share, at moments that differed from run to run. The
        # writes and their fsync stay; only the compaction is off.
        "--auto-aof-rewrite-percentage",
        "0",
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
    *,
    pool_writer: PoolWriter | None = None,
    script: Path = SCRIPT,
    warmup_rate_guess: int = WARMUP_RATE_GUESS,
) -> Measurement:
    """Warm up and measure one server with wrk, sampling CPU use meanwhile.

    ``pool_writer`` writes the requests of one run for ``script``; by default they
    are Standard Webhooks requests signed with the context's secret.
    """
    args, settings = context.args, context.settings
    placement, directory, secret = context.placement, context.directory, context.secret
    if pool_writer is None:

        def pool_writer(path: Path, count: int) -> None:
            write_pool(path, secret, count)

    url = f"http://{HOST}:{port}{PATH}"
    pool = directory / f"{name}-warmup.pool"
    pool_writer(pool, args.warmup * warmup_rate_guess)
    warmup = run_wrk(
        url,
        pool,
        script=script,
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
    pool_writer(pool, size)

    # The window skips wrk's first second (pool loading) and its last one.
    window = CpuWindow(start_after=1.5, length=max(args.duration - 2, 1))
    window.start()
    try:
        result = run_wrk(
            url,
            pool,
            script=script,
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


@contextlib.contextmanager
def working_directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="hookgate-loadtest-") as name:
        yield Path(name)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raising here unwinds through the finally blocks that stop every process.
    print("terminated; stopping every process started", file=sys.stderr)
    raise SystemExit(128 + signum)
