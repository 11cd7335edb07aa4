"""Tracing from an ingest request through the flush into the consumer, in-process.

The gateway's RSGI app is driven with a fake scope and protocol against the
session's Redis, and the consumer app runs in the same event loop, so every span
lands in one in-memory exporter.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
import structlog
from click.testing import CliRunner
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NoOpTracer, SpanKind, StatusCode
from redis.asyncio import Redis

import hookgate.consumers.ingest as consumer_ingest
from hookgate import tracing
from hookgate.cli import main
from hookgate.consumers import create_app
from hookgate.gateway.app import Gateway
from hookgate.gateway.batcher import Batcher
from hookgate.keys import (
    INGEST_GROUP,
    dead_letter_stream,
    events_stream,
    ingest_stream,
)
from hookgate.logs import RateLimiter, add_trace_ids
from hookgate.tests.gateway.helpers import standard_headers

from .entries import standard_webhook_body
from .streams import (
    config_for,
    read_dead_letters,
    read_events,
    redis_url,
    running_consumer,
    wait_processed,
)

# The W3C Trace Context specification's example traceparent.
INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_TRACEPARENT = f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-01"
# The same parent, with the sampled flag clear.
UNSAMPLED_TRACEPARENT = f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-00"
# config_for gives each source the secret key b"key".
SECRET = "whsec_" + base64.b64encode(b"key").decode()


class FakeHeaders(dict[str, str]):
    def get_all(self, key: str) -> list[str]:
        value = self.get(key)
        return [] if value is None else [value]


class FakeScope:
    proto = "http"
    method = "POST"
    query_string = ""

    def __init__(self, path: str, headers: dict[str, str]) -> None:
        self.path = path
        self.headers = FakeHeaders(headers)


class FakeProtocol:
    """Hands over one body and records the response, as Granian's protocol does."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status = 0
        self.response = b""

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.response = body


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()


@pytest.fixture
async def gateway(tenant: str) -> AsyncIterator[Gateway]:
    app = Gateway(config_for(tenant), redis_url())
    app.batcher = Batcher(
        app.connection, max_pending=64, max_batch=16, flush_timeout=2.0
    )
    app.batcher.start()
    yield app
    await app.batcher.close(2.0)


async def post_webhook(
    gateway: Gateway, tenant: str, traceparent: str | None = INCOMING_TRACEPARENT
) -> FakeProtocol:
    body = standard_webhook_body()
    headers = standard_headers(body, msg_id=f"msg_{uuid.uuid4().hex}", secret=SECRET)
    if traceparent is not None:
        headers["traceparent"] = traceparent
    headers["content-length"] = str(len(body))
    protocol = FakeProtocol(body)
    await gateway.__rsgi__(FakeScope(f"/hooks/{tenant}-src", headers), protocol)
    return protocol


async def entry_headers(redis: Redis, tenant: str) -> dict[str, str]:
    ((_, fields),) = await redis.xrange(ingest_stream(tenant))
    headers: dict[str, str] = msgspec.json.decode(fields[b"headers"])
    return headers


def spans_of_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == kind]


