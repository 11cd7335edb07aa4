"""Counters summed over Granian workers: snapshots, their sum, and a real gateway."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from structlog.testing import capture_logs

from hookgate import metrics
from hookgate.gateway import worker_metrics
from hookgate.gateway.worker_metrics import HistogramSnapshot, Snapshot, SourceSnapshot
from hookgate.tests.conftest import Process, RedisServer, start_gateway
from hookgate.tests.gateway.helpers import entry_count, standard_headers

from .test_metrics import samples

SIZES = len(metrics.FLUSH_SIZE_BOUNDS) + 1
SECONDS = len(metrics.FLUSH_SECONDS_BOUNDS) + 1


def snapshot(
    pid: int, accepted: int, *, waiting: int = 0, size_bucket: int = 0
) -> Snapshot:
    sizes = [0] * SIZES
    sizes[size_bucket] = 1
    return Snapshot(
        pid=pid,
        sources={
            "acme-mail": SourceSnapshot(
                "acme",
                "standard-webhooks",
                accepted,
                {202: accepted, 401: 1},
                duplicates=pid,
            )
        },
        no_source={404: 2},
        rejections={"invalid_signature": 1},
        flush_sizes=HistogramSnapshot(sizes, float(size_bucket)),
        flush_seconds=HistogramSnapshot([0] * SECONDS, 0.0),
        waiting=waiting,
    )


class TestMerge:
    def test_counters_add_up(self) -> None:
        merged = worker_metrics.merge(
            [snapshot(1, 3, size_bucket=2), snapshot(2, 4, size_bucket=5)],
            alive=lambda pid: True,
        )

        source = merged.sources["acme-mail"]
        assert source.accepted == 7
        assert source.duplicates == 3
        assert source.statuses == {202: 7, 401: 2}
        assert merged.no_source.statuses == {404: 4}
        assert merged.rejections == {"invalid_signature": 2}
        assert merged.flush_sizes.counts[2] == 1
        assert merged.flush_sizes.counts[5] == 1
        assert merged.flush_sizes.sum == 7.0

    def test_stopped_worker_keeps_counters(self) -> None:
        # Totals must not drop when Granian replaces a worker, but the entries
        # that a stopped worker had waiting are gone.
        merged = worker_metrics.merge(
            [snapshot(1, 3, waiting=5), snapshot(2, 4, waiting=6)],
            alive=lambda pid: pid == 2,
        )

        assert merged.sources["acme-mail"].accepted == 7
        assert merged.waiting == 6

    def test_histogram_of_other_bounds_skipped(self) -> None:
        odd = Snapshot(
            pid=1,
            sources={},
            no_source={},
            rejections={},
            flush_sizes=HistogramSnapshot([1, 1], 3.0),
            flush_seconds=HistogramSnapshot([0] * SECONDS, 0.0),
            waiting=0,
        )

        merged = worker_metrics.merge([odd, snapshot(2, 1)], alive=lambda pid: True)

        assert sum(merged.flush_sizes.counts) == 1


class TestSnapshotFiles:
    def test_written_snapshot_reads_back(self, tmp_path: Path) -> None:
        worker_metrics.write(tmp_path, snapshot(41, 3))

        assert list(worker_metrics.read_all(tmp_path)) == [snapshot(41, 3)]
        assert not list(tmp_path.glob("*.partial"))

    def test_unreadable_snapshot_skipped(self, tmp_path: Path) -> None:
        worker_metrics.write(tmp_path, snapshot(41, 3))
        (tmp_path / "worker-42-0.metrics.json").write_text("{not json")

        with capture_logs() as logs:
            found = list(worker_metrics.read_all(tmp_path))

        assert [item.pid for item in found] == [41]
        assert [line["event"] for line in logs] == ["metrics.snapshot_unreadable"]

    def test_reused_pid_keeps_both(self, tmp_path: Path) -> None:
        # A new worker can reuse a dead worker's PID, and both counts must stay.
        worker_metrics.write(tmp_path, snapshot(41, 3), started_ns=1)
        worker_metrics.write(tmp_path, snapshot(41, 4), started_ns=2)

        merged = worker_metrics.merge(
            worker_metrics.read_all(tmp_path), alive=lambda pid: True
        )

        assert merged.sources["acme-mail"].accepted == 7

    def test_earlier_run_removed(self, tmp_path: Path) -> None:
        worker_metrics.write(tmp_path, snapshot(41, 3))
        other = tmp_path / "notes.json"
        other.write_text("{}")

        lock = worker_metrics.claim_directory(tmp_path)
        lock.close()

        assert list(worker_metrics.read_all(tmp_path)) == []
        assert other.exists()

    def test_second_server_refused(self, tmp_path: Path) -> None:
        lock = worker_metrics.claim_directory(tmp_path)
        try:
            with pytest.raises(worker_metrics.MetricsDirError, match="another"):
                worker_metrics.claim_directory(tmp_path)
        finally:
            lock.close()

        # Once the first server stops, the directory is free again.
        worker_metrics.claim_directory(tmp_path).close()

    def test_file_in_place_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "metrics"
        path.write_text("not a directory")

        with pytest.raises(worker_metrics.MetricsDirError, match="cannot use"):
            worker_metrics.claim_directory(path)


def start_two_workers(
    redis_server: RedisServer, tmp_path: Path
) -> tuple[Process, Path]:
    """Start a two-worker gateway and return it with its snapshot directory."""
    metrics_dir = tmp_path / "metrics"
    process = start_gateway(
        tmp_path,
        redis_server.url,
        workers=2,
        env={worker_metrics.ENV: str(metrics_dir)},
    )
    return process, metrics_dir


def post_signed(url: str, msg_id: str) -> int:
    # A new connection per request, so that the kernel spreads them over workers.
    body = json.dumps({"type": "invoice.paid", "id": msg_id}).encode()
    response = httpx.post(
        f"{url}/hooks/acme-mail",
        content=body,
        headers=standard_headers(body, msg_id=msg_id),
        timeout=10,
    )
    return response.status_code


class TestTwoWorkers:
    @pytest.fixture
    def gateway_url(
        self,
        redis_server: RedisServer,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> Iterator[tuple[str, Path]]:
        process, metrics_dir = start_two_workers(redis_server, tmp_path)
        try:
            yield process.url, metrics_dir
        finally:
            process.stop()

    def test_every_scrape_counts_both(
        self, gateway_url: tuple[str, Path], redis_client: redis.Redis
    ) -> None:
        url, metrics_dir = gateway_url
        sent = 40
        statuses = [post_signed(url, f"msg_workers_{index}") for index in range(sent)]
        assert statuses == [202] * sent
        assert entry_count(redis_client) == sent
        # Each worker writes its snapshot once a second.
        time.sleep(worker_metrics.SNAPSHOT_INTERVAL_S * 2)

        accepted = set()
        key = ("hookgate_events_accepted_total", (("tenant", "acme"),))
        for _ in range(8):
            page = httpx.get(f"{url}/metrics", timeout=10).text
            accepted.add(samples(page)[key])

        assert accepted == {sent}
        # Both workers took requests, or one worker's own counters would pass.
        shares = [
            item.sources["acme-mail"].accepted
            for item in worker_metrics.read_all(metrics_dir)
        ]
        assert len(shares) == 2
        assert min(shares) > 0
        assert sum(shares) == sent


def worker_pids(server_pid: int) -> set[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def accepted_on_scrapes(url: str, scrapes: int) -> set[float]:
    key = ("hookgate_events_accepted_total", (("tenant", "acme"),))
    return {
        samples(httpx.get(f"{url}/metrics", timeout=10).text)[key]
        for _ in range(scrapes)
    }


class TestWorkerReplaced:
    def test_killed_worker_replaced_and_counted(
        self, redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        process, _ = start_two_workers(redis_server, tmp_path)
        try:
            url = process.url
            for index in range(20):
                assert post_signed(url, f"msg_killed_{index}") == 202
            time.sleep(worker_metrics.SNAPSHOT_INTERVAL_S * 2)
            before = worker_pids(process.process.pid)
            assert len(before) == 2

            os.kill(min(before), signal.SIGKILL)
            deadline = time.monotonic() + 20
            while len(worker_pids(process.process.pid) - before) < 1:
                assert time.monotonic() < deadline, process.log()
                time.sleep(0.1)
            for index in range(10):
                assert post_signed(url, f"msg_after_{index}") == 202
            time.sleep(worker_metrics.SNAPSHOT_INTERVAL_S * 2)

            # The killed worker's counters stay in the sums.
            assert accepted_on_scrapes(url, 8) == {30}
            assert process.process.poll() is None
        finally:
            process.stop()

    def test_lost_directory_fails_scrape(
        self, redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        process, metrics_dir = start_two_workers(redis_server, tmp_path)
        try:
            shutil.rmtree(metrics_dir)

            response = httpx.get(f"{process.url}/metrics", timeout=10)

            assert response.status_code == 503
            assert response.json()["error"] == "metrics_unavailable"
            assert post_signed(process.url, "msg_still_accepted") == 202
        finally:
            process.stop()


class TestServerKilled:
    def test_lock_released_with_server(
        self, redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        # Granian's workers outlive a SIGKILLed server; they must not keep the
        # directory from the next server.
        process, metrics_dir = start_two_workers(redis_server, tmp_path)
        workers = worker_pids(process.process.pid)
        try:
            process.process.kill()
            process.process.wait()

            worker_metrics.claim_directory(metrics_dir).close()
        finally:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
