"""The gateway's traced ingest path and its ``GET /metrics`` response.

:func:`traced_ingest` runs only when :data:`hookgate.tracing.ENABLED` is set; the
untraced hot path in :mod:`hookgate.gateway.app` calls nothing here per request.
:func:`metrics_response` reads the stream state of every tenant from Redis at
scrape time, so no request pays for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import hiredis

from hookgate import keys, metrics, tracing
from hookgate.config import Config
from hookgate.gateway.resp import RedisUnavailable, RespConnection

TRACE_FIELDS = ("traceparent", "tracestate")


class RecordingProtocol:
    """An RSGI protocol wrapper that records the response status and body size."""

    __slots__ = ("_protocol", "body_size", "status")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self.status = 0
        self.body_size = 0

    async def __call__(self) -> bytes:
        body: bytes = await self._protocol()
        self.body_size += len(body)
        return body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._protocol:
            self.body_size += len(chunk)
            yield chunk

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self._protocol.response_bytes(status, headers, body)


async def traced_ingest(
    ingest: Callable[[Any, Any, str], Awaitable[None]],
    routes: dict[str, Any],
    scope: Any,
    protocol: Any,
    source_id: str,
    sampling: tracing.RequestSampling | None = None,
) -> None:
    """Run ``ingest`` inside the request's server span, if the sampler keeps it.

    ``sampling`` is the decision of :func:`hookgate.tracing.sample_request` when
    the caller has made it already.

    The span's parent is the request's ``traceparent``, when one is present. A
    request that the sampler drops runs without a span or OpenTelemetry context.
    Its entries get the unsampled headers that
    :func:`hookgate.tracing.sample_request` chose, through
    :data:`hookgate.tracing.dropped_trace_headers`.
    """
    if sampling is None:
        sampling = tracing.sample_request(scope.method, scope.headers)
    if not sampling.recording:
        token = tracing.dropped_trace_headers.set(sampling.dropped_headers)
        try:
            await ingest(scope, protocol, source_id)
        finally:
            tracing.dropped_trace_headers.reset(token)
        return

    route = routes.get(source_id)
    source = route.source if route is not None else None
    recorder = RecordingProtocol(protocol)
    with tracing.server_span(scope.method, source, source_id, sampling) as span:
        await ingest(scope, recorder, source_id)
        tracing.record_response(span, recorder.status, recorder.body_size)


def entry_headers(
    headers: dict[str, str], trace_headers: dict[str, str] | None = None
) -> dict[str, str]:
    """Return ``headers`` with the trace context of the current server span.

    The incoming ``traceparent`` names the provider's span, so the consumer would
    otherwise skip the gateway's span in the trace. In a request that the sampler
    dropped, the context is the unsampled one that it chose instead.
    """
    if "traceparent" in headers or "tracestate" in headers:
        headers = {
            name: value for name, value in headers.items() if name not in TRACE_FIELDS
        }
    if trace_headers is None:
        trace_headers = tracing.current_trace_headers()
    return {**headers, **trace_headers}


def _field(reply: list[Any], name: bytes) -> Any:
    for index in range(0, len(reply) - 1, 2):
        if reply[index] == name:
            return reply[index + 1]
    return None


async def read_stream_state(
    connection: RespConnection, tenants: Sequence[str], timeout: float
) -> dict[str, metrics.StreamState]:
    """Read each tenant's ingest stream length and ingest group backlog.

    A tenant whose stream or group does not exist yet is left out. Raises
    :class:`RedisUnavailable` when Redis does not reply in ``timeout`` seconds.
    """
    states: dict[str, metrics.StreamState] = {}
    group = keys.INGEST_GROUP.encode()
    # NOTE: a scrape makes two round trips per tenant, one after the other. With
    # thousands of tenants a scrape gets slow, and a pipeline would cut it to one.
    for tenant in tenants:
        stream = keys.ingest_stream(tenant)
        length = await connection.execute("XLEN", stream, timeout=timeout)
        groups = await connection.execute("XINFO", "GROUPS", stream, timeout=timeout)
        if isinstance(length, hiredis.ReplyError) or isinstance(
            groups, hiredis.ReplyError
        ):
            continue
        lag = pending = 0
        for info in groups:
            if _field(info, b"name") == group:
                # lag is nil when Redis cannot compute it, e.g. after an XDEL.
                lag = int(_field(info, b"lag") or 0)
                pending = int(_field(info, b"pending") or 0)
        states[tenant] = metrics.StreamState(
            length=int(length), lag=lag, pending=pending
        )
    return states


async def metrics_response(
    config: Config,
    connection: RespConnection,
    counts: metrics.GatewayCounts,
    timeout: float,
) -> bytes:
    """Render the gateway's counters and the tenants' stream state as text.

    ``counts`` are this worker's, or every worker's summed; see
    :mod:`hookgate.gateway.worker_metrics`. Stream gauges are left out when Redis
    is unreachable, so a scrape still returns the counters.
    """
    families = metrics.gateway_families(counts)
    try:
        streams = await read_stream_state(connection, config.tenants, timeout)
    except RedisUnavailable:
        streams = {}
    top = metrics.top_tenants(metrics.accepted_by_tenant(counts.sources))
    families.extend(metrics.stream_families(streams, top))
    return metrics.render(families)
