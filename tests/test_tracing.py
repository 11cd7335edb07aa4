"""The sampler that tracing.configure builds, and sample_request's decisions.

sample_request decides without calling the sampler when it can read the
sampler's rules, so these tests compare its decisions with the SDK's sampler and
propagator on the same input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    DEFAULT_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from structlog.testing import capture_logs

from hookgate import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
LOW_64_BITS = (1 << 64) - 1


def configure_from(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Sampler:
    """Run tracing.configure with the console exporter and ``variables``.

    Returns the sampler it installed. Variables not given are unset.
    """
    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert tracing.configure("hookgate-test") is True
    sampler = tracing._sampler
    assert sampler is not None
    return sampler


@pytest.fixture(autouse=True)
def tracing_off() -> Iterator[None]:
    yield
    tracing.disable()


class TestConfiguredSampler:
    def test_default_is_parentbased_ratio(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without OTEL_TRACES_SAMPLER, new traces are sampled at 0.1 %."""
        sampler = configure_from(monkeypatch)

        assert isinstance(sampler, ParentBasedTraceIdRatio)
        assert tracing.DEFAULT_SAMPLER_RATIO == 0.001
        expected = ParentBasedTraceIdRatio(0.001).get_description()
        assert sampler.get_description() == expected

    def test_default_decides_without_sampler(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure_from(monkeypatch)

        assert tracing.decides_without_sampler()

    def test_empty_variable_means_default(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sampler = configure_from(monkeypatch, OTEL_TRACES_SAMPLER="")

        assert isinstance(sampler, ParentBasedTraceIdRatio)

    def test_always_on_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OTEL_TRACES_SAMPLER=parentbased_always_on samples every new trace."""
        sampler = configure_from(
            monkeypatch, OTEL_TRACES_SAMPLER="parentbased_always_on"
        )

        assert sampler.get_description() == DEFAULT_ON.get_description()
        decisions = {tracing.sample_request("POST", {}).recording for _ in range(50)}
        assert decisions == {True}

    def test_ratio_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sampler = configure_from(
            monkeypatch,
            OTEL_TRACES_SAMPLER="parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0.25",
        )

        expected = ParentBasedTraceIdRatio(0.25).get_description()
        assert sampler.get_description() == expected

    def test_traceidratio_from_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The non-parent-based sampler is honoured, and called per request."""
        sampler = configure_from(
            monkeypatch,
            OTEL_TRACES_SAMPLER="traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0.5",
        )

        assert type(sampler) is TraceIdRatioBased
        assert sampler.get_description() == "TraceIdRatioBased{0.5}"
        assert not tracing.decides_without_sampler()

    def test_sampler_arg_alone_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The argument alone leaves the default sampler, and logs a warning."""
        with capture_logs() as logs:
            sampler = configure_from(monkeypatch, OTEL_TRACES_SAMPLER_ARG="0.5")

        expected = ParentBasedTraceIdRatio(0.001).get_description()
        assert sampler.get_description() == expected
        warnings = [
            line for line in logs if line["event"] == "tracing.sampler_arg_ignored"
        ]
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning"

    def test_configured_line_names_sampler(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with capture_logs() as logs:
            configure_from(monkeypatch)

        (line,) = [line for line in logs if line["event"] == "tracing.configured"]
        assert line["exporters"] == ["console"]
        assert line["sampler"] == ParentBasedTraceIdRatio(0.001).get_description()


class ParentBasedSubclass(ParentBased):
    def should_sample(self, *args: Any, **kwargs: Any) -> Any:
        return super().should_sample(*args, **kwargs)


class SequentialIds(IdGenerator):
    def __init__(self) -> None:
        self.next_id = 0

    def generate_trace_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def generate_span_id(self) -> int:
        self.next_id += 1
        return self.next_id


class TestDecidesWithoutSampler:
    @pytest.mark.parametrize(
        "sampler",
        [ParentBasedTraceIdRatio(0.01), ParentBasedTraceIdRatio(0.0), DEFAULT_ON],
        ids=["ratio", "ratio_zero", "always_on"],
    )
    def test_parent_based_samplers_read(self, sampler: Sampler) -> None:
        tracing.enable(TracerProvider(sampler=sampler))

        assert tracing.decides_without_sampler()

    @pytest.mark.parametrize(
        "sampler",
        [
            TraceIdRatioBased(0.5),
            ALWAYS_ON,
            ParentBasedSubclass(ALWAYS_ON),
            ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON),
            ParentBased(ParentBasedTraceIdRatio(0.5)),
        ],
        ids=["traceidratio", "always_on", "subclass", "delegate", "nested"],
    )
    def test_other_samplers_called(self, sampler: Sampler) -> None:
        tracing.enable(TracerProvider(sampler=sampler))

        assert not tracing.decides_without_sampler()

    def test_other_id_generator_called(self) -> None:
        """Ids that are not random go through the tracer's generator and sampler."""
        provider = TracerProvider(
            sampler=ParentBasedTraceIdRatio(0.5), id_generator=SequentialIds()
        )
        tracing.enable(provider)

        assert not tracing.decides_without_sampler()


def draws(monkeypatch: pytest.MonkeyPatch, values: list[int]) -> None:
    """Make tracing's random draws return ``values`` in order."""

    def next_value(bits: int) -> int:
        value = values.pop(0)
        assert value < 1 << bits
        return value

    monkeypatch.setattr(tracing, "_random_bits", next_value)


class TestRootDecision:
    def test_ratio_bound_like_sampler(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A new trace is kept exactly when TraceIdRatioBased keeps its trace id."""
        sampler = TraceIdRatioBased(0.5)
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.5)))
        trace_ids = [
            (1 << 64) | 1,
            (1 << 64) | (sampler.bound - 1),
            (1 << 64) | sampler.bound,
            (1 << 64) | LOW_64_BITS,
        ]
        span_id = 0x1234

        for trace_id in trace_ids:
            draws(monkeypatch, [(trace_id << 64) | span_id])
            sampling = tracing.sample_request("POST", {})
            expected = sampler.should_sample(None, trace_id, "POST").decision
            assert sampling.recording is (expected is Decision.RECORD_AND_SAMPLE)

    def test_kept_root_starts_drawn_trace_id(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.5)))
        trace_id = (7 << 64) | 5
        draws(monkeypatch, [(trace_id << 64) | 9])

        sampling = tracing.sample_request("POST", {})
        with tracing.server_span("POST", None, "src", sampling) as span:
            context = span.get_span_context()

        assert sampling.recording
        assert context.trace_id == trace_id
        assert context.trace_flags.sampled

    def test_dropped_root_headers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A dropped root carries its drawn ids, unsampled, with the random flag."""
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.0)))
        trace_id = int(TRACE_ID, 16)
        draws(monkeypatch, [(trace_id << 64) | int(SPAN_ID, 16)])

        sampling = tracing.sample_request("POST", {})

        assert not sampling.recording
        assert sampling.dropped_headers == {
            "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-02"
        }

    def test_zero_ids_drawn_again(self, monkeypatch: pytest.MonkeyPatch) -> None:
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.0)))
        trace_id = int(TRACE_ID, 16)
        span_id = int(SPAN_ID, 16)
        draws(monkeypatch, [span_id, trace_id << 64, (trace_id << 64) | span_id])

        sampling = tracing.sample_request("POST", {})

        assert sampling.dropped_headers == {
            "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-02"
        }


