"""OpenTelemetry tracing of ingest requests, flushes and consumer handling.

Tracing is off unless ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``,
``console``). Callers on the hot path check :data:`ENABLED` once and then call
nothing here, so a process without an exporter creates no spans and makes no
OpenTelemetry call per request. Unlike the OpenTelemetry SDK, whose default exporter
is ``otlp``, hookgate's default is ``none``.

A trace crosses the ingest stream in the entry's ``headers`` JSON: the gateway
replaces the request's ``traceparent`` (and ``tracestate``) with the context of its
server span, and the consumer's span continues that context.

With an exporter on and ``OTEL_TRACES_SAMPLER`` unset, the sampler is
parent-based with a trace-id ratio of :data:`DEFAULT_SAMPLER_RATIO` for new
traces (:func:`default_sampler`), not the SDK's ``parentbased_always_on``.

The gateway consults the sampler about a request before it creates any span
(:func:`sample_request`). An unsampled request then creates no span at all, but
its entry still gets a ``traceparent`` with the sampled flag clear, so the
consumer's parent-based sampler drops the same trace.

This module must not import the gateway or the consumers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

log = structlog.get_logger("hookgate.tracing")

# Read by the hot path once per request; True only after configure() or enable().
ENABLED = False

# The ratio of new traces that the default sampler keeps.
DEFAULT_SAMPLER_RATIO = 0.01

_tracer: trace.Tracer = trace.NoOpTracer()
# The SDK tracer's sampler and id generator, which sample_request consults before
# a span exists. Both are None for a tracer that is not the SDK's.
_sampler: Sampler | None = None
_ids: PresetTraceIds | None = None
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


def default_sampler() -> Sampler:
    """Return hookgate's sampler for when ``OTEL_TRACES_SAMPLER`` is unset.

    It follows the sampled flag of an incoming ``traceparent`` and keeps
    :data:`DEFAULT_SAMPLER_RATIO` of new traces, chosen by trace id.
    """
    return ParentBasedTraceIdRatio(DEFAULT_SAMPLER_RATIO)


def _configured_sampler() -> Sampler | None:
    # None lets the SDK's TracerProvider read OTEL_TRACES_SAMPLER and
    # OTEL_TRACES_SAMPLER_ARG. An empty value counts as unset, as the
    # OpenTelemetry specification requires of every variable.
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    if os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip():
        log.warning(
            "tracing.sampler_arg_ignored",
            reason="OTEL_TRACES_SAMPLER_ARG applies only to the sampler that"
            " OTEL_TRACES_SAMPLER names; set both to change the ratio",
        )
    return default_sampler()


def configure(service_name: str) -> bool:
    """Install a tracer provider built from the ``OTEL_*`` variables.

    ``OTEL_TRACES_EXPORTER`` is a comma-separated list of ``otlp``, ``console``
    and ``none`` (the default). When ``OTEL_TRACES_SAMPLER`` is set, the SDK's
    :class:`TracerProvider` builds the sampler from it and
    ``OTEL_TRACES_SAMPLER_ARG``; otherwise the sampler is :func:`default_sampler`.
    Returns whether tracing is on. Raises :class:`TracingConfigError` for an
    unknown exporter or OTLP protocol.
    """
    names = exporter_names()
    if not names:
        return False

    resource = Resource.create(
        {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)}
    )
    provider = TracerProvider(resource=resource, sampler=_configured_sampler())
    for name in names:
        if name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        else:
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    enable(provider)
    log.info(
        "tracing.configured",
        exporters=names,
        sampler=provider.sampler.get_description(),
    )
    return True


class PresetTraceIds(IdGenerator):
    """An id generator that can hand out one trace id chosen in advance.

    :func:`sample_request` samples a new trace on a trace id it generated, and
    the server span must then start with that id, or a ratio sampler would decide
    a second time on another id. The preset id is per thread, so a span started
    on another thread cannot take it.
    """

    def __init__(self, ids: IdGenerator) -> None:
        self._ids = ids
        self._preset = threading.local()

    def preset(self, trace_id: int) -> None:
        """Make this thread's next :meth:`generate_trace_id` return ``trace_id``."""
        self._preset.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int = getattr(self._preset, "trace_id", 0)
        if trace_id:
            self._preset.trace_id = 0
            return trace_id
        return self._ids.generate_trace_id()

    def generate_span_id(self) -> int:
        return self._ids.generate_span_id()

    def is_trace_id_random(self) -> bool:
        return self._ids.is_trace_id_random()


