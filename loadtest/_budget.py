"""The throughput budget: its entries and their comparison with measured figures.

A budget file (``loadtest/budget.toml``) lists ``[[budget]]`` entries; each names
one figure of the bench's results by key and a limit for it. This module reads
the file and compares; it measures nothing.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_BUDGET = Path(__file__).resolve().parent / "budget.toml"
OPERATORS = (">=", "<=")


class BudgetError(ValueError):
    """Raised when a budget file is missing, not TOML, or has an invalid entry."""


@dataclass(frozen=True)
class Entry:
    """One budget line: ``metric op limit``, with slack for noise."""

    name: str
    metric: str
    op: str
    limit: float
    tolerance: float
    reason: str
    measured: str
    informational: bool = False
    note: str = ""
    """Why an entry is informational when its limit is a real target: not met
    yet, or noisier on this machine than its limit allows."""

    @property
    def effective_limit(self) -> float:
        """The limit with the tolerance applied in the passing direction."""
        slack = abs(self.limit) * self.tolerance
        return self.limit - slack if self.op == ">=" else self.limit + slack


@dataclass(frozen=True)
class Verdict:
    """The outcome of one entry: pass, miss, or not measured in this run."""

    entry: Entry
    value: float | None

    @property
    def measured(self) -> bool:
        return self.value is not None and not math.isnan(self.value)

    @property
    def passed(self) -> bool:
        if self.value is None or not self.measured:
            return False
        if self.entry.op == ">=":
            return self.value >= self.entry.effective_limit
        return self.value <= self.entry.effective_limit

    @property
    def within_tolerance(self) -> bool:
        """Whether the value passed only thanks to the tolerance."""
        if not self.passed or self.value is None:
            return False
        if self.entry.op == ">=":
            return self.value < self.entry.limit
        return self.value > self.entry.limit

    @property
    def miss(self) -> float:
        """How far the value is on the wrong side of the limit; 0 when it passed."""
        if self.value is None or self.passed:
            return 0.0
        return abs(self.value - self.entry.limit)

    @property
    def fails_bench(self) -> bool:
        return self.measured and not self.passed and not self.entry.informational

    def describe(self) -> str:
        """Return one line: the entry, its value, and the outcome with the miss."""
        entry = self.entry
        rule = f"{entry.metric} {entry.op} {entry.limit:g}"
        if not self.measured:
            return f"{entry.name}: not measured in this run ({rule})"
        assert self.value is not None
        if self.passed:
            note = " (within tolerance)" if self.within_tolerance else ""
            return f"{entry.name}: pass{note}, {self.value:.4g} ({rule})"
        relative = ""
        if entry.limit:
            relative = f", {100 * self.miss / abs(entry.limit):.1f}% of the limit"
        outcome = "miss (informational)" if entry.informational else "MISS"
        note = f"; {entry.note}" if entry.note else ""
        return (
            f"{entry.name}: {outcome}, {self.value:.4g} ({rule}),"
            f" off by {self.miss:.4g}{relative}{note}"
        )


def _entry(raw: Any, index: int) -> Entry:
    if not isinstance(raw, dict):
        raise BudgetError(f"budget entry {index} is not a table")
    name = raw.get("name", f"entry {index}")
    for key in ("name", "metric", "op", "limit", "reason", "measured"):
        if key not in raw:
            raise BudgetError(f"budget entry {name!r} has no {key!r}")
    if raw["op"] not in OPERATORS:
        raise BudgetError(
            f"budget entry {name!r}: invalid op {raw['op']!r}; use '>=' or '<='"
        )
    tolerance = raw.get("tolerance", 0.0)
    if not isinstance(tolerance, int | float) or tolerance < 0:
        raise BudgetError(
            f"budget entry {name!r}: invalid tolerance {tolerance!r}; use a number"
            " of 0 or more"
        )
    limit = raw["limit"]
    if not isinstance(limit, int | float) or isinstance(limit, bool):
        raise BudgetError(f"budget entry {name!r}: invalid limit {limit!r}")
    return Entry(
        name=str(raw["name"]),
        metric=str(raw["metric"]),
        op=raw["op"],
        limit=float(limit),
        tolerance=float(tolerance),
        reason=str(raw["reason"]),
        measured=str(raw["measured"]),
        informational=bool(raw.get("informational", False)),
        note=str(raw.get("note", "")),
    )


def load_budget(path: Path = DEFAULT_BUDGET) -> list[Entry]:
    """Read the entries of a budget file. Raises :class:`BudgetError`."""
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BudgetError(f"cannot read budget file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"budget file {path} is not valid TOML: {exc}") from exc
    entries = [
        _entry(raw, index) for index, raw in enumerate(document.get("budget", []))
    ]
    if not entries:
        raise BudgetError(f"budget file {path} has no [[budget]] entries")
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BudgetError(f"budget file {path} repeats entry names: {duplicates}")
    return entries


def evaluate(entries: list[Entry], metrics: dict[str, float]) -> list[Verdict]:
    """Compare every entry with its figure in ``metrics`` (absent: not measured)."""
    return [Verdict(entry, metrics.get(entry.metric)) for entry in entries]
