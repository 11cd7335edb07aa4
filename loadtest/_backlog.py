"""Backlog of a consumer group on one stream: read it, sample it, wait for a drain.

The backlog is what the group has not acknowledged yet: its lag (entries never
delivered, from ``XINFO GROUPS``) plus its pending entries (delivered, not
acknowledged). This module only reads Redis (``XLEN``, ``XINFO``) and never writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis


class BacklogError(RuntimeError):
    """Raised when Redis reports no lag or the consumer exits during a wait."""


@dataclass(frozen=True)
class GroupState:
    """One reading of a group on a stream, with the downstream stream's length."""

    at: float
    """``time.monotonic()`` when the reading returned."""
    length: int
    """Entries in the source stream (``XLEN``)."""
    lag: int
    """Entries in the stream never delivered to the group."""
    pending: int
    """Entries delivered to a consumer of the group and not acknowledged."""
    downstream_length: int
    """Entries in the stream the consumer publishes to."""
    consumers: tuple[str, ...]
    """Names of the group's consumers that have read at least once."""

    @property
    def backlog(self) -> int:
        """Entries the group has not acknowledged: lag plus pending."""
        return self.lag + self.pending


def read_group(
    client: redis.Redis, stream: str, group: str, downstream: str
) -> GroupState:
    """Read the group's lag and pending count, the stream lengths and consumers.

    A group that does not exist yet counts every entry of the stream as lag. Raises
    :class:`BacklogError` when Redis returns no lag for an existing group, which
    Redis 7.0 does after entries were deleted from the middle of the stream.
    """
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xlen(downstream)
    pipe.xinfo_groups(stream)
    try:
        length, downstream_length, groups = pipe.execute()
    except redis.ResponseError as exc:
        # XINFO GROUPS fails with "no such key" before the first entry exists.
        if "no such key" not in str(exc):
            raise
        return GroupState(time.monotonic(), 0, 0, 0, client.xlen(downstream), ())
    at = time.monotonic()

    found = [info for info in groups if _text(info["name"]) == group]
    if not found:
        return GroupState(at, length, length, 0, downstream_length, ())
    info = found[0]
    if info.get("lag") is None:
        raise BacklogError(
            f"Redis reports no lag for group {group} on {stream}; lag needs Redis 7.0"
            " or newer and a stream with no entries deleted"
        )
    names: tuple[str, ...] = ()
    if info["consumers"]:
        names = tuple(
            _text(consumer["name"])
            for consumer in client.xinfo_consumers(stream, group)
        )
    return GroupState(
        at, length, int(info["lag"]), int(info["pending"]), downstream_length, names
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class BacklogSampler(threading.Thread):
    """Reads a group every ``interval_s`` seconds until :meth:`cancel`."""

    def __init__(
        self, url: str, stream: str, group: str, downstream: str, interval_s: float
    ) -> None:
        super().__init__(daemon=True)
        self._client = redis.Redis.from_url(url)
        self._arguments = (stream, group, downstream)
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self.samples: list[GroupState] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            next_at = time.monotonic()
            while True:
                self.samples.append(read_group(self._client, *self._arguments))
                next_at += self._interval_s
                if self._stop_event.wait(max(next_at - time.monotonic(), 0.0)):
                    return
        except (redis.RedisError, BacklogError) as exc:
            # The harness reports the error after the load run, from this thread.
            self.error = exc
        finally:
            self._client.close()

    def cancel(self) -> None:
        self._stop_event.set()


@dataclass
class Drain:
    """Readings of a group's backlog while a consumer works it down to zero."""

    started_at: float
    """``time.monotonic()`` at the start of the wait (the consumer's start)."""
    samples: list[GroupState]
    first_progress_at: float | None
    """When a reading first showed the group reading entries, ``None`` if never."""
    drained_at: float | None
    """When a reading first showed lag 0 and 0 pending, ``None`` on timeout."""


def wait_until_drained(
    client: redis.Redis,
    stream: str,
    group: str,
    downstream: str,
    *,
    started_at: float,
    timeout_s: float,
    consumer_running: Callable[[], bool],
    interval_s: float = 0.05,
) -> Drain:
    """Read the group every ``interval_s`` s until lag and pending are both 0.

    Returns after ``timeout_s`` seconds from ``started_at`` with ``drained_at``
    ``None`` when the backlog has not drained by then. Raises :class:`BacklogError`
    when ``consumer_running`` returns false before the drain.
    """
    drain = Drain(started_at, [], None, None)
    first = read_group(client, stream, group, downstream)
    drain.samples.append(first)
    while True:
        state = read_group(client, stream, group, downstream)
        drain.samples.append(state)
        progressed = state.backlog < first.backlog or state.pending > 0
        if drain.first_progress_at is None and progressed:
            drain.first_progress_at = state.at
        if state.backlog == 0:
            drain.drained_at = state.at
            return drain
        if state.at - started_at > timeout_s:
            return drain
        if not consumer_running():
            raise BacklogError(
                f"the consumer exited with {state.backlog} entries of {stream} not"
                " acknowledged; see its log"
            )
        time.sleep(interval_s)


def growth_per_second(samples: list[GroupState]) -> float:
    """Return the least-squares slope of the backlog over time, in entries/s.

    Returns 0.0 for fewer than two samples.
    """
    if len(samples) < 2:
        return 0.0
    times = [state.at for state in samples]
    values = [state.backlog for state in samples]
    mean_t = sum(times) / len(times)
    mean_v = sum(values) / len(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    covariance = sum(
        (t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)
    )
    return covariance / spread
