"""Per-process counters and their Prometheus text rendering.

The gateway and the consumers count in plain integers, dicts and fixed-bucket
histograms, so a request costs two increments and no metrics-library call. At
scrape time :func:`render` turns them, together with stream state read from Redis
then, into Prometheus text through ``prometheus_client``'s metric families.

``prometheus_client`` is used directly rather than the OpenTelemetry Prometheus
exporter, because an OpenTelemetry counter's ``add`` takes a lock and hashes its
attribute dict on every call. Here the request path only increments an integer
attribute and a ``defaultdict`` value of its source's :class:`SourceCounts`.

Tenant labels are bounded: the :data:`TOP_TENANTS` tenants with the most traffic
keep their name, and every other tenant is summed under ``other``.

This module must not import the gateway or the consumers.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
TOP_TENANTS = 20
OTHER_TENANT = "other"


class Histogram:
    """Cumulative-at-scrape histogram with fixed upper bounds, cheap to observe."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = sorted(bounds)
        # One count per bound plus the +Inf bucket; made cumulative at scrape.
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            total += count
            buckets.append((_bound_text(bound), total))
        total += self.counts[-1]
        buckets.append(("+Inf", total))
        return HistogramMetricFamily(
            name, documentation, buckets=buckets, sum_value=self.sum
        )


