"""The RSGI application: routing and the ingest hot path.

Routes:

- ``POST /hooks/{source_id}``: verify, decode, enqueue, then answer 202 with the
  event id(s); any other outcome is a :class:`~hookgate.gateway.errors.Rejection`.
- ``GET /healthz``: the process is up.
- ``GET /readyz``: Redis answers and the batcher has room.
- ``GET /metrics``: this worker's counters and the tenants' stream state, in the
  Prometheus text format.

The hot path uses no web framework: Granian hands over the scope and protocol, and
every response is a single ``response_bytes`` call.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path
from typing import Any

import hiredis
import msgspec
import structlog

from hookgate import entry, fastpath, keys, metrics, tracing
from hookgate.config import Config, Source, load_config
from hookgate.gateway.batcher import Batcher, Saturated, WriteFailed
from hookgate.gateway.body import charset_of, decode_content, read_body
from hookgate.gateway.deadlines import Deadlines
from hookgate.gateway.errors import Rejection
from hookgate.gateway.ids import EventIds
from hookgate.gateway.jwks import JwksCache
from hookgate.gateway.providers import (
    Accept,
    DirectReply,
    Incoming,
    build_accept,
    single_header,
)
from hookgate.gateway.resp import RedisUnavailable, RespConnection
from hookgate.gateway.stats import counters
from hookgate.gateway.telemetry import entry_headers, metrics_response, traced_ingest
from hookgate.gateway.threads import BatchThreads
from hookgate.gateway.worker_metrics import ENV as METRICS_DIR_ENV
from hookgate.gateway.worker_metrics import SharedCounts
from hookgate.logs import RateLimiter, configure_logging
from hookgate.sentry import capture_unhandled, init_sentry

log = structlog.get_logger("hookgate.gateway")

HOOKS_PREFIX = "/hooks/"
JSON = [("content-type", "application/json")]

_encode = msgspec.json.Encoder().encode

GC_YOUNG_THRESHOLD = 20_000


class Accepted(msgspec.Struct):
    event_id: str


class AcceptedMany(msgspec.Struct):
    event_ids: list[str]


class Route(msgspec.Struct, frozen=True):
    """A source with its provider's ``accept`` function, writer and counters."""

    source: Source
    accept: Accept
    writer: entry.IngestWriter
    """Shared by every source of the tenant, so a flush groups them in one call."""
    seen_prefix: bytes
    source_and_provider: bytes
    """The packed values every entry of this source carries."""
    counts: metrics.SourceCounts


