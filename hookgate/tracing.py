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

The gateway decides about a request before it creates any span
(:func:`sample_request`). An unsampled request then creates no span and attaches
no OpenTelemetry context, but its entry still gets a ``traceparent`` with the
sampled flag clear, so the consumer's parent-based sampler drops the same trace.

This module must not import the gateway or the consumers.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
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
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

log = structlog.get_logger("hookgate.tracing")

# Read by the hot path once per request; True only after configure() or enable().
ENABLED = False

# The ratio of new traces that the default sampler keeps. A sampled request
# costs about 100 us of worker CPU with its export, so at 1 % tracing cost the
# gateway 4 to 6 % of its throughput, against a 5 % budget (docs/observability.md).
# 0.1 % still keeps about 20 traces a second of a worker at full load.
DEFAULT_SAMPLER_RATIO = 0.001

_tracer: trace.Tracer = trace.NoOpTracer()
# The SDK tracer's sampler and id generator, which sample_request consults before
# a span exists. Both are None for a tracer that is not the SDK's.
_sampler: Sampler | None = None
_ids: PresetTraceIds | None = None
# Set when sample_request can decide without calling the sampler: a new trace is
# sampled when the low 64 bits of its random trace id are below this bound.
_root_bound: int | None = None
_propagator = TraceContextTextMapPropagator()
_getter: DefaultGetter = DefaultGetter()
_random_bits = random.getrandbits
_LOW_64_BITS = (1 << 64) - 1
# An empty context, the parent of a root span, so that no span current in the
# caller becomes its parent.
_NO_PARENT = otel_context.Context()

# The W3C Trace Context traceparent: version, trace id, parent span id and flags
# in lowercase hex, then more fields in versions after 00. Surrounding spaces
# and tabs are allowed, as OpenTelemetry's propagator allows them.
_TRACEPARENT = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*"
)
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16

# The traceparent (and tracestate) that the entries of the current request carry
# when the sampler dropped it, so no span or OpenTelemetry context exists.
dropped_trace_headers: ContextVar[dict[str, str] | None] = ContextVar(
    "hookgate_dropped_trace_headers", default=None
)

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


# The samplers that the SDK's TracerProvider builds from OTEL_TRACES_SAMPLER, as
# the OpenTelemetry specification names them. The SDK lowercases the value but
# does not strip it, and it ignores samplers registered as entry points.
KNOWN_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
# The samplers that take OTEL_TRACES_SAMPLER_ARG as a ratio.
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


def check_sampler() -> None:
    """Raise :class:`TracingConfigError` for a sampler setting the SDK would replace.

    For any other name, or a ratio sampler without a number from 0 to 1, the SDK
    logs a warning and then traces every request, which can cost most of the
    gateway's throughput. A ratio sampler without a ratio also traces every
    request, as the specification's default of 1.0, so it must have one here.
    """
    raw = os.environ.get("OTEL_TRACES_SAMPLER", "")
    if not raw.strip():
        return
    name = raw.lower()
    if name not in KNOWN_SAMPLERS:
        raise TracingConfigError(
            f"unknown sampler {raw!r} in OTEL_TRACES_SAMPLER; use one of"
            f" {', '.join(KNOWN_SAMPLERS)}"
        )
    if name not in RATIO_SAMPLERS:
        return
    argument = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    try:
        ratio = float(argument)
    except ValueError:
        ratio = -1.0
    # NaN fails this comparison too.
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(
            f"invalid OTEL_TRACES_SAMPLER_ARG {argument!r} for {name}; set it to a"
            " ratio from 0 to 1, such as 0.01"
        )


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
    check_sampler()

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

    @property
    def wrapped(self) -> IdGenerator:
        """The id generator that makes every id not preset."""
        return self._ids

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


def _ratio_bound(sampler: Sampler) -> int | None:
    """Return the trace-id bound below which ``sampler`` keeps a new trace.

    Returns None unless ``sampler`` is one of the SDK's own always-on,
    always-off or trace-id ratio samplers, whose decision depends on the trace
    id alone.
    """
    if sampler is ALWAYS_ON:
        return _LOW_64_BITS + 1
    if sampler is ALWAYS_OFF:
        return 0
    if (
        isinstance(sampler, TraceIdRatioBased)
        and type(sampler).should_sample is TraceIdRatioBased.should_sample
    ):
        return sampler.bound
    return None