def _bound_text(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


class SourceCounts:
    """Requests and events of one source, counted by the gateway.

    ``accepted`` counts the events written to the ingest stream, ``duplicates``
    the repeats that got an earlier event's id in the response and were not written.
    """

    __slots__ = ("accepted", "duplicates", "provider", "statuses", "tenant")

    def __init__(self, tenant: str, provider: str) -> None:
        self.tenant = tenant
        self.provider = provider
        self.accepted = 0
        self.duplicates = 0
        # Responses by HTTP status; defaultdict's C increment avoids the slower
        # Counter subclass lookup on the request path.
        self.statuses: collections.defaultdict[int, int] = collections.defaultdict(int)


# Gateway counters by source id; each Granian worker process has its own.
# NO_SOURCE counts responses to requests that matched no source.
sources: dict[str, SourceCounts] = {}
NO_SOURCE = SourceCounts(tenant="", provider="none")


def source_counts(source_id: str, tenant: str, provider: str) -> SourceCounts:
    """Return the counters of a source, creating them on first use."""
    counts = sources.get(source_id)
    if counts is None:
        counts = sources[source_id] = SourceCounts(tenant, provider)
    return counts


def accepted_by_tenant(
    by_source: Mapping[str, SourceCounts],
) -> collections.Counter[str]:
    """Return the events written per tenant, summed over its sources."""
    return _sum_by_tenant(by_source, lambda counts: counts.accepted)


def duplicates_by_tenant(
    by_source: Mapping[str, SourceCounts],
) -> collections.Counter[str]:
    """Return the repeats not written again per tenant, summed over its sources."""
    return _sum_by_tenant(by_source, lambda counts: counts.duplicates)


def _sum_by_tenant(
    by_source: Mapping[str, SourceCounts], count: Callable[[SourceCounts], int]
) -> collections.Counter[str]:
    totals: collections.Counter[str] = collections.Counter()
    for counts in by_source.values():
        totals[counts.tenant] += count(counts)
    return totals


def requests_by_provider(
    by_source: Mapping[str, SourceCounts], no_source: SourceCounts
) -> collections.Counter[tuple[str, int]]:
    """Return the responses per (provider, status), summed over sources."""
    totals: collections.Counter[tuple[str, int]] = collections.Counter()
    for counts in (*by_source.values(), no_source):
        for status, count in counts.statuses.items():
            totals[(counts.provider, status)] += count
    return totals


FLUSH_SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FLUSH_SECONDS_BOUNDS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
flush_sizes = Histogram(FLUSH_SIZE_BOUNDS)
flush_seconds = Histogram(FLUSH_SECONDS_BOUNDS)

REJECTED_PREFIX = "rejected."


@dataclass
class GatewayCounts:
    """The gateway's counters, of one worker or summed over all of them."""

    sources: Mapping[str, SourceCounts]
    no_source: SourceCounts
    # Rejected requests by reason, such as "invalid_signature".
    rejections: Mapping[str, int]
    flush_sizes: Histogram
    flush_seconds: Histogram
    # Entries waiting for a flush.
    waiting: int


def local_gateway_counts(waiting: int, counters: Mapping[str, int]) -> GatewayCounts:
    """Return this process's gateway counters; ``counters`` are the gateway's
    dotted counters, of which the ``rejected.*`` ones count rejections."""
    return GatewayCounts(
        sources=sources,
        no_source=NO_SOURCE,
        rejections={
            key[len(REJECTED_PREFIX) :]: count
            for key, count in counters.items()
            if key.startswith(REJECTED_PREFIX)
        },
        flush_sizes=flush_sizes,
        flush_seconds=flush_seconds,
        waiting=waiting,
    )


# Consumer counters, by tenant: entries handled, reclaimed, dead-lettered (the
# second key is the error class name).
processed: collections.Counter[str] = collections.Counter()
reclaimed: collections.Counter[str] = collections.Counter()
dead_letters: collections.Counter[tuple[str, str]] = collections.Counter()


@dataclass(frozen=True)
class StreamState:
    """One tenant's ingest stream: its length and the ingest group's backlog."""

    length: int
    lag: int
    pending: int


def top_tenants(traffic: Mapping[str, int], count: int = TOP_TENANTS) -> set[str]:
    """Return the ``count`` tenants with the most traffic."""
    ranked = sorted(traffic.items(), key=lambda item: (-item[1], item[0]))
    return {tenant for tenant, _ in ranked[:count]}


def _label(tenant: str, top: set[str]) -> str:
    return tenant if tenant in top else OTHER_TENANT


def _by_tenant(values: Mapping[str, int], top: set[str]) -> collections.Counter[str]:
    bounded: collections.Counter[str] = collections.Counter()
    for tenant, value in values.items():
        bounded[_label(tenant, top)] += value
    return bounded


def stream_families(streams: Mapping[str, StreamState], top: set[str]) -> list[Metric]:
    """Build the per-tenant stream gauges, summing tenants outside ``top``."""
    length = GaugeMetricFamily(
        "hookgate_stream_length", "Entries in the ingest stream.", labels=["tenant"]
    )
    lag = GaugeMetricFamily(
        "hookgate_group_lag",
        "Entries of the ingest stream the consumer group has not read yet.",
        labels=["tenant"],
    )
    pending = GaugeMetricFamily(
        "hookgate_group_pending",
        "Entries read by the consumer group and not acknowledged yet.",
        labels=["tenant"],
    )
    for name, family in (("length", length), ("lag", lag), ("pending", pending)):
        values = {tenant: getattr(state, name) for tenant, state in streams.items()}
        for tenant, value in sorted(_by_tenant(values, top).items()):
            family.add_metric([tenant], value)
    return [length, lag, pending]


def gateway_families(counts: GatewayCounts) -> list[Metric]:
    """Build the gateway's counter, histogram and gauge families from ``counts``."""
    accepted = accepted_by_tenant(counts.sources)
    top = top_tenants(accepted)
    requests_family = CounterMetricFamily(
        "hookgate_requests",
        "Ingest requests answered, by provider and HTTP status.",
        labels=["provider", "status"],
    )
    by_provider = requests_by_provider(counts.sources, counts.no_source)
    for (provider, status), count in sorted(by_provider.items()):
        requests_family.add_metric([provider, str(status)], count)
    accepted_family = CounterMetricFamily(
        "hookgate_events_accepted",
        "Events written to an ingest stream.",
        labels=["tenant"],
    )
    for tenant, count in sorted(_by_tenant(accepted, top).items()):
        accepted_family.add_metric([tenant], count)
    duplicate_family = CounterMetricFamily(
        "hookgate_events_duplicate",
        "Repeated events given the earlier event's id and not written again.",
        labels=["tenant"],
    )
    duplicates = duplicates_by_tenant(counts.sources)
    for tenant, count in sorted(_by_tenant(duplicates, top).items()):
        duplicate_family.add_metric([tenant], count)
    waiting_family = GaugeMetricFamily(
        "hookgate_batcher_waiting",
        "Entries waiting for a flush.",
        value=counts.waiting,
    )
    rejections_family = CounterMetricFamily(
        "hookgate_rejections", "Requests rejected, by reason.", labels=["reason"]
    )
    for reason, count in sorted(counts.rejections.items()):
        rejections_family.add_metric([reason], count)
    return [
        requests_family,
        accepted_family,
        duplicate_family,
        counts.flush_sizes.family("hookgate_flush_batch_size", "Entries per flush."),
        counts.flush_seconds.family(
            "hookgate_flush_duration_seconds", "Time from flush start to its replies."
        ),
        waiting_family,
        rejections_family,
    ]


def consumer_families() -> list[Metric]:
    """Build the consumer's counter families from this process."""
    top = top_tenants(processed)
    processed_family = CounterMetricFamily(
        "hookgate_entries_processed", "Ingest entries handled.", labels=["tenant"]
    )
    for tenant, count in sorted(_by_tenant(processed, top).items()):
        processed_family.add_metric([tenant], count)
    reclaimed_family = CounterMetricFamily(
        "hookgate_entries_reclaimed",
        "Pending entries claimed from another consumer.",
        labels=["tenant"],
    )
    for tenant, count in sorted(_by_tenant(reclaimed, top).items()):
        reclaimed_family.add_metric([tenant], count)
    dead_family = CounterMetricFamily(
        "hookgate_dead_letters",
        "Entries written to a dead-letter stream, by error class.",
        labels=["tenant", "error_type"],
    )
    bounded: collections.Counter[tuple[str, str]] = collections.Counter()
    for (tenant, error_type), count in dead_letters.items():
        bounded[(_label(tenant, top), error_type)] += count
    for (tenant, error_type), count in sorted(bounded.items()):
        dead_family.add_metric([tenant, error_type], count)
    return [processed_family, reclaimed_family, dead_family]


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(families: list[Metric]) -> bytes:
    """Return ``families`` in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(_Families(families))
