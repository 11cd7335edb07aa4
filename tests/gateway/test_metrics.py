"""``GET /metrics`` of a real gateway process, and the counters behind it."""

from __future__ import annotations

import json

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from hookgate import metrics
from hookgate.tests.gateway.helpers import entry_count, standard_headers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of a Prometheus text page by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def post_signed(http: httpx.Client, msg_id: str) -> httpx.Response:
    body = json.dumps({"type": "invoice.paid", "id": msg_id}).encode()
    return http.post(
        "/hooks/acme-mail",
        content=body,
        headers=standard_headers(body, msg_id=msg_id),
    )


class TestMetricsRoute:
    def test_counts_requests_and_streams(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        """After a few requests the page counts them by provider, status, reason."""
        for index in range(3):
            assert post_signed(http, f"msg_metrics_{index}").status_code == 202
        bad = http.post(
            "/hooks/acme-mail",
            content=b"{}",
            headers={**standard_headers(b"{}"), "webhook-signature": "v1,AAAA"},
        )
        assert bad.status_code == 401
        assert http.post("/hooks/nobody", content=b"{}").status_code == 404
        assert entry_count(redis_client) == 3

        response = http.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)
        requests = "hookgate_requests_total"
        assert (
            found[(requests, (("provider", "standard-webhooks"), ("status", "202")))]
            == 3
        )
        assert (
            found[(requests, (("provider", "standard-webhooks"), ("status", "401")))]
            == 1
        )
        assert found[(requests, (("provider", "none"), ("status", "404")))] == 1
        assert found[("hookgate_events_accepted_total", (("tenant", "acme"),))] == 3
        rejections = "hookgate_rejections_total"
        assert found[(rejections, (("reason", "invalid_signature"),))] == 1
        assert found[(rejections, (("reason", "unknown_source"),))] == 1
        assert found[("hookgate_stream_length", (("tenant", "acme"),))] == 3
        assert found[("hookgate_flush_batch_size_count", ())] >= 1
        assert found[("hookgate_flush_duration_seconds_count", ())] >= 1
        assert found[("hookgate_batcher_waiting", ())] == 0

    def test_repeats_counted_apart(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        accepted = ("hookgate_events_accepted_total", (("tenant", "acme"),))
        duplicate = ("hookgate_events_duplicate_total", (("tenant", "acme"),))
        before = samples(http.get("/metrics").text)
        entries_before = entry_count(redis_client)

        for _ in range(3):
            assert post_signed(http, "msg_metrics_repeated").status_code == 202

        after = samples(http.get("/metrics").text)
        assert entry_count(redis_client) == entries_before + 1
        assert after[accepted] == before[accepted] + 1
        assert after[duplicate] == before.get(duplicate, 0) + 2

    def test_post_not_allowed(self, http: httpx.Client) -> None:
        response = http.post("/metrics")

        assert response.status_code == 405


class TestTenantLabels:
    def test_top_tenants_by_traffic(self) -> None:
        traffic = {"a": 5, "b": 9, "c": 1, "d": 9}

        assert metrics.top_tenants(traffic, count=2) == {"b", "d"}

    def test_rest_summed_as_other(self) -> None:
        streams = {
            tenant: metrics.StreamState(length=length, lag=0, pending=0)
            for tenant, length in (("a", 10), ("b", 20), ("c", 5))
        }

        (length, _, _) = metrics.stream_families(streams, top={"b"})

        values = {sample.labels["tenant"]: sample.value for sample in length.samples}
        assert values == {"b": 20, "other": 15}


class TestHistogram:
    def test_buckets_cumulative(self) -> None:
        histogram = metrics.Histogram([1, 10])
        for value in (0.5, 1, 5, 50):
            histogram.observe(value)

        family = histogram.family("h", "test histogram")

        counts = {
            sample.labels["le"]: sample.value
            for sample in family.samples
            if sample.name == "h_bucket"
        }
        assert counts == {"1": 2, "10": 3, "+Inf": 4}
        assert histogram.sum == 56.5
