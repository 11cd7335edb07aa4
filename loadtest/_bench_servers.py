"""Servers the bench measures, and what it reads from them besides wrk's figures.

This module starts the bare baseline, the gateway with its writes confirmed in
memory, ``hookgate serve`` (optionally with tracing) and the FastAPI peer, each
pinned like the other load tests. It reads the gateway's flush and accept
counters from ``/metrics``, and runs a local OTLP/HTTP sink that takes the spans
of the tracing runs and discards them.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import http.server
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from hookgate.loadtest._harness import (
    HOST,
    STOP_TIMEOUT_S,
    server_env,
    wait_until_serving,
)
from hookgate.loadtest._processes import Placement, ProcessGroup, free_port

FLUSHES = "hookgate_flush_batch_size_count"
ACCEPTED = "hookgate_events_accepted_total"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """Return a server environment without the caller's OpenTelemetry settings,
    so only the tracing runs trace."""
    env = {k: v for k, v in server_env({}).items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


def _start(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    processes: ProcessGroup,
    placement: Placement,
    directory: Path,
) -> Server:
    log_path = directory / f"{name}.log"
    process = processes.start(
        name, placement.pin(argv, placement.server), log_path, env
    )
    wait_until_serving(port, process, log_path)
    return Server(name, process, port, log_path)


def start_bare(
    processes: ProcessGroup,
    placement: Placement,
    directory: Path,
    *,
    batch_io_threads: bool = False,
) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "hookgate.loadtest.bare", "--host", HOST]
    argv += ["--port", str(port), "--workers", "1"]
    if batch_io_threads:
        argv.append("--batch-io-threads")
    return _start("bare", argv, clean_env({}), port, processes, placement, directory)


def start_gateway(
    name: str,
    config: Path,
    env: dict[str, str],
    processes: ProcessGroup,
    placement: Placement,
    directory: Path,
    *,
    nowrite: bool = False,
) -> Server:
    """Start ``hookgate serve --workers 1`` with ``env`` added to a clean one.

    With ``nowrite``, start :mod:`hookgate.loadtest.nowrite` instead, which
    confirms writes in memory.
    """
    port = free_port()
    if nowrite:
        argv = [sys.executable, "-m", "hookgate.loadtest.nowrite"]
    else:
        hookgate = str(Path(sys.executable).with_name("hookgate"))
        argv = [hookgate, "serve", "--workers", "1"]
    argv += ["--config", str(config), "--host", HOST, "--port", str(port)]
    return _start(name, argv, clean_env(env), port, processes, placement, directory)


def start_fastapi(
    redis_url: str, processes: ProcessGroup, placement: Placement, directory: Path
) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "hookgate.loadtest.fastapi_peer", "--host", HOST]
    argv += ["--port", str(port), "--redis-url", redis_url]
    return _start("fastapi", argv, clean_env({}), port, processes, placement, directory)


def stop(server: Server, processes: ProcessGroup) -> None:
    processes.stop(server.process, STOP_TIMEOUT_S)


def scrape_counters(port: int) -> dict[str, float]:
    """Return the flush count and the accepted events (all tenants) of the
    gateway on ``port``, read from its ``/metrics``."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    counters = {FLUSHES: 0.0, ACCEPTED: 0.0}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        metric = name.split("{", 1)[0]
        if metric in counters:
            counters[metric] += float(value)
    return counters


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        sink: OtlpSink = self.server  # type: ignore[assignment]
        sink.requests += 1
        sink.bytes += length
        # An empty ExportTraceServiceResponse is a zero-length protobuf message.
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class OtlpSink(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP exports on 127.0.0.1 and drops them, counting bytes.

    The tracing runs export here rather than to a closed port: a refused export
    makes the SDK back off and drop spans, so the gateway would skip the
    serialization and sending that a real collector costs it.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), _SinkHandler)
        self.requests = 0
        self.bytes = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def tracing_env(endpoint: str, sampler: str | None) -> dict[str, str]:
    """Return the variables that turn tracing on, exporting to ``endpoint``.

    ``sampler`` becomes ``OTEL_TRACES_SAMPLER``. None leaves that unset, so
    hookgate uses its default sampler (parent-based, trace-id ratio 0.001).
    """
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    if sampler is not None:
        env["OTEL_TRACES_SAMPLER"] = sampler
    return env