def _root_bound_of(sampler: Sampler, ids: IdGenerator) -> int | None:
    """Return the root bound of a parent-based ``sampler``, for the fast path.

    The fast path draws trace ids itself and follows an incoming sampled flag,
    so it needs the SDK's random ids and a :class:`ParentBased` sampler that
    keeps a sampled remote parent and drops an unsampled one. Returns None for
    any other sampler, which :func:`sample_request` then calls per request.
    """
    if type(ids) is not RandomIdGenerator:
        return None
    if not (
        isinstance(sampler, ParentBased)
        and type(sampler).should_sample is ParentBased.should_sample
    ):
        return None
    # NOTE: ParentBased keeps its delegates in private attributes. Should a later
    # SDK rename them, the fast path turns itself off and every request calls
    # the sampler again, which is slower but decides the same way.
    if getattr(sampler, "_remote_parent_sampled", None) is not ALWAYS_ON:
        return None
    if getattr(sampler, "_remote_parent_not_sampled", None) is not ALWAYS_OFF:
        return None
    root = getattr(sampler, "_root", None)
    return None if root is None else _ratio_bound(root)


def enable(provider: trace.TracerProvider) -> None:
    """Trace with ``provider`` from now on; tests pass an in-memory one.

    With the SDK's provider, the sampler that ``provider`` was built with decides
    about each ingest request before its span starts (:func:`sample_request`).
    """
    global ENABLED, _tracer, _sampler, _ids, _root_bound
    _tracer = provider.get_tracer("hookgate")
    _sampler = _ids = _root_bound = None
    if isinstance(_tracer, sdk_trace.Tracer):
        # The provider hands the same tracer to a second enable(), whose
        # generator is then wrapped already.
        if not isinstance(_tracer.id_generator, PresetTraceIds):
            _tracer.id_generator = PresetTraceIds(_tracer.id_generator)
        _sampler = _tracer.sampler
        _ids = _tracer.id_generator
        _root_bound = _root_bound_of(_sampler, _ids.wrapped)
    ENABLED = True


def disable() -> None:
    """Stop creating spans; the hot path goes back to its untraced branch."""
    global ENABLED, _tracer, _sampler, _ids, _root_bound
    _tracer = trace.NoOpTracer()
    _sampler = _ids = _root_bound = None
    ENABLED = False


def decides_without_sampler() -> bool:
    """Return whether :func:`sample_request` decides without calling the sampler."""
    return _root_bound is not None


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """Return the context of a W3C ``traceparent`` in ``headers``, if any."""
    return _propagator.extract(headers, getter=_getter)


def current_trace_headers() -> dict[str, str]:
    """Return ``traceparent`` (and ``tracestate``) of the current span.

    In a request that the sampler dropped, these are the unsampled headers that
    :func:`sample_request` chose. The caller must not change that dict.
    """
    dropped = dropped_trace_headers.get()
    if dropped is not None:
        return dropped
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def current_span_context() -> SpanContext:
    """Return the current span's context, which is invalid in a dropped request."""
    if dropped_trace_headers.get() is not None:
        return INVALID_SPAN_CONTEXT
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
    # The parent context of a recording request's server span, or an empty
    # context for a dropped request.
    context: otel_context.Context
    # The trace id that a recording request without a valid parent starts, or 0
    # when the trace id comes from the parent.
    root_trace_id: int
    # The ``traceparent`` (and ``tracestate``) that the entries of a dropped
    # request carry, with the sampled flag clear, or None for a recording request.
    dropped_headers: dict[str, str] | None