def enable(provider: trace.TracerProvider) -> None:
    """Trace with ``provider`` from now on; tests pass an in-memory one.

    With the SDK's provider, the sampler that ``provider`` was built with decides
    about each ingest request before its span starts (:func:`sample_request`).
    """
    global ENABLED, _tracer, _sampler, _ids
    _tracer = provider.get_tracer("hookgate")
    _sampler = _ids = None
    if isinstance(_tracer, sdk_trace.Tracer):
        # The provider hands the same tracer to a second enable(), whose
        # generator is then wrapped already.
        if not isinstance(_tracer.id_generator, PresetTraceIds):
            _tracer.id_generator = PresetTraceIds(_tracer.id_generator)
        _sampler = _tracer.sampler
        _ids = _tracer.id_generator
    ENABLED = True


def disable() -> None:
    """Stop creating spans; the hot path goes back to its untraced branch."""
    global ENABLED, _tracer, _sampler, _ids
    _tracer = trace.NoOpTracer()
    _sampler = _ids = None
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


def server_span_name(method: str) -> str:
    return f"{method} {INGEST_ROUTE}"


class RequestSampling(NamedTuple):
    """The sampling decision about one ingest request, made before any span."""

    # True when the sampler's decision records the request, which then gets a
    # server span.
    recording: bool
    # For a recording request, the parent context of its server span. Otherwise a
    # context whose current span is non-recording, with the sampled flag clear.
    context: otel_context.Context
    # The trace id that a recording request without a valid parent starts, or 0
    # when the trace id comes from the parent.
    root_trace_id: int


def sample_request(method: str, carrier: Mapping[str, str]) -> RequestSampling:
    """Ask the tracer's sampler about an ingest request before its span exists.

    ``carrier`` contains the request's ``traceparent`` and ``tracestate``, if any.
    The sampler gets the parent context, the trace id and the span's name and
    kind, but no attributes, so a sampler that decides on attributes gets none
    here. A request that the sampler drops gets the context that the SDK would
    give its dropped span: the parent's trace id, or a new one, and a new span
    id. With a tracer that is not the SDK's, every request is recording and the
    tracer decides.
    """
    parent = extract(carrier)
    sampler, ids = _sampler, _ids
    if sampler is None or ids is None:
        return RequestSampling(True, parent, 0)

    parent_span_context = trace.get_current_span(parent).get_span_context()
    has_parent = parent_span_context.is_valid
    if has_parent:
        trace_id = parent_span_context.trace_id
        random = parent_span_context.trace_flags.random_trace_id
    else:
        trace_id = ids.generate_trace_id()
        random = ids.is_trace_id_random()
    result = sampler.should_sample(
        parent, trace_id, server_span_name(method), SpanKind.SERVER
    )
    if result.decision is not Decision.DROP:
        return RequestSampling(True, parent, 0 if has_parent else trace_id)

    # The context that the SDK gives a dropped span, built without the span.
    unsampled = SpanContext(
        trace_id,
        ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(
            TraceFlags.RANDOM_TRACE_ID if random else TraceFlags.DEFAULT
        ),
        trace_state=result.trace_state,
    )
    return RequestSampling(
        False, trace.set_span_in_context(NonRecordingSpan(unsampled), parent), 0
    )


@contextmanager
def server_span(
    method: str, source: Any | None, source_id: str, sampling: RequestSampling
) -> Iterator[trace.Span]:
    """Open the server span of one ingest request with HTTP attributes.

    ``source`` is the route's :class:`~hookgate.config.Source`, or None for an
    unknown source id. ``sampling`` is the request's recording decision from
    :func:`sample_request`, whose context becomes the span's parent.
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
    if sampling.root_trace_id and _ids is not None:
        # Set right before the span starts, so no other span takes the id.
        _ids.preset(sampling.root_trace_id)
    with _tracer.start_as_current_span(
        server_span_name(method),
        context=sampling.context,
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
