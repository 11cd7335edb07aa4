"""The batch_io_threads setting: every worker thread but the main one in SCHED_BATCH."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hookgate.tests.conftest import TEST_CONFIG, RedisServer, start_gateway

# Starts two threads, moves one to SCHED_IDLE, then calls batch_threads and
# prints each thread's policy after it.
SCRIPT = """
import os, threading
from hookgate.gateway.threads import batch_threads

stop = threading.Event()
plain = threading.Thread(target=stop.wait)
idle = threading.Thread(target=stop.wait)
plain.start()
idle.start()
os.sched_setscheduler(idle.native_id, os.SCHED_IDLE, os.sched_param(0))
moved = batch_threads(threading.get_native_id())
print(moved)
print(os.sched_getscheduler(threading.get_native_id()))
print(os.sched_getscheduler(plain.native_id))
print(os.sched_getscheduler(idle.native_id))
stop.set()
"""


def test_moves_other_threads_only() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    moved, main, plain, idle = (int(line) for line in completed.stdout.split())

    assert moved == 1
    assert main == os.SCHED_OTHER
    assert plain == os.SCHED_BATCH
    assert idle == os.SCHED_IDLE


def worker_policies(server_pid: int) -> tuple[int, list[int]]:
    """Return the policies of the server's Granian worker: main thread, others."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == server_pid:
            workers.append(int(entry.name))
    assert len(workers) == 1, workers
    (worker,) = workers
    others = [
        os.sched_getscheduler(int(thread.name))
        for thread in Path(f"/proc/{worker}/task").iterdir()
        if int(thread.name) != worker
    ]
    return os.sched_getscheduler(worker), others


@pytest.mark.parametrize("enabled", [True, False])
def test_gateway_worker_threads(
    enabled: bool, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = TEST_CONFIG.replace(
        "[gateway]\n", f"[gateway]\nbatch_io_threads = {str(enabled).lower()}\n", 1
    )
    gateway = start_gateway(tmp_path, redis_server.url, config)
    try:
        # Granian starts its threads once it serves, and the worker checks every
        # second, so the policies are read after a request and two checks.
        httpx.get(f"{gateway.url}/healthz", timeout=5)
        time.sleep(2.5)
        main, others = worker_policies(gateway.process.pid)
    finally:
        gateway.stop()

    assert main == os.SCHED_OTHER
    assert others, "found no thread besides the worker's main thread"
    expected = os.SCHED_BATCH if enabled else os.SCHED_OTHER
    assert all(policy == expected for policy in others), others