def sample_request(method: str, headers: Mapping[str, str]) -> RequestSampling:
    """Decide whether an ingest request records, before its span exists.

    ``headers`` are the request's headers, of which only ``traceparent`` and
    ``tracestate`` are read. A request that the sampler drops gets the ids that
    the SDK would give its dropped span: the parent's trace id, or a new one,
    and a new span id. With a tracer that is not the SDK's, every request is
    recording and the tracer decides.

    With the SDK's parent-based sampler over an always-on, always-off or
    trace-id ratio root, which every ``OTEL_TRACES_SAMPLER`` value but the
    non-parent-based ``traceidratio`` gives, the decision follows that
    sampler's rules without calling it. Any other sampler gets the parent
    context, the trace id and the span's name and kind, but no attributes, so a
    sampler that decides on attributes gets none here.
    """
    bound = _root_bound
    if bound is None:
        return _ask_sampler(method, headers)
    traceparent = headers.get("traceparent")
    if traceparent is not None:
        sampling = _sample_child(headers, traceparent)
        if sampling is not None:
            return sampling

    # A new trace. One draw gives its trace id (high 128 bits) and the span id
    # of a dropped request (low 64 bits). Zero ids are invalid, as in the SDK's
    # generator.
    bits = _random_bits(192)
    trace_id = bits >> 64
    while not trace_id or not (bits & _LOW_64_BITS):
        bits = _random_bits(192)
        trace_id = bits >> 64
    if trace_id & _LOW_64_BITS < bound:
        return RequestSampling(True, _NO_PARENT, trace_id, None)
    # The hex of the 24 bytes, with a dash after the 16 of the trace id.
    ids = bits.to_bytes(24, "big").hex("-", -16)
    # 02 is the random trace-id flag of W3C Trace Context level 2, which the SDK
    # sets on the ids of its random generator.
    dropped = {"traceparent": f"00-{ids}-02"}
    # tuple.__new__ builds the same tuple as the NamedTuple's generated __new__,
    # without that Python-level call, a measurable share of the dropped path.
    return tuple.__new__(RequestSampling, (False, _NO_PARENT, 0, dropped))


def _sample_child(
    headers: Mapping[str, str], traceparent: str
) -> RequestSampling | None:
    """Decide by the sampled flag of ``traceparent``, or return None if invalid.

    The rules are those of the propagator's ``extract``, which ignores an
    invalid ``traceparent``, so such a request starts a new trace.
    """
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, more_fields = match.groups()
    if (
        version == "ff"
        or (version == "00" and more_fields)
        or trace_hex == _ZERO_TRACE_ID
        or span_hex == _ZERO_SPAN_ID
    ):
        return None
    flags = int(flags_hex, 16)
    if flags & TraceFlags.SAMPLED:
        return RequestSampling(True, extract(_trace_carrier(headers)), 0, None)

    span_id = _random_bits(64)
    while not span_id:
        span_id = _random_bits(64)
    # Of the parent's flags, a dropped span keeps only the random trace-id flag.
    flags_out = "02" if flags & TraceFlags.RANDOM_TRACE_ID else "00"
    new_span_hex = span_id.to_bytes(8, "big").hex()
    dropped = {"traceparent": f"00-{trace_hex}-{new_span_hex}-{flags_out}"}
    tracestate = headers.get("tracestate")
    if tracestate is not None:
        state = TraceState.from_header([tracestate]).to_header()
        if state:
            dropped["tracestate"] = state
    return tuple.__new__(RequestSampling, (False, _NO_PARENT, 0, dropped))


def _trace_carrier(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name in ("traceparent", "tracestate")
        if (value := headers.get(name)) is not None
    }


def _ask_sampler(method: str, headers: Mapping[str, str]) -> RequestSampling:
    """Decide as :func:`sample_request` does, by calling the tracer's sampler."""
    parent = extract(_trace_carrier(headers))
    sampler, ids = _sampler, _ids
    if sampler is None or ids is None:
        return RequestSampling(True, parent, 0, None)

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
        return RequestSampling(True, parent, 0 if has_parent else trace_id, None)

    # The headers that the propagator would write for the SDK's dropped span.
    flags = TraceFlags.RANDOM_TRACE_ID if random else TraceFlags.DEFAULT
    dropped = {
        "traceparent": f"00-{trace_id:032x}-{ids.generate_span_id():016x}-{flags:02x}"
    }
    if result.trace_state:
        dropped["tracestate"] = result.trace_state.to_header()
    return RequestSampling(False, _NO_PARENT, 0, dropped)


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
