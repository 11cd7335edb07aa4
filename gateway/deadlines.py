"""Body read deadlines, enforced by one periodic task instead of a timer per request.

``asyncio.timeout`` schedules and cancels a timer handle for every request. A
profile of the worker put that at several percent of its time, although almost
every body has arrived by the time the handler reads it. :class:`Deadlines` keeps the
tasks that are reading a body in a dict and a sweep every ``resolution`` seconds
cancels those that have read for longer than ``timeout``. A request then pays for
one dict insert and one delete; a slow body gets its 408 after between ``timeout``
and ``timeout + resolution`` seconds.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any


class Deadlines:
    """Cancels tasks that stay between :meth:`watch` and :meth:`unwatch` too long."""

    __slots__ = ("_expired", "_limit", "_resolution", "_task", "_tick", "_watched")

    def __init__(self, timeout: float) -> None:
        # A quarter of the timeout, at most one second: late by at most 25 %.
        self._resolution = min(1.0, timeout / 4)
        self._limit = math.ceil(timeout / self._resolution)
        self._tick = 0
        # Insertion order is watch order, so the oldest watched tasks come first.
        self._watched: dict[Any, int] = {}
        self._expired: set[Any] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sweep())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def watch(self, task: Any) -> None:
        self._watched[task] = self._tick

    def unwatch(self, task: Any) -> bool:
        """Stop watching ``task``; return whether its deadline had passed.

        When it had, the sweep cancelled the task, and the caller that catches the
        resulting ``CancelledError`` responds 408 instead of re-raising it.
        """
        self._watched.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            # The cancellation was ours, not the server's: clear it so that the
            # task can go on to send its response.
            task.uncancel()
            return True
        return False

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._resolution)
            self._tick += 1
            # Watched during tick ``started``, so it has waited more than ``limit``
            # whole ticks once the current tick exceeds ``started + limit``.
            last_overdue = self._tick - self._limit - 1
            overdue = []
            for task, started in self._watched.items():
                if started > last_overdue:
                    break
                overdue.append(task)
            for task in overdue:
                del self._watched[task]
                self._expired.add(task)
                task.cancel()
