"""Event ids: unique across worker processes, sortable by creation time."""

from __future__ import annotations

import itertools
import os
import time


class EventIds:
    """Generates ids like ``evt_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6``.

    Twelve hex digits of Unix milliseconds, eight of a per-generator random prefix,
    and a twelve-digit counter. Create one generator per process after it starts
    (not before a fork), so no two processes share a prefix.
    """

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count()

    def __call__(self) -> str:
        millis = time.time_ns() // 1_000_000
        sequence = next(self._counter) & 0xFFFFFFFFFFFF
        return f"evt_{millis:012x}{self._prefix}{sequence:012x}"
