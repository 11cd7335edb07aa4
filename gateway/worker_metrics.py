"""Counters of every Granian worker, summed for a scrape that reaches one of them.

Each worker counts in its own process (:mod:`hookgate.metrics`), and a request to
``GET /metrics`` reaches whichever worker Granian hands it to. With more than one
worker, ``hookgate serve`` gives the workers a shared directory
(``HOOKGATE_METRICS_DIR``). Each worker writes a snapshot of its counters there
every second and when it stops, and the worker that serves a scrape writes its
own, reads the others' and sums them. The others' figures are therefore up to a
second old.

A stopped worker's snapshot stays and keeps counting in the sums, so the totals
never go down when Granian replaces a worker. Its waiting entries do not count,
because it has none left.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import msgspec
import structlog

from hookgate import metrics
from hookgate.logs import RateLimiter

log = structlog.get_logger("hookgate.gateway.worker_metrics")
# A scrape reads every snapshot, so one bad file would log on every scrape.
_unreadable_logged = RateLimiter(per_second=1 / 60)

# The directory of the snapshots, which ``hookgate serve`` sets for its workers.
ENV = "HOOKGATE_METRICS_DIR"
SNAPSHOT_INTERVAL_S = 1.0
# Snapshot files are named worker-PID-START.metrics.json, START being when the
# worker began in nanoseconds, so that a new worker whose PID a dead one had does
# not overwrite that one's counters. Only files of that shape are read or
# removed, so a directory the user names may hold other files.
PATTERN = "worker-*.metrics.json"


class SourceSnapshot(msgspec.Struct, frozen=True):
    tenant: str
    provider: str
    accepted: int
    statuses: dict[int, int]
    duplicates: int = 0


class HistogramSnapshot(msgspec.Struct, frozen=True):
    counts: list[int]
    sum: float


class Snapshot(msgspec.Struct, frozen=True):
    """One worker's gateway counters at one moment."""

    pid: int
    sources: dict[str, SourceSnapshot]
    no_source: dict[int, int]
    rejections: dict[str, int]
    flush_sizes: HistogramSnapshot
    flush_seconds: HistogramSnapshot
    waiting: int


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Snapshot).decode


def take(pid: int, counts: metrics.GatewayCounts) -> Snapshot:
    """Copy ``counts`` into a snapshot of worker ``pid``."""
    return Snapshot(
        pid=pid,
        sources={
            source_id: SourceSnapshot(
                source.tenant,
                source.provider,
                source.accepted,
                dict(source.statuses),
                source.duplicates,
            )
            for source_id, source in counts.sources.items()
        },
        no_source=dict(counts.no_source.statuses),
        rejections=dict(counts.rejections),
        flush_sizes=HistogramSnapshot(
            list(counts.flush_sizes.counts), counts.flush_sizes.sum
        ),
        flush_seconds=HistogramSnapshot(
            list(counts.flush_seconds.counts), counts.flush_seconds.sum
        ),
        waiting=counts.waiting,
    )


def write(directory: Path, snapshot: Snapshot, started_ns: int = 0) -> None:
    """Replace the worker's snapshot file, so that readers never see half of it."""
    name = f"worker-{snapshot.pid}-{started_ns}"
    final = directory / f"{name}.metrics.json"
    partial = directory / f"{name}.metrics.partial"
    partial.write_bytes(_encode(snapshot))
    os.replace(partial, final)


def read_all(directory: Path) -> Iterator[Snapshot]:
    """Yield every worker's snapshot; a file that cannot be read is skipped."""
    for path in sorted(directory.glob(PATTERN)):
        try:
            yield _decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            suppressed = _unreadable_logged.allow("unreadable")
            if suppressed is not None:
                log.warning(
                    "metrics.snapshot_unreadable",
                    path=str(path),
                    error=str(exc),
                    suppressed=suppressed,
                )


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # The process exists but belongs to someone else.
        return True
    return True


