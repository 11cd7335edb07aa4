"""Tracing and metrics of the ingest consumer.

:func:`entry_span` continues an entry's trace from the ``traceparent`` that the
gateway wrote into its ``headers`` field. It does nothing when tracing is off.
:func:`start_metrics_server` serves this process's counters and the tenants'
stream state in the Prometheus text format. The stream state is read from Redis
on each scrape. That read runs in the server's thread, with a client of its own.

This module never logs or records bodies or header values other than the trace
context.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import msgspec
import redis
import structlog
from faststream.redis.message import RedisStreamMessage
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from prometheus_client import start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from hookgate import metrics, tracing
from hookgate.keys import INGEST_GROUP, ingest_stream

logger = structlog.get_logger()

_headers_decoder = msgspec.json.Decoder(dict[str, str])


def entry_trace_headers(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    """Return the trace context in an entry's ``headers`` field, or ``{}``.

    A corrupt entry still gets its trace continued when its headers decode.
    """
    try:
        headers = _headers_decoder.decode(fields.get(b"headers", b"{}"))
    except msgspec.DecodeError:
        return {}
    return {
        name: value
        for name, value in headers.items()
        if name in ("traceparent", "tracestate")
    }


# Reusable, so an untraced entry allocates no context manager of its own.
_NO_SPAN = nullcontext()


def start_entry_span(message: RedisStreamMessage) -> trace.Span | None:
    """Start the consumer span of one attempt at ``message``, not yet current.

    Returns None when tracing is off. The caller ends the span, which lets a batch
    keep each entry's span open until the batch's publish has settled.
    """
    if not tracing.ENABLED:
        return None
    raw = message.raw_message
    fields: Mapping[bytes, bytes] = raw["data"]
    return tracing.start_process_span(
        raw["channel"], raw["message_ids"][0].decode(), entry_trace_headers(fields)
    )


def use_entry_span(span: trace.Span | None) -> AbstractContextManager[Any]:
    """Make ``span`` current inside the block without ending it.

    Log lines written in the block carry the span's trace and span ids. With None,
    the block runs without a span.
    """
    if span is None:
        return _NO_SPAN
    return trace.use_span(span, end_on_exit=False)


def entry_span(message: RedisStreamMessage) -> AbstractContextManager[None]:
    """Return the consumer span of ``message``, or a no-op when tracing is off."""
    if not tracing.ENABLED:
        return _NO_SPAN
    return _entry_span(message)


@contextmanager
def _entry_span(message: RedisStreamMessage) -> Iterator[None]:
    raw = message.raw_message
    fields: Mapping[bytes, bytes] = raw["data"]
    with tracing.process_span(
        raw["channel"], raw["message_ids"][0].decode(), entry_trace_headers(fields)
    ):
        yield


def current_entry_span() -> trace.Span | None:
    """Return the current consumer span, or None when tracing is off."""
    if not tracing.ENABLED:
        return None
    return trace.get_current_span()


def mark_attempt_failed(span: trace.Span | None, error: BaseException) -> None:
    """Mark the span of an attempt whose entry stays pending for a retry."""
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def dead_letter_trace_id(fields: Mapping[bytes, bytes], error: Exception) -> str:
    """Return the trace id for a dead-letter entry, and mark the span failed.

    With tracing on, this is the consumer span's trace id, which continues the
    gateway's; with tracing off, the trace id of the entry's ``traceparent``.
    Returns ``""`` when the entry carries no trace context.
    """
    if tracing.ENABLED:
        span = trace.get_current_span()
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        trace_id = tracing.current_trace_id()
        if trace_id:
            return trace_id
    return tracing.trace_id_of(entry_trace_headers(fields))


def record_dead_letter(error: Exception, dead_letter_stream: str) -> None:
    """Add an ``entry.dead_lettered`` event to the current consumer span.

    Call it after the dead-letter entry was written, so the event means that the
    entry left the ingest stream for good. Does nothing when tracing is off.
    """
    if not tracing.ENABLED:
        return
    trace.get_current_span().add_event(
        "entry.dead_lettered",
        {
            "error.type": type(error).__name__,
            "hookgate.dead_letter_stream": dead_letter_stream,
        },
    )


def _field(info: Mapping[Any, Any], name: str) -> Any:
    value = info.get(name)
    return info.get(name.encode()) if value is None else value


class ConsumerCollector(Collector):
    """Collector of the consumer's counters and each tenant's stream state."""

    def __init__(self, client: redis.Redis, tenants: Sequence[str]) -> None:
        self._client = client
        self._tenants = tuple(tenants)

    def _stream_state(self) -> dict[str, metrics.StreamState]:
        states: dict[str, metrics.StreamState] = {}
        group = INGEST_GROUP.encode()
        for tenant in self._tenants:
            stream = ingest_stream(tenant)
            try:
                length = int(self._client.xlen(stream))
                groups: Any = self._client.xinfo_groups(stream)
            except redis.ResponseError:
                # The stream does not exist yet.
                continue
            lag = pending = 0
            for info in groups:
                if _field(info, "name") in (group, INGEST_GROUP):
                    # lag is None when Redis cannot compute it, e.g. after an XDEL.
                    lag = int(_field(info, "lag") or 0)
                    pending = int(_field(info, "pending") or 0)
            states[tenant] = metrics.StreamState(
                length=length, lag=lag, pending=pending
            )
        return states

    def collect(self) -> Iterable[Metric]:
        families = metrics.consumer_families()
        try:
            streams = self._stream_state()
        except redis.RedisError as exc:
            # The counters are still worth a scrape when Redis is unreachable.
            logger.warning("metrics.streams_failed", reason=str(exc))
            streams = {}
        top = metrics.top_tenants(metrics.processed)
        families.extend(metrics.stream_families(streams, top))
        return families


def start_metrics_server(
    host: str, port: int, redis_url: str, tenants: Sequence[str]
) -> None:
    """Serve ``/metrics`` on ``host``:``port`` from a daemon thread.

    Raises :class:`OSError` when the port cannot be bound.
    """
    registry = CollectorRegistry(auto_describe=False)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    registry.register(ConsumerCollector(client, tenants))
    start_http_server(port, addr=host, registry=registry)
    logger.info("metrics.started", host=host, port=port)