# Each case is a traceparent header value; the propagator decides which are valid.
TRACEPARENTS = {
    "sampled": f"00-{TRACE_ID}-{SPAN_ID}-01",
    "unsampled": f"00-{TRACE_ID}-{SPAN_ID}-00",
    "random_unsampled": f"00-{TRACE_ID}-{SPAN_ID}-02",
    "random_sampled": f"00-{TRACE_ID}-{SPAN_ID}-03",
    "other_flags_unsampled": f"00-{TRACE_ID}-{SPAN_ID}-fc",
    "spaces": f" \t00-{TRACE_ID}-{SPAN_ID}-00 ",
    "uppercase": f"00-{TRACE_ID.upper()}-{SPAN_ID}-00",
    "zero_trace_id": f"00-{'0' * 32}-{SPAN_ID}-00",
    "zero_span_id": f"00-{TRACE_ID}-{'0' * 16}-00",
    "version_ff": f"ff-{TRACE_ID}-{SPAN_ID}-00",
    "version_00_extra_field": f"00-{TRACE_ID}-{SPAN_ID}-00-extra",
    "later_version_extra_field": f"01-{TRACE_ID}-{SPAN_ID}-00-extra",
    "later_version_sampled": f"cc-{TRACE_ID}-{SPAN_ID}-01",
    "short_trace_id": f"00-{TRACE_ID[1:]}-{SPAN_ID}-00",
    "long_span_id": f"00-{TRACE_ID}-{SPAN_ID}0-00",
    "missing_flags": f"00-{TRACE_ID}-{SPAN_ID}",
    "empty": "",
    "garbage": "not a traceparent",
}


