"""The bench's macro runs: each configuration under wrk, then the open-model run.

One private redis-server serves every run. Each configuration gets a warm-up and
a measured wrk run through :func:`hookgate.loadtest._harness.measure`; the
open-model run offers half of hookgate's measured rate with
:mod:`hookgate.loadtest.openload` in a child process pinned to the load core.
Servers are stopped by PID through the caller's :class:`ProcessGroup`.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from hookgate.loadtest import _bench_servers as servers
from hookgate.loadtest._bench_load import (
    OPEN_SOURCE,
    OPEN_STREAM,
    MixPool,
    Secrets,
    gateway_config,
)
from hookgate.loadtest._harness import (
    HOST,
    SECRET_VARIABLE,
    Context,
    HarnessError,
    RedisServer,
    measure,
    read_commandstats,
    start_redis,
)
from hookgate.loadtest._processes import CpuWindow, Placement, ProcessGroup
from hookgate.loadtest._report import Measurement
from hookgate.loadtest._wrk import WrkSettings

RAW_SCRIPT = Path(__file__).resolve().parent / "wrk" / "raw_requests.lua"
# Mix requests carry up to 50 Graph items, so a smaller warm-up pool suffices.
MIX_WARMUP_RATE_GUESS = 20_000
CONNECTIONS = 64
OPEN_TIMEOUT_S = 120
TRACING_ALWAYS_ON = "parentbased_always_on"


@dataclass
class Durations:
    warmup_s: int
    measured_s: int
    open_s: int
    # Pairs of tracing-off and default-sampler runs; see MacroBench._tracing.
    tracing_pairs: int = 1


@dataclass
class MacroResults:
    """Figures of the macro runs, for results.json and the budget."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    latencies_us: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _run_summary(
    measurement: Measurement, events_per_request: float = 1.0
) -> dict[str, Any]:
    result = measurement.result
    return {
        "requests_per_second": result.requests_per_second,
        "events_per_second": result.requests_per_second * events_per_request,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "responses": result.requests,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "non_2xx": result.non_2xx + measurement.warmup.non_2xx,
        "socket_errors": sum(result.socket_errors.values()),
        "worker_cpu_percent": measurement.worker_cpu_percent,
        "redis_cpu_percent": measurement.redis_cpu_percent,
        "foreign_cpu_percent": measurement.foreign_percent,
    }


def stream_event_ids(client: redis.Redis, stream: str) -> collections.Counter[str]:
    """Count the entries of ``stream`` by ``event_id``, read in pages."""
    found: collections.Counter[str] = collections.Counter()
    start = "-"
    while True:
        page: Any = client.xrange(stream, min=start, count=10_000)
        if not page:
            return found
        for _, fields in page:
            found[fields[b"event_id"].decode()] += 1
        last = page[-1][0].decode()
        start = "(" + last


