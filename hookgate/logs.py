"""Logging setup shared by every hookgate process: structlog, JSON or console.

Output is JSON whenever stderr is not a terminal or ``HOOKGATE_LOG_FORMAT=json``;
``HOOKGATE_LOG_FORMAT=console`` forces the readable renderer. Standard-library log
records (Granian's, FastStream's) go through the same processors, so one process
writes one format. Log calls never receive secrets, signatures, tokens or bodies.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Hashable

import structlog

_configured = False


def _use_json() -> bool:
    chosen = os.environ.get("HOOKGATE_LOG_FORMAT", "").lower()
    if chosen in ("json", "console"):
        return chosen == "json"
    return not sys.stderr.isatty()


def configure_logging(level: str | None = None) -> None:
    """Route structlog and standard logging to stderr in one format; idempotent."""
    global _configured
    if _configured:
        return
    _configured = True

    level_name = (level or os.environ.get("HOOKGATE_LOG_LEVEL", "info")).upper()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if _use_json():
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer()

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name)


def logging_dictconfig() -> dict[str, object]:
    """Return a Granian ``log_dictconfig`` that sends its lines to the root handler.

    Granian merges this over its own config, replacing its stdout handlers, so its
    loggers propagate to the handler that :func:`configure_logging` installed.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True},
            "granian.access": {"handlers": [], "propagate": True},
        },
    }


class RateLimiter:
    """Allows one log line per key and interval, and counts the ones held back.

    :meth:`allow` returns ``None`` while a key is held back, otherwise the number of
    lines suppressed since the key was last allowed.
    """

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> int | None:
        now = time.monotonic()
        if now < self._next.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._next[key] = now + self._interval
        return self._suppressed.pop(key, 0)
