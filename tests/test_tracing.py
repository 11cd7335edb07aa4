"""The sampler that tracing.configure builds from the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.sampling import (
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from structlog.testing import capture_logs

from hookgate import tracing


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
        """Without OTEL_TRACES_SAMPLER, new traces are sampled at 1 %."""
        sampler = configure_from(monkeypatch)

        assert isinstance(sampler, ParentBasedTraceIdRatio)
        assert tracing.DEFAULT_SAMPLER_RATIO == 0.01
        expected = ParentBasedTraceIdRatio(0.01).get_description()
        assert sampler.get_description() == expected

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

    def test_sampler_arg_alone_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The argument alone leaves the default sampler, and logs a warning."""
        with capture_logs() as logs:
            sampler = configure_from(monkeypatch, OTEL_TRACES_SAMPLER_ARG="0.5")

        expected = ParentBasedTraceIdRatio(0.01).get_description()
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
        assert line["sampler"] == ParentBasedTraceIdRatio(0.01).get_description()
