"""OpenTelemetry tracing of ingest requests, flushes and consumer handling.

Tracing is off unless ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``,
``console``). Callers on the hot path check :data:`ENABLED` once and then call
nothing here, so a process without an exporter creates no spans and makes no
OpenTelemetry call per request. Unlike the OpenTelemetry SDK, whose default exporter
is ``otlp``, hookgate's default is ``none``.

A trace crosses the ingest stream in the entry's ``headers`` JSON: the gateway
replaces the request's ``traceparent`` (and ``tracestate``) with the context of its
server span, and the consumer's span continues that context.

This module must not import the gateway or the consumers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

log = structlog.get_logger("hookgate.tracing")

# Read by the hot path once per request; True only after configure() or enable().
ENABLED = False

_tracer: trace.Tracer = trace.NoOpTracer()
_propagator = TraceContextTextMapPropagator()
_getter: DefaultGetter = DefaultGetter()

INGEST_ROUTE = "/hooks/{source_id}"


class TracingConfigError(ValueError):
    """Raised when an ``OTEL_*`` variable names an exporter hookgate cannot build."""


def _otlp_protocol() -> str:
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    )
    if protocol not in ("grpc", "http/protobuf"):
        raise TracingConfigError(
            f"invalid OTLP protocol {protocol!r}; set OTEL_EXPORTER_OTLP_PROTOCOL"
            " to 'grpc' or 'http/protobuf'"
        )
    return protocol


def exporter_names() -> list[str]:
    """Return the exporters that ``OTEL_TRACES_EXPORTER`` names, without ``none``.

    Raises :class:`TracingConfigError` for an unknown exporter or OTLP protocol,
    so a command can reject the setting before it starts workers.
    """
    names = [
        name.strip()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")
        if name.strip() and name.strip() != "none"
    ]
    for name in names:
        if name not in ("otlp", "console"):
            raise TracingConfigError(
                f"invalid OTEL_TRACES_EXPORTER entry {name!r}; use otlp, console"
                " or none"
            )
        if name == "otlp":
            _otlp_protocol()
    return names


def _otlp_exporter() -> SpanExporter:
    if _otlp_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def configure(service_name: str) -> bool:
    """Install a tracer provider built from the ``OTEL_*`` variables.

    ``OTEL_TRACES_EXPORTER`` is a comma-separated list of ``otlp``, ``console``
    and ``none`` (the default). The sampler comes from ``OTEL_TRACES_SAMPLER`` and
    ``OTEL_TRACES_SAMPLER_ARG``, read by the SDK's :class:`TracerProvider`; its
    default, ``parentbased_always_on``, follows an incoming ``traceparent``.
    Returns whether tracing is on. Raises :class:`TracingConfigError` for an
    unknown exporter or OTLP protocol.
    """
    names = exporter_names()
    if not names:
        return False

    resource = Resource.create(
        {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)}
    )
    provider = TracerProvider(resource=resource)
    for name in names:
        if name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        else:
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    enable(provider)
    log.info("tracing.configured", exporters=names)
    return True


def enable(provider: trace.TracerProvider) -> None:
    """Trace with ``provider`` from now on; tests pass an in-memory one."""
    global ENABLED, _tracer
    _tracer = provider.get_tracer("hookgate")
    ENABLED = True


def disable() -> None:
    """Stop creating spans; the hot path goes back to its untraced branch."""
    global ENABLED, _tracer
    _tracer = trace.NoOpTracer()
    ENABLED = False


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """Return the context of a W3C ``traceparent`` in ``headers``, if any."""
    return _propagator.extract(headers, getter=_getter)


def current_trace_headers() -> dict[str, str]:
    """Return ``traceparent`` (and ``tracestate``) of the current span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def current_span_context() -> SpanContext:
    return trace.get_current_span().get_span_context()


def trace_id_of(headers: Mapping[str, str]) -> str:
    """Return the hex trace id of the ``traceparent`` in ``headers``, or ``""``."""
    span_context = trace.get_current_span(extract(headers)).get_span_context()
    if not span_context.is_valid:
        return ""
    return format(span_context.trace_id, "032x")


def current_trace_id() -> str:
    """Return the hex trace id of the current span, or ``""`` when there is none."""
    span_context = current_span_context()
    if not span_context.is_valid:
        return ""
    return format(span_context.trace_id, "032x")


@contextmanager
def server_span(
    method: str, source: Any | None, source_id: str, carrier: Mapping[str, str]
) -> Iterator[trace.Span]:
    """Open the server span of one ingest request with HTTP attributes.

    ``source`` is the route's :class:`~hookgate.config.Source`, or None for an
    unknown source id. ``carrier`` contains the request's ``traceparent`` and
    ``tracestate``, if any, which become the span's parent.
    """
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "http.route": INGEST_ROUTE,
        "url.path": INGEST_ROUTE.replace("{source_id}", source_id),
    }
    if source is not None:
        attributes["hookgate.tenant"] = source.tenant
        attributes["hookgate.source_id"] = source.id
        attributes["hookgate.provider"] = source.provider
    with _tracer.start_as_current_span(
        f"{method} {INGEST_ROUTE}",
        context=extract(carrier),
        kind=SpanKind.SERVER,
        attributes=attributes,
    ) as span:
        yield span


def record_response(span: trace.Span, status: int, body_size: int) -> None:
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("http.request.body.size", body_size)
    # A 4xx is the client's fault, so only 5xx marks a server span as an error
    # (OpenTelemetry HTTP semantic conventions).
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


@contextmanager
def flush_span(links: list[SpanContext]) -> Iterator[trace.Span]:
    """Open the span of one batcher flush, linked to the sampled requests it carries.

    A flush serves many requests. It is a child of the first sampled one, so the
    trace of a webhook that arrived alone contains the flush that wrote its entry,
    and it links every sampled request. A flush that carries no sampled request
    creates no span and yields a non-recording one.
    """
    sampled = [link for link in links if link.is_valid and link.trace_flags.sampled]
    if not sampled:
        yield trace.INVALID_SPAN
        return
    with _tracer.start_as_current_span(
        "redis flush",
        context=trace.set_span_in_context(NonRecordingSpan(sampled[0])),
        kind=SpanKind.CLIENT,
        links=[Link(link) for link in sampled],
        attributes={"db.system": "redis", "hookgate.batch_size": len(links)},
    ) as span:
        yield span


def start_process_span(
    stream: str, entry_id: str, headers: Mapping[str, str]
) -> trace.Span:
    """Start the consumer span of one entry without making it current.

    The span continues the entry's trace; the caller ends it.
    """
    return _tracer.start_span(
        f"process {stream}",
        context=extract(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": entry_id,
        },
    )


@contextmanager
def process_span(
    stream: str, entry_id: str, headers: Mapping[str, str]
) -> Iterator[trace.Span]:
    """Open the consumer span of one entry, continuing the entry's trace."""
    span = start_process_span(stream, entry_id, headers)
    with trace.use_span(span, end_on_exit=True):
        yield span
