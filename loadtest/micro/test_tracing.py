"""The tracing work of one ingest request, without the request's own work.

Each benchmark runs :func:`~hookgate.gateway.telemetry.traced_ingest` around a stub
ingest that does only what the gateway's ingest does for tracing: with tracing on,
it rewrites the entry's headers with the current trace context and reads the span
context that the batcher links. The baseline calls the stub with tracing off, as
the gateway does.

The dropped benchmarks use the parent-based ratio sampler at 0, for which the
gateway decides without calling the sampler, as it does for hookgate's default
sampler. ``test_unsampled_called_sampler`` drops with ``traceidratio`` at 0,
which the gateway calls per request. ``test_dropped_by_tracer`` is the path that
every unsampled request took before the gateway decided first: the SDK's tracer
decided, and returned a non-recording span. The sampled benchmarks use
``parentbased_always_on``, as ``OTEL_TRACES_SAMPLER`` sets it, and end their spans
into a processor that drops them, so they time span creation but no export.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import (
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from pytest_benchmark.fixture import BenchmarkFixture

from hookgate import tracing
from hookgate.gateway.telemetry import RecordingProtocol, entry_headers, traced_ingest

SOURCE_ID = "acme-mail"
HEADERS = {
    "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    "webhook-timestamp": "1764871200",
    "content-type": "application/json",
}
UNSAMPLED_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
SAMPLED_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

pytestmark = pytest.mark.benchmark(group="tracing of one request")


class Scope:
    method = "POST"

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class Protocol:
    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status


class DroppingProcessor(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        pass


async def stub_ingest(scope: Any, protocol: Any, source_id: str) -> None:
    if tracing.ENABLED:
        entry_headers(HEADERS)
        tracing.current_span_context()
    protocol.response_bytes(202, [], b'{"event_id":"evt_1"}')


async def ingest_before_sampling_first(
    ingest: Callable[[Any, Any, str], Awaitable[None]],
    routes: dict[str, Any],
    scope: Any,
    protocol: Any,
    source_id: str,
) -> None:
    # traced_ingest as it was before it consulted the sampler: every request
    # enters the server span, and the tracer's sampler decides there.
    carrier = (
        {"traceparent": value} if (value := scope.headers.get("traceparent")) else {}
    )
    sampling = tracing.RequestSampling(True, tracing.extract(carrier), 0, None)
    recorder = RecordingProtocol(protocol)
    with tracing.server_span(scope.method, None, source_id, sampling) as span:
        await ingest(scope, recorder, source_id)
        tracing.record_response(span, recorder.status, recorder.body_size)


def run_request(
    traced: Callable[..., Coroutine[Any, Any, None]] | None,
    scope: Scope,
    protocol: Protocol,
) -> None:
    # The stub never suspends, so one send runs the coroutine to its end without
    # an event loop, whose overhead would dwarf the work measured here.
    if traced is None:
        coroutine = stub_ingest(scope, protocol, SOURCE_ID)
    else:
        coroutine = traced(stub_ingest, {}, scope, protocol, SOURCE_ID)
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("the stub ingest suspended")


def enable_sampler(sampler: Sampler) -> None:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(DroppingProcessor())
    tracing.enable(provider)


@pytest.fixture
def ratio_zero() -> Iterator[None]:
    enable_sampler(ParentBasedTraceIdRatio(0.0))
    assert tracing.decides_without_sampler()
    yield
    tracing.disable()


@pytest.fixture
def called_ratio_zero() -> Iterator[None]:
    enable_sampler(TraceIdRatioBased(0.0))
    assert not tracing.decides_without_sampler()
    yield
    tracing.disable()


@pytest.fixture
def always_on() -> Iterator[None]:
    enable_sampler(DEFAULT_ON)
    yield
    tracing.disable()


def test_untraced(benchmark: BenchmarkFixture) -> None:
    protocol = Protocol()
    benchmark(run_request, None, Scope(dict(HEADERS)), protocol)
    assert protocol.status == 202


def test_unsampled(benchmark: BenchmarkFixture, ratio_zero: None) -> None:
    protocol = Protocol()
    benchmark(run_request, traced_ingest, Scope(dict(HEADERS)), protocol)
    assert protocol.status == 202


def test_unsampled_parent(benchmark: BenchmarkFixture, ratio_zero: None) -> None:
    protocol = Protocol()
    scope = Scope({**HEADERS, "traceparent": UNSAMPLED_PARENT})
    benchmark(run_request, traced_ingest, scope, protocol)
    assert protocol.status == 202


def test_unsampled_called_sampler(
    benchmark: BenchmarkFixture, called_ratio_zero: None
) -> None:
    protocol = Protocol()
    benchmark(run_request, traced_ingest, Scope(dict(HEADERS)), protocol)
    assert protocol.status == 202


def test_dropped_by_tracer(benchmark: BenchmarkFixture, ratio_zero: None) -> None:
    protocol = Protocol()
    scope = Scope(dict(HEADERS))
    benchmark(run_request, ingest_before_sampling_first, scope, protocol)
    assert protocol.status == 202


def test_sampled(benchmark: BenchmarkFixture, always_on: None) -> None:
    protocol = Protocol()
    benchmark(run_request, traced_ingest, Scope(dict(HEADERS)), protocol)
    assert protocol.status == 202


def test_sampled_parent(benchmark: BenchmarkFixture, always_on: None) -> None:
    protocol = Protocol()
    scope = Scope({**HEADERS, "traceparent": SAMPLED_PARENT})
    benchmark(run_request, traced_ingest, scope, protocol)
    assert protocol.status == 202
