"""Start Granian with the gateway application (``hookgate serve``)."""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces, Loops

from hookgate.config import load_config
from hookgate.gateway import worker_metrics
from hookgate.logs import logging_dictconfig

APP = "hookgate.gateway.app:create_app"


class ListenError(OSError):
    """Raised when the server cannot listen on the address it was given."""


def check_address(host: str, port: int) -> None:
    """Bind ``host``:``port`` once and release it, or raise :class:`ListenError`.

    Granian reports a port in use or a host name as a traceback of Python and
    Rust frames. This check turns both into one line. A process that takes the
    port between the check and Granian's own bind still gets Granian's traceback.
    """
    try:
        # Granian takes IP addresses only, not host names.
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ListenError(
            f"cannot listen on {host}:{port}: not an IP address; use one such as"
            " 127.0.0.1, 0.0.0.0 or ::1"
        ) from None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As Granian binds: a port held only by closed connections is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        if exc.errno == errno.EADDRINUSE:
            message += "; choose another port or stop the process that uses it"
        raise ListenError(message) from None


def run_granian(target: str, *, host: str, port: int, workers: int) -> None:
    """Serve the app factory ``target`` with Granian until it is stopped.

    ``hookgate serve`` and the load tests' baselines all start Granian here, so
    that the servers the bench compares differ only in their apps. Raises
    :class:`ListenError` when ``host``:``port`` cannot be bound.
    """
    check_address(host, port)
    Granian(
        target,
        factory=True,
        address=host,
        port=port,
        workers=workers,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        log_dictconfig=logging_dictconfig(),
        websockets=False,
        # A worker that crashes is replaced rather than stopping the gateway.
        respawn_failed_workers=True,
    ).serve()


def serve(config_path: str, *, host: str, port: int, workers: int) -> None:
    """Validate the config, then run Granian until it is stopped.

    The config is loaded here once so that a broken file stops start-up before any
    worker spawns; each worker then loads it again from ``HOOKGATE_CONFIG``.
    """
    load_config(config_path)
    os.environ["HOOKGATE_CONFIG"] = str(Path(config_path).resolve())
    created = None
    lock = None
    if workers > 1:
        # The workers sum their counters through this directory; a single worker
        # has nothing to sum. HOOKGATE_METRICS_DIR picks the directory.
        chosen = os.environ.get(worker_metrics.ENV)
        if chosen:
            directory = Path(chosen)
        else:
            directory = created = Path(tempfile.mkdtemp(prefix="hookgate-metrics-"))
        lock = worker_metrics.claim_directory(directory)
        os.environ[worker_metrics.ENV] = str(directory)
    else:
        os.environ.pop(worker_metrics.ENV, None)
    try:
        run_granian(APP, host=host, port=port, workers=workers)
    finally:
        if lock is not None:
            lock.close()
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