@pytest.fixture
def json_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog lines rendered as JSON, then decoded, while the test runs.

    The processors are those of a hookgate process's JSON output that set the
    fields checked here, ``trace_id`` and ``span_id`` included. As in
    :func:`structlog.testing.capture_logs`, the configured list is changed in
    place, because loggers that are already bound keep a reference to it.
    """
    lines: list[dict[str, Any]] = []

    def collect(logger: Any, method_name: str, rendered: Any) -> Any:
        lines.append(json.loads(rendered))
        raise structlog.DropEvent

    processors = structlog.get_config()["processors"]
    saved = processors.copy()
    processors[:] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
        collect,
    ]
    structlog.configure(processors=processors)
    try:
        yield lines
    finally:
        processors[:] = saved
        structlog.configure(processors=processors)


class TestTraced:
    async def test_request_span_continues_incoming(
        self, exporter: InMemorySpanExporter, gateway: Gateway, tenant: str
    ) -> None:
        """The server span is a child of the request's traceparent."""
        protocol = await post_webhook(gateway, tenant)

        assert protocol.status == 202
        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        assert format(server.context.trace_id, "032x") == INCOMING_TRACE_ID
        assert server.parent is not None
        assert server.parent.span_id == 0x00F067AA0BA902B7
        assert server.name == "POST /hooks/{source_id}"
        assert server.attributes is not None
        assert server.attributes["http.route"] == "/hooks/{source_id}"
        assert server.attributes["http.request.method"] == "POST"
        assert server.attributes["http.response.status_code"] == 202
        assert server.attributes["http.request.body.size"] == len(
            standard_webhook_body()
        )
        assert server.attributes["hookgate.tenant"] == tenant
        assert server.attributes["hookgate.source_id"] == f"{tenant}-src"
        assert server.attributes["hookgate.provider"] == "standard-webhooks"

    async def test_entry_carries_server_span(
        self,
        exporter: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """The entry's traceparent names the server span, not the provider's."""
        await post_webhook(gateway, tenant)

        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        headers = await entry_headers(redis, tenant)
        span_id = format(server.context.span_id, "016x")
        assert headers["traceparent"] == f"00-{INCOMING_TRACE_ID}-{span_id}-01"

    async def test_flush_span_links_request(
        self, exporter: InMemorySpanExporter, gateway: Gateway, tenant: str
    ) -> None:
        """The flush is a child of the request it carried, and links it."""
        await post_webhook(gateway, tenant)

        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        (flush,) = spans_of_kind(exporter, SpanKind.CLIENT)
        assert flush.context.trace_id == server.context.trace_id
        assert flush.parent is not None
        assert flush.parent.span_id == server.context.span_id
        assert [link.context.span_id for link in flush.links] == [
            server.context.span_id
        ]
        assert flush.attributes is not None
        assert flush.attributes["hookgate.batch_size"] == 1

    async def test_consumer_span_continues_entry(
        self,
        exporter: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """The consumer's span is a child of the gateway's server span."""
        await post_webhook(gateway, tenant)
        async with running_consumer(tenant):
            await wait_processed(redis, ingest_stream(tenant))

        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        (consumer,) = spans_of_kind(exporter, SpanKind.CONSUMER)
        ((entry_id, _),) = await redis.xrange(ingest_stream(tenant))
        assert consumer.context.trace_id == server.context.trace_id
        assert consumer.parent is not None
        assert consumer.parent.span_id == server.context.span_id
        assert consumer.attributes is not None
        assert consumer.attributes["messaging.system"] == "redis"
        assert consumer.attributes["messaging.destination.name"] == ingest_stream(
            tenant
        )
        assert consumer.attributes["messaging.operation.type"] == "process"
        assert consumer.attributes["messaging.message.id"] == entry_id.decode()
        assert len(await read_events(redis, tenant)) == 1

    async def test_reclaimed_poison_keeps_trace(
        self,
        exporter: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """A reclaimed poison entry is dead-lettered with the request's trace id."""
        await post_webhook(gateway, tenant)
        stream = ingest_stream(tenant)
        await redis.xgroup_create(stream, INGEST_GROUP, id="0")
        # A consumer that reads the entry and dies leaves it pending.
        await redis.xreadgroup(INGEST_GROUP, "crashed", {stream: ">"})

        app = create_app(
            config_for(tenant),
            redis_url(),
            "reclaimer",
            visibility_timeout_ms=1,
            max_deliveries=1,
            reclaim_interval_s=0.05,
        )
        async with app:
            await wait_processed(redis, stream)

        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        (consumer,) = spans_of_kind(exporter, SpanKind.CONSUMER)
        (dead,) = await read_dead_letters(redis, tenant)
        assert dead[b"error_type"] == b"PoisonEntryError"
        assert dead[b"trace_id"] == format(server.context.trace_id, "032x").encode()
        assert consumer.context.trace_id == server.context.trace_id
        assert not consumer.status.is_ok


class TestTraceToDeadLetter:
    async def test_attempts_share_request_trace(
        self,
        exporter: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
        json_logs: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """One trace contains the request, flush, attempts and dead letter."""
        # A string key where the events stream belongs makes every publish fail
        # (WRONGTYPE), so the entry stays pending after each attempt.
        await redis.set(events_stream(tenant), b"not a stream")
        # Attempts come faster than one a second, and each one's line is checked.
        monkeypatch.setattr(
            consumer_ingest, "_failures_logged", RateLimiter(per_second=1e9)
        )

        protocol = await post_webhook(gateway, tenant, traceparent=None)
        assert protocol.status == 202

        # The first delivery and three reclaims are attempts. The fifth delivery
        # exceeds max_deliveries and dead-letters the entry.
        app = create_app(
            config_for(tenant),
            redis_url(),
            "attempts",
            visibility_timeout_ms=100,
            max_deliveries=4,
            reclaim_interval_s=0.05,
        )
        async with app:
            await wait_processed(redis, ingest_stream(tenant))

        spans = exporter.get_finished_spans()
        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        trace_id = server.context.trace_id
        trace_hex = format(trace_id, "032x")
        assert server.parent is None
        assert {span.context.trace_id for span in spans} == {trace_id}

        (flush,) = spans_of_kind(exporter, SpanKind.CLIENT)
        assert flush.parent is not None
        assert flush.parent.span_id == server.context.span_id
        assert [link.context.span_id for link in flush.links] == [
            server.context.span_id
        ]

        consumer = sorted(
            spans_of_kind(exporter, SpanKind.CONSUMER),
            key=lambda span: span.start_time or 0,
        )
        assert len(consumer) == 5
        attempts, dead_lettering = consumer[:4], consumer[4]
        for attempt in attempts:
            assert attempt.parent is not None
            assert attempt.parent.span_id == server.context.span_id
            assert attempt.status.status_code == StatusCode.ERROR
            assert attempt.status.description == "ResponseError"
            assert attempt.events == ()
        assert dead_lettering.parent is not None
        assert dead_lettering.parent.span_id == server.context.span_id
        assert dead_lettering.status.status_code == StatusCode.ERROR
        (event,) = dead_lettering.events
        assert event.name == "entry.dead_lettered"
        assert event.attributes is not None
        assert event.attributes["error.type"] == "PoisonEntryError"

        failures = [
            line for line in json_logs if line["event"] == "entry.publish_failed"
        ]
        assert [line["span_id"] for line in failures] == [
            format(attempt.context.span_id, "016x") for attempt in attempts
        ]
        assert {line["trace_id"] for line in failures} == {trace_hex}
        (dead_line,) = [
            line for line in json_logs if line["event"] == "entry.dead_lettered"
        ]
        assert dead_line["trace_id"] == trace_hex
        assert dead_line["span_id"] == format(dead_lettering.context.span_id, "016x")

        ((dead_id, _),) = await redis.xrange(dead_letter_stream(tenant))
        show_result = CliRunner(env={"REDIS_URL": redis_url()}).invoke(
            main, ["dlq", "show", "--tenant", tenant, dead_id.decode()]
        )
        assert show_result.exit_code == 0, show_result.output
        entry = json.loads(show_result.output)
        assert entry["trace_id"] == trace_hex
        assert entry["error_type"] == "PoisonEntryError"


def enable_sampler(
    sampler: Sampler, id_generator: IdGenerator | None = None
) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, id_generator=id_generator)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    return exporter


def record_started_spans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Return a list that gets the name of every span the tracer starts.

    The SDK's tracer starts a span object even for a span its sampler drops, and
    the exporter never receives that one, so the count comes from the tracer.
    """
    started: list[str] = []
    tracer = tracing._tracer
    start_span = tracer.start_span

    def counting_start_span(*args: Any, **kwargs: Any) -> Any:
        started.append(kwargs.get("name", args[0] if args else ""))
        return start_span(*args, **kwargs)

    monkeypatch.setattr(tracer, "start_span", counting_start_span)
    return started


def parse_traceparent(value: str) -> tuple[str, str, int]:
    """Return the trace id, parent span id and flags of a W3C ``traceparent``."""
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00"
    return trace_id, span_id, int(flags, 16)


class ListedIds(IdGenerator):
    """An id generator that returns the given trace ids in order."""

    def __init__(self, trace_ids: list[int]) -> None:
        self.trace_ids = trace_ids
        self._random = RandomIdGenerator()

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0)

    def generate_span_id(self) -> int:
        return self._random.generate_span_id()


@pytest.fixture
def ratio_zero() -> Iterator[InMemorySpanExporter]:
    """Trace with the parent-based ratio sampler at 0, which keeps sampled parents."""
    yield enable_sampler(ParentBasedTraceIdRatio(0.0))
    tracing.disable()


class TestSampling:
    async def test_dropped_root_starts_no_span(
        self,
        ratio_zero: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """A request the ratio drops starts no span, and its entry is written."""
        started = record_started_spans(monkeypatch)

        protocol = await post_webhook(gateway, tenant, traceparent=None)

        assert protocol.status == 202
        assert started == []
        assert ratio_zero.get_finished_spans() == ()
        assert await redis.xlen(ingest_stream(tenant)) == 1

    async def test_dropped_root_entry_unsampled(
        self,
        ratio_zero: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """The entry of a dropped request names a new trace, not sampled."""
        await post_webhook(gateway, tenant, traceparent=None)

        headers = await entry_headers(redis, tenant)
        trace_id, span_id, flags = parse_traceparent(headers["traceparent"])
        assert int(trace_id, 16) != 0
        assert int(span_id, 16) != 0
        assert flags & 0x01 == 0

    async def test_unsampled_parent_starts_no_span(
        self,
        ratio_zero: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """An unsampled traceparent starts no span, and the entry keeps its trace."""
        started = record_started_spans(monkeypatch)

        protocol = await post_webhook(gateway, tenant, UNSAMPLED_TRACEPARENT)

        assert protocol.status == 202
        assert started == []
        headers = await entry_headers(redis, tenant)
        trace_id, _, flags = parse_traceparent(headers["traceparent"])
        assert trace_id == INCOMING_TRACE_ID
        assert flags & 0x01 == 0

    async def test_sampled_parent_creates_spans(
        self,
        ratio_zero: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """A sampled traceparent gets its server and flush spans at ratio 0."""
        protocol = await post_webhook(gateway, tenant, INCOMING_TRACEPARENT)

        assert protocol.status == 202
        (server,) = spans_of_kind(ratio_zero, SpanKind.SERVER)
        (flush,) = spans_of_kind(ratio_zero, SpanKind.CLIENT)
        assert format(server.context.trace_id, "032x") == INCOMING_TRACE_ID
        assert flush.context.trace_id == server.context.trace_id
        headers = await entry_headers(redis, tenant)
        span_id = format(server.context.span_id, "016x")
        assert headers["traceparent"] == f"00-{INCOMING_TRACE_ID}-{span_id}-01"

    async def test_consumer_drops_unsampled_entry(
        self,
        ratio_zero: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """The consumer records nothing for the entry of a dropped request."""
        await post_webhook(gateway, tenant, traceparent=None)
        async with running_consumer(tenant):
            await wait_processed(redis, ingest_stream(tenant))

        assert ratio_zero.get_finished_spans() == ()
        assert len(await read_events(redis, tenant)) == 1

    async def test_sampled_root_keeps_trace_id(
        self, gateway: Gateway, tenant: str
    ) -> None:
        """A new trace starts with the trace id the ratio sampler kept."""
        # At ratio 0.5 the sampler keeps a trace id whose low 64 bits are below
        # 2**63. Had the tracer generated a second id for the span, it would
        # get the dropped one.
        kept_trace_id = (1 << 64) | 1
        dropped_trace_id = (1 << 64) | (2**64 - 1)
        exporter = enable_sampler(
            TraceIdRatioBased(0.5), ListedIds([kept_trace_id, dropped_trace_id])
        )
        try:
            await post_webhook(gateway, tenant, traceparent=None)
        finally:
            tracing.disable()

        (server,) = spans_of_kind(exporter, SpanKind.SERVER)
        assert server.context.trace_id == kept_trace_id

    async def test_dropped_parent_entry_keeps_tracestate(
        self,
        ratio_zero: InMemorySpanExporter,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """A dropped request's entry carries the provider's tracestate on."""
        body = standard_webhook_body()
        headers = standard_headers(
            body, msg_id=f"msg_{uuid.uuid4().hex}", secret=SECRET
        )
        headers["traceparent"] = UNSAMPLED_TRACEPARENT
        headers["tracestate"] = "vendor=value"
        headers["content-length"] = str(len(body))
        protocol = FakeProtocol(body)
        await gateway.__rsgi__(FakeScope(f"/hooks/{tenant}-src", headers), protocol)

        assert protocol.status == 202
        written = await entry_headers(redis, tenant)
        trace_id, span_id, flags = parse_traceparent(written["traceparent"])
        assert trace_id == INCOMING_TRACE_ID
        assert span_id != "00f067aa0ba902b7"
        assert flags == 0
        assert written["tracestate"] == "vendor=value"

    async def test_called_sampler_drops_without_span(
        self,
        monkeypatch: pytest.MonkeyPatch,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """A sampler the gateway calls per request also drops before any span."""
        exporter = enable_sampler(TraceIdRatioBased(0.0))
        try:
            assert not tracing.decides_without_sampler()
            started = record_started_spans(monkeypatch)

            protocol = await post_webhook(gateway, tenant, traceparent=None)
        finally:
            tracing.disable()

        assert protocol.status == 202
        assert started == []
        assert exporter.get_finished_spans() == ()
        headers = await entry_headers(redis, tenant)
        _, _, flags = parse_traceparent(headers["traceparent"])
        assert flags & 0x01 == 0

    async def test_sampler_read_from_environment(
        self,
        monkeypatch: pytest.MonkeyPatch,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """OTEL_TRACES_SAMPLER and its argument decide before any span starts."""
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
        try:
            assert tracing.configure("hookgate-test") is True
            started = record_started_spans(monkeypatch)

            protocol = await post_webhook(gateway, tenant, traceparent=None)
        finally:
            tracing.disable()

        assert protocol.status == 202
        assert started == []
        assert await redis.xlen(ingest_stream(tenant)) == 1


class CountingTracer(NoOpTracer):
    def __init__(self) -> None:
        self.started = 0

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        self.started += 1
        return super().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        self.started += 1
        return super().start_as_current_span(*args, **kwargs)


class TestUntraced:
    async def test_no_spans_started(
        self,
        monkeypatch: pytest.MonkeyPatch,
        gateway: Gateway,
        redis: Redis,
        tenant: str,
    ) -> None:
        """With tracing off, neither the gateway nor the consumer starts a span."""
        tracer = CountingTracer()
        monkeypatch.setattr(tracing, "_tracer", tracer)
        assert not tracing.ENABLED

        protocol = await post_webhook(gateway, tenant)
        async with running_consumer(tenant):
            await wait_processed(redis, ingest_stream(tenant))

        assert protocol.status == 202
        assert tracer.started == 0
        assert len(await read_events(redis, tenant)) == 1

    async def test_incoming_traceparent_kept(
        self, gateway: Gateway, redis: Redis, tenant: str
    ) -> None:
        """With tracing off, the entry keeps the provider's traceparent as sent."""
        await post_webhook(gateway, tenant)

        headers = await entry_headers(redis, tenant)
        assert headers["traceparent"] == INCOMING_TRACEPARENT


class TestConfigure:
    def test_off_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)

        assert tracing.configure("hookgate-test") is False
        assert not tracing.ENABLED

    def test_none_stays_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")

        assert tracing.configure("hookgate-test") is False
        assert not tracing.ENABLED

    def test_console_turns_on(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
        try:
            assert tracing.configure("hookgate-test") is True
            assert tracing.ENABLED
        finally:
            tracing.disable()

    def test_unknown_exporter_rejected(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")

        with pytest.raises(tracing.TracingConfigError, match="'zipkin'"):
            tracing.configure("hookgate-test")
        assert not tracing.ENABLED

    def test_unknown_otlp_protocol_rejected(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")

        with pytest.raises(tracing.TracingConfigError, match="'http/json'"):
            tracing.configure("hookgate-test")
        assert not tracing.ENABLED
