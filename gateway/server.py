"""Start Granian with the gateway application (``hookgate serve``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces, Loops

from hookgate.config import load_config
from hookgate.gateway import worker_metrics
from hookgate.logs import logging_dictconfig

APP = "hookgate.gateway.app:create_app"


def run_granian(target: str, *, host: str, port: int, workers: int) -> None:
    """Serve the app factory ``target`` with Granian until it is stopped.

    ``hookgate serve`` and the load tests' baselines all start Granian here, so
    that the servers the bench compares differ only in their apps.
    """
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
