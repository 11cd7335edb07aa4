"""Fixtures for the micro benchmarks, and a hook that trims their JSON report.

The fixtures import both verifier implementations directly.
A missing extension fails the run with the command that builds it, because the
table is meaningless without the compiled verifier.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(
            f"cannot import {name}: {exc}. Build the extension with scripts/bootstrap",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def native() -> ModuleType:
    """The compiled verifier, hookgate.fastpath._native."""
    return _import("hookgate.fastpath._native")


@pytest.fixture(scope="session")
def pure() -> ModuleType:
    """The pure-Python verifier, hookgate.fastpath._pure."""
    return _import("hookgate.fastpath._pure")


def pytest_benchmark_update_json(output_json: dict[str, Any]) -> None:
    """Drop each benchmark's per-round timings from the ``--benchmark-json`` file.

    pytest-benchmark 5.3 always writes them there, tens of megabytes for one run of
    this folder, while the summary statistics beside them are what a later tool reads.
    """
    for benchmark in output_json["benchmarks"]:
        benchmark["stats"].pop("data", None)