class TestParentDecision:
    @pytest.mark.parametrize("traceparent", TRACEPARENTS.values(), ids=TRACEPARENTS)
    def test_agrees_with_propagator(self, traceparent: str) -> None:
        """A parent the propagator accepts is followed; any other value is ignored."""
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.0)))
        assert tracing.decides_without_sampler()
        parent = trace.get_current_span(
            tracing.extract({"traceparent": traceparent})
        ).get_span_context()

        sampling = tracing.sample_request("POST", {"traceparent": traceparent})

        if parent.is_valid and parent.trace_flags.sampled:
            assert sampling.recording
            span_context = trace.get_current_span(sampling.context).get_span_context()
            assert span_context == parent
            return
        assert not sampling.recording
        assert sampling.dropped_headers is not None
        version, trace_id, span_id, flags = sampling.dropped_headers[
            "traceparent"
        ].split("-")
        assert version == "00"
        assert int(span_id, 16) != 0
        if parent.is_valid:
            assert int(trace_id, 16) == parent.trace_id
            random_flag = parent.trace_flags & trace.TraceFlags.RANDOM_TRACE_ID
            assert int(flags, 16) == random_flag
        else:
            assert trace_id != TRACE_ID
            assert flags == "02"

    @pytest.mark.parametrize("traceparent", TRACEPARENTS.values(), ids=TRACEPARENTS)
    def test_agrees_with_called_sampler(self, traceparent: str) -> None:
        """The decision and dropped headers match those of the sampler's own path."""
        headers = {"traceparent": traceparent, "tracestate": "vendor=value"}
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.0)))
        fast = tracing.sample_request("POST", headers)
        slow = tracing._ask_sampler("POST", headers)

        assert fast.recording == slow.recording
        if fast.dropped_headers is None or slow.dropped_headers is None:
            assert fast.dropped_headers == slow.dropped_headers
            return
        fast_fields = fast.dropped_headers["traceparent"].split("-")
        slow_fields = slow.dropped_headers["traceparent"].split("-")
        if trace.get_current_span(slow.context).get_span_context().is_valid:
            assert fast_fields[1] == slow_fields[1]
        assert fast_fields[3] == slow_fields[3]
        assert fast.dropped_headers.get("tracestate") == slow.dropped_headers.get(
            "tracestate"
        )

    def test_unsampled_parent_keeps_tracestate(self) -> None:
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(1.0)))
        headers = {
            "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-00",
            "tracestate": "vendor=value,other=1",
        }

        sampling = tracing.sample_request("POST", headers)

        assert sampling.dropped_headers is not None
        assert sampling.dropped_headers["tracestate"] == "vendor=value,other=1"

    def test_invalid_parent_drops_tracestate(self) -> None:
        """A tracestate without a valid traceparent belongs to no trace."""
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.0)))
        headers = {"traceparent": "garbage", "tracestate": "vendor=value"}

        sampling = tracing.sample_request("POST", headers)

        assert sampling.dropped_headers is not None
        assert "tracestate" not in sampling.dropped_headers


class TestDroppedRequestContext:
    def test_headers_and_span_context(self) -> None:
        """Inside a dropped request the chosen headers apply, and no span is current."""
        tracing.enable(TracerProvider(sampler=ParentBasedTraceIdRatio(0.0)))
        dropped = {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-00"}

        token = tracing.dropped_trace_headers.set(dropped)
        try:
            headers = tracing.current_trace_headers()
            span_context = tracing.current_span_context()
        finally:
            tracing.dropped_trace_headers.reset(token)

        assert headers == dropped
        assert not span_context.is_valid
        assert tracing.current_trace_headers() == {}


def test_random_id_generator_is_sdk_default() -> None:
    """The fast path expects the SDK's default generator, the one configure uses."""
    provider = TracerProvider()
    tracer = provider.get_tracer("hookgate.tests")

    assert type(getattr(tracer, "id_generator", None)) is RandomIdGenerator


class TestCheckSampler:
    @pytest.mark.parametrize(
        ("sampler", "argument"),
        [
            ("", ""),
            ("PARENTBASED_ALWAYS_OFF", ""),
            ("parentbased_traceidratio", "0"),
            ("traceidratio", "1"),
            ("parentbased_traceidratio", "1e-3"),
        ],
    )
    def test_setting_accepted(
        self, monkeypatch: pytest.MonkeyPatch, sampler: str, argument: str
    ) -> None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)

        tracing.check_sampler()

    @pytest.mark.parametrize(
        ("sampler", "argument", "message"),
        [
            # The SDK does not strip the name, so it would not know this one.
            (" parentbased_always_off", "", "unknown sampler"),
            ("my_custom_sampler", "", "unknown sampler"),
            ("parentbased_traceidratio", "", "invalid OTEL_TRACES_SAMPLER_ARG"),
            ("parentbased_traceidratio", "nan", "invalid OTEL_TRACES_SAMPLER_ARG"),
            ("traceidratio", "-0.5", "invalid OTEL_TRACES_SAMPLER_ARG"),
        ],
    )
    def test_setting_refused(
        self,
        monkeypatch: pytest.MonkeyPatch,
        sampler: str,
        argument: str,
        message: str,
    ) -> None:
        # Each of these would make the SDK trace every request.
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)

        with pytest.raises(tracing.TracingConfigError, match=message):
            tracing.check_sampler()