class MacroBench:
    """Runs the selected configurations in order and collects their figures."""

    def __init__(
        self,
        steps: set[str],
        durations: Durations,
        max_batch: int | None,
        directory: Path,
        placement: Placement,
        processes: ProcessGroup,
        *,
        batch_io_threads: bool = False,
    ) -> None:
        self.steps = steps
        self.batch_io_threads = batch_io_threads
        self.durations = durations
        self.directory = directory
        self.placement = placement
        self.processes = processes
        self.secrets = Secrets.new()
        self.config = directory / "hookgate.toml"
        self.config.write_text(
            gateway_config(max_batch=max_batch, batch_io_threads=batch_io_threads)
        )
        self.results = MacroResults()
        self.redis: RedisServer | None = None
        args = argparse.Namespace(
            warmup=durations.warmup_s, duration=durations.measured_s
        )
        settings = WrkSettings(threads=1, connections=CONNECTIONS, timeout_s=5)
        self.context = Context(
            args, settings, placement, directory, self.secrets.standard
        )

    def run(self) -> MacroResults:
        redis_server = start_redis(self.processes, self.directory, self.placement)
        self.redis = redis_server
        try:
            self._step("bare", self._bare)
            self._step("nowrite", self._nowrite)
            self._step("hookgate", lambda: self._hookgate(redis_server))
            self._step("tracing", self._tracing)
            self._step("fastapi", lambda: self._fastapi(redis_server))
            self.results.runs["redis_commands"] = {
                command.name: {"calls": command.calls, "usec": command.usec_per_call}
                for command in read_commandstats(redis_server.client, top=8)
            }
        finally:
            redis_server.client.close()
        self._derive()
        return self.results

    def _step(self, name: str, action: Callable[[], None]) -> None:
        # The mix and the open-model run use the hookgate step's gateway, and the
        # open-model run offers half its rate, so they bring it along.
        wanted = {"hookgate": {"hookgate", "mix", "open"}}.get(name, {name})
        if not wanted & self.steps:
            return
        print(f"bench: {name}", flush=True)
        try:
            action()
        except (
            HarnessError,
            OSError,
            redis.RedisError,
            RuntimeError,
            subprocess.SubprocessError,
        ) as exc:
            self.results.errors.append(f"{name}: {exc}")
            print(f"bench: {name} failed: {exc}", file=sys.stderr, flush=True)

    def _measure(self, name: str, server: servers.Server) -> dict[str, Any]:
        self._empty_redis()
        writes = name not in ("bare", "hookgate_nowrite")
        redis_pid = (
            self.redis.process.pid if writes and self.redis is not None else None
        )
        measurement = measure(
            name, server.port, server.process, redis_pid, self.context
        )
        summary = _run_summary(measurement)
        self.results.runs[name] = summary
        self.results.metrics[f"throughput.{name}"] = summary["requests_per_second"]
        return summary

    def _bare(self) -> None:
        bare = servers.start_bare(
            self.processes,
            self.placement,
            self.directory,
            batch_io_threads=self.batch_io_threads,
        )
        try:
            self._measure("bare", bare)
        finally:
            servers.stop(bare, self.processes)

    def _nowrite(self) -> None:
        server = servers.start_gateway(
            "nowrite",
            self.config,
            self.secrets.environment(),
            self.processes,
            self.placement,
            self.directory,
            nowrite=True,
        )
        try:
            self._measure("hookgate_nowrite", server)
        finally:
            servers.stop(server, self.processes)

    def _gateway(self, name: str, env: dict[str, str]) -> servers.Server:
        assert self.redis is not None
        env = {"REDIS_URL": self.redis.url, **self.secrets.environment(), **env}
        return servers.start_gateway(
            name, self.config, env, self.processes, self.placement, self.directory
        )

    def _hookgate(self, redis_server: RedisServer) -> None:
        gateway = self._gateway("hookgate", {})
        try:
            if self.steps & {"hookgate", "open", "tracing"}:
                before = servers.scrape_counters(gateway.port)
                self._measure("hookgate", gateway)
                after = servers.scrape_counters(gateway.port)
                flushes = after[servers.FLUSHES] - before[servers.FLUSHES]
                events = after[servers.ACCEPTED] - before[servers.ACCEPTED]
                metrics = self.results.metrics
                metrics["redis.flushes"] = flushes
                metrics["redis.events"] = events
                if events:
                    metrics["redis.round_trips_per_event"] = flushes / events
            # The open-model run goes before the mix, whose Graph collections
            # make Redis's data set, and so its AOF rewrites, several times larger.
            if "open" in self.steps and "hookgate" in self.results.runs:
                self._open(gateway, redis_server)
            if "mix" in self.steps:
                self._mix(gateway)
        finally:
            servers.stop(gateway, self.processes)

    def _mix(self, gateway: servers.Server) -> None:
        pool = MixPool(self.secrets, f"{HOST}:{gateway.port}")
        assert self.redis is not None
        self._empty_redis()
        measurement = measure(
            "hookgate_mix",
            gateway.port,
            gateway.process,
            self.redis.process.pid,
            self.context,
            pool_writer=pool,
            script=RAW_SCRIPT,
            warmup_rate_guess=MIX_WARMUP_RATE_GUESS,
        )
        summary = _run_summary(measurement, pool.events_per_request)
        summary["events_per_request"] = pool.events_per_request
        self.results.runs["hookgate_mix"] = summary
        self.results.metrics["throughput.hookgate_mix"] = summary["requests_per_second"]
        self.results.metrics["events.hookgate_mix"] = summary["events_per_second"]

    def _open(self, gateway: servers.Server, redis_server: RedisServer) -> None:
        self._empty_redis()
        rate = self.results.runs["hookgate"]["requests_per_second"] / 2
        output = self.directory / "openload.json"
        argv = [sys.executable, "-m", "hookgate.loadtest.openload", "--host", HOST]
        argv += ["--port", str(gateway.port), "--source", OPEN_SOURCE]
        argv += ["--secret-env", SECRET_VARIABLE, "--rate", f"{rate:.0f}"]
        argv += ["--duration", str(self.durations.open_s)]
        argv += ["--connections", str(CONNECTIONS), "--output", str(output)]
        env = servers.clean_env({SECRET_VARIABLE: self.secrets.standard})
        # The generator builds and signs its requests for about a second first.
        window = CpuWindow(start_after=2, length=max(self.durations.open_s - 2, 1))
        window.start()
        try:
            with (self.directory / "openload.log").open("wb") as log:
                subprocess.run(
                    self.placement.pin(argv, self.placement.client),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=OPEN_TIMEOUT_S,
                    check=False,
                )
        finally:
            window.cancel()
            window.join()
        if not output.exists():
            raise HarnessError(
                f"openload wrote no results; see {self.directory / 'openload.log'}"
            )

        document = json.loads(output.read_text())
        summary = document["summary"]
        # The gateway responds 202 only after Redis confirmed the entry, so the
        # stream is complete once the last response arrived.
        stored = stream_event_ids(redis_server.client, OPEN_STREAM)
        missing = [i for i in document["accepted_ids"] if i not in stored]
        summary["missing_events"] = len(missing)
        summary["missing_examples"] = missing[:5]
        # Every request carries its own webhook-id, so an event written twice
        # would show as one event id on two entries.
        duplicates = sum(count - 1 for count in stored.values())
        summary["duplicate_entries"] = duplicates
        summary["foreign_cpu_percent"] = window.foreign_percent()

        self.results.runs["open"] = summary
        self.results.latencies_us = document["latencies_us"]
        failed = (
            summary["non_2xx"] + summary["unfinished"] + summary["connection_errors"]
        )
        self.results.metrics.update(
            {
                "open.offered_rate": summary["offered_rate"],
                "open.p50_ms": summary["p50_ms"],
                "open.p99_ms": summary["p99_ms"],
                "open.p99_9_ms": summary["p99_9_ms"],
                "open.non_2xx": failed,
                "open.missing_events": len(missing),
                "open.duplicate_entries": duplicates,
                "open.missed_schedule": summary["missed_schedule"],
            }
        )

    def _tracing(self) -> None:
        """Measure tracing's cost in pairs of runs, each beside an untraced one.

        Throughput on this machine drifts by 10 % or more within minutes, more
        than the 5 % being measured, so the default sampler is not compared with
        the hookgate run made minutes earlier. Each pair runs a gateway without
        tracing and one with the default sampler back to back, alternating which
        goes first, and the cost is the median of the pairs' losses.
        """
        with servers.OtlpSink() as sink:
            off = self._gateway("tracing_off", {})
            default = self._gateway(
                "tracing_default", servers.tracing_env(sink.endpoint, None)
            )
            try:
                pairs = [
                    self._tracing_pair(index, off, default)
                    for index in range(self.durations.tracing_pairs)
                ]
            finally:
                servers.stop(default, self.processes)
            self._record_pairs(pairs)

            try:
                always_on = self._gateway(
                    "tracing_always_on",
                    servers.tracing_env(sink.endpoint, TRACING_ALWAYS_ON),
                )
                try:
                    self._measure("tracing_always_on", always_on)
                    # Beside an untraced run of its own, as each pair is.
                    self._measure("tracing_always_on_off", off)
                finally:
                    servers.stop(always_on, self.processes)
            finally:
                servers.stop(off, self.processes)
            self.results.runs["otlp_sink"] = {
                "requests": sink.requests,
                "bytes": sink.bytes,
            }

    def _tracing_pair(
        self, index: int, off: servers.Server, default: servers.Server
    ) -> dict[str, float]:
        order = [("off", off), ("default", default)]
        if index % 2:
            order.reverse()
        rates: dict[str, float] = {}
        for label, server in order:
            summary = self._measure(f"tracing_{label}_{index}", server)
            rates[label] = summary["requests_per_second"]
        return {
            "off": rates["off"],
            "default": rates["default"],
            "loss": 1 - rates["default"] / rates["off"],
        }

    def _record_pairs(self, pairs: list[dict[str, float]]) -> None:
        runs = self.results.runs
        self.results.metrics["tracing.loss_default"] = statistics.median(
            pair["loss"] for pair in pairs
        )
        runs["tracing_pairs"] = {"pairs": pairs}
        # The report's tables show one run per configuration: the pair whose loss
        # is the median.
        middle = sorted(range(len(pairs)), key=lambda i: pairs[i]["loss"])[
            (len(pairs) - 1) // 2
        ]
        runs["tracing_default"] = runs[f"tracing_default_{middle}"]
        runs["tracing_off"] = runs[f"tracing_off_{middle}"]
        self.results.metrics["throughput.tracing_default"] = pairs[middle]["default"]
        self.results.metrics["throughput.tracing_off"] = pairs[middle]["off"]

    def _empty_redis(self) -> None:
        # Every run starts from an empty database. When only the stream was
        # deleted, the earlier runs' seen keys stayed, and Redis was slower in
        # the runs late in a bench. A short bench's default-sampler run then lost
        # 21 to 33 % to the untraced run before it, against 1 to 3 % alone. An empty
        # stream also keeps the runs below max_stream_length, past which the
        # gateway responds with 429.
        if self.redis is not None:
            self.redis.client.flushdb()

    def _fastapi(self, redis_server: RedisServer) -> None:
        peer = servers.start_fastapi(
            redis_server.url, self.processes, self.placement, self.directory
        )
        try:
            self._measure("fastapi", peer)
        finally:
            servers.stop(peer, self.processes)

    def _derive(self) -> None:
        metrics = self.results.metrics
        always_on = metrics.get("throughput.tracing_always_on")
        untraced = metrics.get("throughput.tracing_always_on_off")
        if always_on is not None and untraced:
            metrics["tracing.loss_always_on"] = 1 - always_on / untraced
        bare = metrics.get("throughput.bare")
        nowrite = metrics.get("throughput.hookgate_nowrite")
        if nowrite is not None and bare:
            metrics["ratio.hookgate_nowrite_vs_bare"] = nowrite / bare
        hookgate = metrics.get("throughput.hookgate")
        if hookgate is None:
            return
        if nowrite:
            metrics["ratio.hookgate_vs_nowrite"] = hookgate / nowrite
        if "throughput.bare" in metrics:
            metrics["ratio.hookgate_vs_bare"] = hookgate / metrics["throughput.bare"]
        if "throughput.fastapi" in metrics:
            metrics["ratio.hookgate_vs_fastapi"] = (
                hookgate / metrics["throughput.fastapi"]
            )
