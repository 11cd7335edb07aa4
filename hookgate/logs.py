"""Logging setup shared by every hookgate process: structlog, JSON or console.

Output is JSON whenever stderr is not a terminal or ``HOOKGATE_LOG_FORMAT=json``;
``HOOKGATE_LOG_FORMAT=console`` forces the readable renderer. Standard-library log
records (Granian's, FastStream's) go through the same processors, so one process
writes one format. Every line gets ``trace_id`` and ``span_id`` while an
OpenTelemetry span is active, and whatever the code bound with
``structlog.contextvars`` (the consumer binds ``tenant``, ``source_id``,
``provider`` and ``event_id``). Log calls never receive secrets, signatures, tokens
or bodies.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Hashable, MutableMapping
from typing import Any

import structlog

_configured = False

# FastStream's app and broker log through this logger. It has no handler of its own,
# so its records reach the root handler and come out in the process's format;
# FastStream's default loggers write coloured plain text to stdout and stderr.
FASTSTREAM_LOGGER = logging.getLogger("hookgate.faststream")


def current_trace_ids() -> tuple[str, str] | None:
    """Return the active OpenTelemetry span's trace and span id as hex, if any.

    Returns ``None`` when OpenTelemetry is not installed or no span is recording,
    which is the case whenever tracing is off.
    """
    # Looked up, not imported, so a process that never loaded OpenTelemetry does
    # not load it for logging. With tracing off, the current span is the invalid
    # span, and the check costs one context-variable read.
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def add_trace_ids(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add ``trace_id`` and ``span_id`` of the active OpenTelemetry span."""
    ids = current_trace_ids()
    if ids is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    return event_dict


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
        add_trace_ids,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if _use_json():
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # With rich or better-exceptions installed, structlog's default traceback
        # shows local variables, which hold bodies and secrets; the plain one
        # does not.
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback
        )

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

    # FastStream (0.7.8) gives its module logger a coloured stderr handler at
    # import and stops it from propagating. Code that does not pass
    # FASTSTREAM_LOGGER still logs through it, so it joins the root handler too.
    faststream = logging.getLogger("faststream")
    faststream.handlers.clear()
    faststream.propagate = True


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
