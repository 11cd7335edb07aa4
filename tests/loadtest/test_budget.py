"""The budget comparison of ``hookgate bench`` on synthetic figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookgate.loadtest._budget import (
    DEFAULT_BUDGET,
    BudgetError,
    Entry,
    Verdict,
    evaluate,
    load_budget,
)


def entry(op: str, limit: float, tolerance: float = 0.0, **extra: bool | str) -> Entry:
    return Entry(
        name="sample",
        metric="ratio.sample",
        op=op,
        limit=limit,
        tolerance=tolerance,
        reason="a reason",
        measured="a measurement",
        **extra,
    )


class TestVerdict:
    def test_at_least_passes(self) -> None:
        verdict = Verdict(entry(">=", 0.6), 0.65)

        assert verdict.passed
        assert not verdict.fails_bench
        assert verdict.miss == 0.0

    def test_at_least_miss_amount(self) -> None:
        verdict = Verdict(entry(">=", 0.6), 0.35)

        assert not verdict.passed
        assert verdict.fails_bench
        assert verdict.miss == pytest.approx(0.25)
        assert "MISS" in verdict.describe()
        assert "off by 0.25" in verdict.describe()

    def test_at_most_miss_amount(self) -> None:
        verdict = Verdict(entry("<=", 1 / 16), 1.0)

        assert verdict.fails_bench
        assert verdict.miss == pytest.approx(0.9375)

    def test_exact_limit_passes(self) -> None:
        assert Verdict(entry("<=", 0), 0).passed
        assert Verdict(entry(">=", 4.0), 4.0).passed

    def test_tolerance_passes_near_miss(self) -> None:
        verdict = Verdict(entry(">=", 0.6, tolerance=0.05), 0.58)

        assert verdict.passed
        assert verdict.within_tolerance
        assert "within tolerance" in verdict.describe()

    def test_tolerance_still_misses(self) -> None:
        verdict = Verdict(entry("<=", 10.0, tolerance=0.05), 10.6)

        assert not verdict.passed
        assert verdict.miss == pytest.approx(0.6)

    def test_zero_tolerance_misses(self) -> None:
        assert not Verdict(entry(">=", 0.6), 0.5999).passed

    def test_not_measured_never_fails(self) -> None:
        verdict = Verdict(entry(">=", 0.6), None)

        assert not verdict.measured
        assert not verdict.fails_bench
        assert "not measured" in verdict.describe()

    def test_informational_miss_never_fails(self) -> None:
        verdict = Verdict(entry("<=", 0.05, informational=True), 0.2)

        assert not verdict.passed
        assert not verdict.fails_bench
        assert "informational" in verdict.describe()

    def test_note_follows_a_miss(self) -> None:
        sample = entry(">=", 0.6, informational=True, note="not met yet: 0.47")

        assert verdict_line(sample, 0.5).endswith("; not met yet: 0.47")
        assert "not met" not in verdict_line(sample, 0.7)


def verdict_line(sample: Entry, value: float) -> str:
    return Verdict(sample, value).describe()


def test_evaluate_matches_metrics_by_key() -> None:
    entries = [entry(">=", 0.6)]

    verdicts = evaluate(entries, {"ratio.sample": 0.7, "ratio.other": 0.1})

    assert [v.value for v in verdicts] == [0.7]
    assert verdicts[0].passed


def test_default_budget_entries() -> None:
    entries = {e.name: e for e in load_budget(DEFAULT_BUDGET)}

    assert entries["gateway_vs_bare"].limit == 0.60
    assert entries["gateway_nowrite_vs_bare"].limit == 0.50
    assert entries["gateway_write_cost"].limit == 0.55
    assert entries["gateway_vs_fastapi"].limit == 4.0
    assert entries["redis_round_trips_per_event"].limit == 1 / 16
    assert entries["verify_1kb_vs_pure"].limit == 2.0
    assert entries["verify_1kb_vs_standardwebhooks"].limit == 4.0
    assert entries["verify_64kb_vs_sha256"].limit == 1.2
    assert entries["open_model_p99"].limit == 10.0
    assert entries["open_model_non_2xx"].limit == 0
    assert entries["open_model_missing_events"].limit == 0
    assert entries["tracing_cost_default"].limit == 0.05
    assert all(e.tolerance == 0 for e in entries.values())
    assert all(e.reason and e.measured for e in entries.values())
    gating = {name for name, e in entries.items() if not e.informational}
    assert gating == {
        "gateway_nowrite_vs_bare",
        "gateway_write_cost",
        "redis_round_trips_per_event",
        "verify_1kb_vs_pure",
        "verify_1kb_vs_standardwebhooks",
        "verify_64kb_vs_sha256",
        "open_model_non_2xx",
        "open_model_missing_events",
        "open_model_duplicate_entries",
    }
    # A real target that does not gate yet has a note giving the reason.
    for name in ("gateway_vs_bare", "gateway_vs_fastapi", "open_model_p99"):
        assert entries[name].note


def test_invalid_op_rejected(tmp_path: Path) -> None:
    path = tmp_path / "budget.toml"
    path.write_text(
        '[[budget]]\nname = "x"\nmetric = "m"\nop = ">"\nlimit = 1\n'
        'reason = "r"\nmeasured = "m"\n'
    )

    with pytest.raises(BudgetError, match="invalid op"):
        load_budget(path)


def test_missing_key_rejected(tmp_path: Path) -> None:
    path = tmp_path / "budget.toml"
    path.write_text('[[budget]]\nname = "x"\nmetric = "m"\nop = ">="\n')

    with pytest.raises(BudgetError, match="no 'limit'"):
        load_budget(path)