def merge(
    snapshots: Iterator[Snapshot] | list[Snapshot],
    alive: Callable[[int], bool] = is_alive,
) -> metrics.GatewayCounts:
    """Sum worker snapshots into one set of counters.

    Counters add up over every snapshot. Waiting entries add up over the workers
    that ``alive`` reports as running.
    """
    sources: dict[str, metrics.SourceCounts] = {}
    no_source = metrics.SourceCounts(
        tenant=metrics.NO_SOURCE.tenant, provider=metrics.NO_SOURCE.provider
    )
    rejections: collections.Counter[str] = collections.Counter()
    sizes = metrics.Histogram(metrics.FLUSH_SIZE_BOUNDS)
    seconds = metrics.Histogram(metrics.FLUSH_SECONDS_BOUNDS)
    waiting = 0
    for snapshot in snapshots:
        for source_id, source in snapshot.sources.items():
            merged = sources.get(source_id)
            if merged is None:
                merged = sources[source_id] = metrics.SourceCounts(
                    source.tenant, source.provider
                )
            merged.accepted += source.accepted
            merged.duplicates += source.duplicates
            _add(merged.statuses, source.statuses)
        _add(no_source.statuses, snapshot.no_source)
        rejections.update(snapshot.rejections)
        _add_histogram(sizes, snapshot.flush_sizes)
        _add_histogram(seconds, snapshot.flush_seconds)
        if alive(snapshot.pid):
            waiting += snapshot.waiting
    return metrics.GatewayCounts(
        sources=sources,
        no_source=no_source,
        rejections=rejections,
        flush_sizes=sizes,
        flush_seconds=seconds,
        waiting=waiting,
    )


def _add(total: collections.defaultdict[int, int], part: Mapping[int, int]) -> None:
    for key, value in part.items():
        total[key] += value


def _add_histogram(total: metrics.Histogram, part: HistogramSnapshot) -> None:
    # A snapshot from a build with other bounds cannot be summed bucket by bucket.
    if len(part.counts) != len(total.counts):
        return
    for index, count in enumerate(part.counts):
        total.counts[index] += count
    total.sum += part.sum


class SharedCounts:
    """This worker's side of the shared directory: writes and sums snapshots."""

    def __init__(self, directory: Path, local: Callable[[], metrics.GatewayCounts]):
        self.directory = directory
        self._local = local
        self._pid = os.getpid()
        self._started_ns = time.time_ns()
        self._task: asyncio.Task[None] | None = None

    def publish(self) -> None:
        """Write this worker's snapshot now."""
        write(self.directory, take(self._pid, self._local()), self._started_ns)

    def _publish_logged(self) -> None:
        # For the periodic and final writes, whose failure has no caller to tell.
        try:
            self.publish()
        except OSError as exc:
            log.warning("metrics.snapshot_failed", error=str(exc))

    def totals(self) -> metrics.GatewayCounts:
        """Return every worker's counters summed, this worker's as of now."""
        self.publish()
        return merge(read_all(self.directory))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL_S)
            self._publish_logged()

    def stop(self) -> None:
        """Stop the periodic writes and write the final snapshot."""
        if self._task is not None:
            self._task.cancel()
        self._publish_logged()


class MetricsDirError(RuntimeError):
    """Raised when the snapshot directory cannot serve a new server."""


LOCK_NAME = ".hookgate-metrics.lock"


def claim_directory(path: Path) -> IO[bytes]:
    """Prepare ``path`` for this server's workers and return its held lock.

    Creates the directory if needed and removes the snapshots of an earlier run,
    whose counters would otherwise add to this run's. The lock stays held while
    the returned file is open, so that a second server on the same directory,
    whose workers' counters would mix with these, fails to start instead. Raises
    :class:`MetricsDirError` when the directory cannot be created, written or
    locked.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = (path / LOCK_NAME).open("wb")
    except OSError as exc:
        raise MetricsDirError(
            f"cannot use {path} for the workers' metrics ({exc.strerror});"
            f" set {ENV} to a writable directory"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise MetricsDirError(
            f"another hookgate server uses {path} for its workers' metrics;"
            f" give each server its own {ENV}"
        ) from None
    # Granian forks its workers, which would share the lock, so workers left
    # running after the server was killed would keep the directory locked.
    os.register_at_fork(after_in_child=lock.close)
    try:
        for stale in path.glob(PATTERN):
            stale.unlink(missing_ok=True)
    except OSError as exc:
        lock.close()
        raise MetricsDirError(
            f"cannot remove old snapshots from {path} ({exc.strerror});"
            f" set {ENV} to a writable directory"
        ) from None
    return lock