class Gateway:
    """One worker's RSGI application; Granian calls ``__rsgi__`` per request."""

    # The bench swaps in a batcher that confirms writes without Redis; see
    # hookgate.loadtest.nowrite.
    batcher_class: type[Batcher] = Batcher

    def __init__(self, config: Config, redis_url: str) -> None:
        self.config = config
        self.settings = config.gateway
        self.jwks_caches: dict[str, JwksCache] = {}
        writers: dict[str, entry.IngestWriter] = {}
        for source in config.sources:
            if source.tenant not in writers:
                writers[source.tenant] = entry.IngestWriter(
                    source.tenant,
                    keys.ingest_stream(source.tenant).encode(),
                    self.settings.dedup_window_s,
                    self.settings.max_stream_length,
                )
        self.routes = {
            source.id: Route(
                source=source,
                accept=build_accept(source, self._jwks_for),
                writer=writers[source.tenant],
                seen_prefix=keys.seen_prefix(source.tenant, source.id).encode(),
                source_and_provider=(
                    entry.bulk(source.id.encode())
                    + entry.bulk(source.provider.encode())
                ),
                counts=metrics.source_counts(source.id, source.tenant, source.provider),
            )
            for source in config.sources
        }
        self.connection = RespConnection(
            redis_url,
            connect_timeout=self.settings.flush_timeout_ms / 1000,
            scripts=(entry.INGEST_SCRIPT,),
        )
        self.batcher: Batcher | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.deadlines = Deadlines(self.settings.body_timeout_s)
        self.new_event_id = EventIds()
        self.retry_after = str(self.settings.retry_after_s)
        self._rejections_logged = RateLimiter(per_second=1.0)
        # Set when several workers share their counters; see worker_metrics.
        self.shared_counts: SharedCounts | None = None
        self.batch_threads = BatchThreads() if self.settings.batch_io_threads else None
        metrics_dir = os.environ.get(METRICS_DIR_ENV)
        if metrics_dir:
            self.shared_counts = SharedCounts(Path(metrics_dir), self._local_counts)

    def _jwks_for(self, url: str) -> JwksCache:
        cache = self.jwks_caches.get(url)
        if cache is None:
            cache = self.jwks_caches[url] = JwksCache(url)
        return cache

    # Granian calls these two around the worker's lifetime, on its event loop.
    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.batcher = self.batcher_class(
            self.connection,
            max_pending=self.settings.max_pending,
            max_batch=self.settings.max_batch,
            flush_timeout=self.settings.flush_timeout_ms / 1000,
        )
        loop.run_until_complete(self._start())

    async def _start(self) -> None:
        assert self.batcher is not None
        self.batcher.start()
        self.deadlines.start()
        if self.batch_threads is not None:
            self.batch_threads.start()
        if self.shared_counts is not None:
            assert self.loop is not None
            self.shared_counts.start(self.loop)
        # Everything built so far (config, routes, imported modules) lives as long
        # as the worker. Freezing it keeps the collector from scanning it on every
        # collection, which a profile showed at about 6 % of worker time.
        gc.collect()
        gc.freeze()
        # A request's objects die by reference counting, but the 64 or so requests
        # in flight keep enough of them alive that the default threshold of 700
        # ran a young collection every few dozen requests. Counted with callgrind,
        # this threshold saves about 1.6 % of the worker's instructions.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        log.info(
            "gateway.started",
            pid=os.getpid(),
            sources=len(self.routes),
            verifier=fastpath.IMPLEMENTATION,
        )
        self._log_expired_secrets()

    def _log_expired_secrets(self) -> None:
        # Once at start: a source whose secrets have all expired rejects every
        # request with 401, and its operator should learn that here.
        now = time.time()
        for source in self.config.sources:
            active = len(source.active_secrets(now))
            expired = len(source.secrets) - active
            if expired:
                log.warning(
                    "secret.expired",
                    source_id=source.id,
                    tenant=source.tenant,
                    expired=expired,
                    active=active,
                )

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.deadlines.stop()
        if self.batch_threads is not None:
            self.batch_threads.stop()
        if self.batcher is not None:
            timeout = self.settings.flush_timeout_ms / 1000
            loop.run_until_complete(self.batcher.close(timeout))
        if self.shared_counts is not None:
            self.shared_counts.stop()
        log.info("gateway.stopped", pid=os.getpid())

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        path: str = scope.path
        if path.startswith(HOOKS_PREFIX):
            source_id = path[len(HOOKS_PREFIX) :]
            if not tracing.ENABLED:
                await self._ingest(scope, protocol, source_id)
                return
            headers = scope.headers
            sampling = tracing.sample_request(scope.method, headers)
            if sampling.recording:
                await traced_ingest(
                    self._ingest, self.routes, scope, protocol, source_id, sampling
                )
                return
            # Most requests are dropped at the default 0.1 % sampler. They run here
            # rather than in traced_ingest, sparing every resumption of the request
            # one more coroutine frame.
            token = tracing.dropped_trace_headers.set(sampling.dropped_headers)
            try:
                await self._ingest(scope, protocol, source_id, headers)
            finally:
                tracing.dropped_trace_headers.reset(token)
        elif path == "/healthz":
            if self._allow_get(scope, protocol):
                protocol.response_bytes(200, JSON, b'{"status":"ok"}')
        elif path == "/readyz":
            if self._allow_get(scope, protocol):
                await self._ready(protocol)
        elif path == "/metrics":
            if self._allow_get(scope, protocol):
                await self._metrics(protocol)
        else:
            self._reject(protocol, Rejection(404, "not_found", "no such route"))

    def _allow_get(self, scope: Any, protocol: Any) -> bool:
        if scope.method in ("GET", "HEAD"):
            return True
        self._reject(
            protocol,
            Rejection(405, "method_not_allowed", "use GET", (("allow", "GET, HEAD"),)),
        )
        return False

    async def _ingest(
        self, scope: Any, protocol: Any, source_id: str, headers: Any = None
    ) -> None:
        """Handle one webhook delivery; ``headers`` is ``scope.headers``, if read.

        Each read of ``scope.headers`` builds a new object in Granian, which
        measured at about 0.3 us, so a caller that has read it passes it on.
        """
        route = self.routes.get(source_id)
        if route is None:
            self._reject(protocol, Rejection(404, "unknown_source", "no such source"))
            return
        if scope.method != "POST":
            self._reject(
                protocol,
                Rejection(405, "method_not_allowed", "use POST", (("allow", "POST"),)),
            )
            return

        try:
            if headers is None:
                headers = scope.headers
            # With the loop given, current_task() skips get_running_loop() and
            # its getpid() system call.
            task = asyncio.current_task(self.loop)
            self.deadlines.watch(task)
            try:
                raw_body = await read_body(
                    protocol, headers, self.settings.max_body_bytes
                )
            except asyncio.CancelledError:
                if self.deadlines.unwatch(task):
                    raise Rejection(
                        408, "body_timeout", "the request body arrived too slowly"
                    ) from None
                raise
            finally:
                self.deadlines.unwatch(task)
            # Most requests have no Content-Encoding; get() is the cheaper call
            # into Granian, and single_header() checks a repeat when one is there.
            coding = headers.get("content-encoding")
            if coding is not None:
                coding = single_header(headers, "content-encoding")
            body = decode_content(raw_body, coding, self.settings.max_body_bytes)
            incoming = Incoming(
                headers=headers,
                query_string=scope.query_string,
                body=body,
                charset=charset_of(headers.get("content-type")),
                received_at_ms=time.time_ns() // 1_000_000,
            )
            outcome = route.accept(incoming, route.source, self.settings)
            # Most providers return a list at once. OIDC and Graph sources may
            # return a coroutine, because they can wait for keys.
            if not isinstance(outcome, list) and not isinstance(outcome, DirectReply):
                outcome = await outcome
            if isinstance(outcome, DirectReply):
                # nosniff: the body echoes client input, so a browser must never
                # render it as anything but text.
                headers_out = [
                    ("content-type", outcome.content_type),
                    ("x-content-type-options", "nosniff"),
                ]
                protocol.response_bytes(outcome.status, headers_out, outcome.body)
                route.counts.statuses[outcome.status] += 1
                return
            event_ids = await self._enqueue(route, incoming, outcome)
        except Rejection as rejection:
            self._reject(protocol, rejection, route.source)
            return

        route.counts.statuses[202] += 1
        if len(event_ids) == 1:
            body = _encode(Accepted(event_ids[0]))
        else:
            body = _encode(AcceptedMany(event_ids))
        protocol.response_bytes(202, JSON, body)

    async def _enqueue(
        self, route: Route, incoming: Incoming, drafts: list[Any]
    ) -> list[str]:
        batcher = self.batcher
        assert batcher is not None
        source = route.source
        if len(drafts) > self.settings.max_pending:
            # Such a request could never fit in the queue, so a retry cannot help.
            raise Rejection(
                413,
                "too_many_events",
                f"request carries {len(drafts)} events; at most"
                f" {self.settings.max_pending} fit",
            )
        event_ids: list[str] = []
        seen_keys: list[bytes] = []
        entries: list[bytes] = []
        received_at = str(incoming.received_at_ms).encode()
        seen_prefix = route.seen_prefix
        source_and_provider = route.source_and_provider
        traced = tracing.ENABLED
        # In a request the sampler dropped, the entries carry the unsampled
        # headers it chose, and the flush has no span to link.
        dropped = tracing.dropped_trace_headers.get() if traced else None
        no_dedup_key = route.writer.no_dedup_key
        for draft in drafts:
            event_id = self.new_event_id()
            provider_event_id = draft.provider_event_id.encode()
            seen_keys.append(
                entry.bulk(seen_prefix + provider_event_id)
                if draft.dedup
                else no_dedup_key
            )
            entries.append(
                entry.pack_entry(
                    event_id=event_id.encode(),
                    type=draft.type.encode(),
                    source_and_provider=source_and_provider,
                    received_at=received_at,
                    provider_event_id=provider_event_id,
                    headers=_encode(
                        entry_headers(draft.headers, dropped)
                        if traced
                        else draft.headers
                    ),
                    body=draft.body,
                )
            )
            event_ids.append(event_id)

        count = len(event_ids)
        try:
            future = batcher.submit(
                route.writer,
                b"".join(seen_keys),
                b"".join(entries),
                count,
                tracing.current_span_context() if traced and dropped is None else None,
            )
        except Saturated as exc:
            # _reject counts the rejection, as it does every other.
            raise self._unavailable("overloaded", str(exc)) from None

        try:
            replies = await future
        except (RedisUnavailable, WriteFailed) as exc:
            self._log_unavailable(source, exc)
            raise self._unavailable(
                "unavailable", "could not write to Redis, retry later"
            ) from None

        # A repeat within the dedup window is answered like the original.
        full = False
        written = 0
        for index in range(count):
            status = replies[2 * index]
            if status == entry.INGEST_WRITTEN:
                written += 1
            elif status == entry.INGEST_DUPLICATE:
                route.counts.duplicates += 1
                event_ids[index] = replies[2 * index + 1].decode()
            elif status == entry.INGEST_FULL:
                full = True
        # Counted before a 429 too, because some items of a collection may have
        # been written before the stream filled up.
        route.counts.accepted += written
        if full:
            # Each entry of a collection checks the length on its own, so some of
            # its items may be written while others are rejected. The whole request
            # still gets 429, because a 202 would drop the rejected items. The
            # written items set their seen keys, so the provider's retry gets their
            # original event ids and writes only the rest, except Graph items that
            # are never deduplicated (see providers/graph.py), which it writes again.
            raise Rejection(
                429,
                "tenant_backlogged",
                "the ingest stream of this source's tenant is full; retry later",
                (("retry-after", self.retry_after),),
            )
        return event_ids

    def _unavailable(self, code: str, detail: str) -> Rejection:
        return Rejection(503, code, detail, (("retry-after", self.retry_after),))

    def _log_unavailable(self, source: Source, exc: Exception) -> None:
        suppressed = self._rejections_logged.allow(("unavailable", source.id))
        if suppressed is not None:
            log.error(
                "webhook.unavailable",
                source_id=source.id,
                tenant=source.tenant,
                error=str(exc),
                error_type=type(exc).__name__,
                suppressed=suppressed,
            )

    def _reject(
        self, protocol: Any, rejection: Rejection, source: Source | None = None
    ) -> None:
        counters[f"rejected.{rejection.code}"] += 1
        if source is None:
            metrics.NO_SOURCE.statuses[rejection.status] += 1
        else:
            self.routes[source.id].counts.statuses[rejection.status] += 1
            suppressed = self._rejections_logged.allow((rejection.code, source.id))
            if suppressed is not None:
                log.info(
                    "webhook.rejected",
                    source_id=source.id,
                    tenant=source.tenant,
                    provider=source.provider,
                    status=rejection.status,
                    reason=rejection.code,
                    suppressed=suppressed,
                )
        headers = [*JSON, *rejection.headers]
        protocol.response_bytes(rejection.status, headers, rejection.body())

    def _local_counts(self) -> metrics.GatewayCounts:
        waiting = self.batcher.waiting if self.batcher is not None else 0
        return metrics.local_gateway_counts(waiting, counters)

    async def _metrics(self, protocol: Any) -> None:
        shared = self.shared_counts
        try:
            counts = self._local_counts() if shared is None else shared.totals()
        except OSError as exc:
            # One worker's own counters would make the totals jump between
            # scrapes, so the scrape fails instead and Prometheus records a gap.
            suppressed = self._rejections_logged.allow("metrics")
            if suppressed is not None:
                log.warning(
                    "metrics.unavailable", error=str(exc), suppressed=suppressed
                )
            # Not through _reject, which counts ingest rejections.
            unavailable = Rejection(
                503,
                "metrics_unavailable",
                "cannot read or write the workers' metrics snapshots",
            )
            protocol.response_bytes(503, JSON, unavailable.body())
            return
        body = await metrics_response(
            self.config,
            self.connection,
            counts,
            self.settings.flush_timeout_ms / 1000,
        )
        protocol.response_bytes(200, [("content-type", metrics.CONTENT_TYPE)], body)

    async def _ready(self, protocol: Any) -> None:
        problems = []
        batcher = self.batcher
        if batcher is not None and batcher.saturated:
            problems.append("batcher saturated")
        try:
            reply = await self.connection.execute(
                "PING", timeout=self.settings.flush_timeout_ms / 1000
            )
            if isinstance(reply, hiredis.ReplyError):
                problems.append(f"redis: {reply}")
        except RedisUnavailable as exc:
            problems.append(str(exc))
        if problems:
            body = _encode({"status": "unavailable", "problems": problems})
            protocol.response_bytes(
                503, [*JSON, ("retry-after", self.retry_after)], body
            )
        else:
            protocol.response_bytes(200, JSON, b'{"status":"ready"}')


def create_app(gateway_class: type[Gateway] = Gateway) -> Gateway:
    """Build a worker's application from ``HOOKGATE_CONFIG`` and ``REDIS_URL``.

    Granian calls this in each worker process (``factory=True``).
    """
    configure_logging()
    tracing.configure("hookgate-gateway")
    config = load_config(os.environ["HOOKGATE_CONFIG"])
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    app = gateway_class(config, redis_url)
    if init_sentry(config, "gateway"):
        capture_unhandled(app)
    return app
