"""Log processors and the routing of FastStream's loggers."""

from __future__ import annotations

import logging

import faststream  # noqa: F401  (imported for the module logger it sets up)
from opentelemetry.sdk.trace import TracerProvider

from hookgate.logs import (
    FASTSTREAM_LOGGER,
    RateLimiter,
    add_trace_ids,
    configure_logging,
    current_trace_ids,
)


class TestAddTraceIds:
    def test_ids_added_inside_span(self) -> None:
        """Inside a recording span the line gets its trace and span ids."""
        tracer = TracerProvider().get_tracer("hookgate.tests")

        with tracer.start_as_current_span("handle") as span:
            line = add_trace_ids(None, "info", {"event": "entry.dead_lettered"})
            context = span.get_span_context()

        assert line["trace_id"] == f"{context.trace_id:032x}"
        assert line["span_id"] == f"{context.span_id:016x}"

    def test_nothing_added_without_span(self) -> None:
        """Outside any span the line is left as it was."""
        line = add_trace_ids(None, "info", {"event": "consumer.started"})

        assert line == {"event": "consumer.started"}

    def test_no_ids_without_span(self) -> None:
        """The helper reports no ids when no span is active."""
        assert current_trace_ids() is None


class TestFastStreamLogger:
    def test_logger_has_no_handler(self) -> None:
        """FastStream's records reach the root handler, not one of their own."""
        assert FASTSTREAM_LOGGER.handlers == []
        assert FASTSTREAM_LOGGER.propagate

    def test_module_logger_propagates(self) -> None:
        """FastStream's own module logger loses its coloured handler."""
        configure_logging()
        module_logger = logging.getLogger("faststream")

        assert module_logger.handlers == []
        assert module_logger.propagate


class TestRateLimiter:
    def test_first_line_allowed(self) -> None:
        """The first line of a key passes with nothing suppressed."""
        limiter = RateLimiter(per_second=1.0)

        assert limiter.allow("flush") == 0

    def test_repeat_held_back(self) -> None:
        """A second line within the interval is held back."""
        limiter = RateLimiter(per_second=1.0)
        limiter.allow("flush")

        assert limiter.allow("flush") is None

    def test_keys_independent(self) -> None:
        """Another key is not held back by the first."""
        limiter = RateLimiter(per_second=1.0)
        limiter.allow("flush")

        assert limiter.allow("reclaim") == 0
