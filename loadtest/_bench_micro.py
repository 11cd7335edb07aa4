"""The bench's micro step: the verifier benchmarks of ``loadtest/micro``.

Runs pytest-benchmark on ``loadtest/micro/test_verify.py`` in a child process
(the same tests as ``scripts/bench-micro``), reads its ``--benchmark-json``
output and turns the fastest rounds into the ratios the budget names.

The ratios compare each benchmark's fastest round, not its median, because other
work on the machine only ever adds time to a round. On this shared 2-core machine,
the median of the compiled verifier at 1 KB moved between 1.65 and 2.52 us from
one run to the next, while its minimum stayed at 1.58 us.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hookgate.loadtest._processes import Placement

MICRO = Path(__file__).resolve().parent / "micro"
TESTS = MICRO / "test_verify.py"
TIMEOUT_S = 600


class MicroError(RuntimeError):
    """Raised when the benchmark run fails or its output lacks a benchmark."""


def run_micro(
    output: Path, placement: Placement, *, short: bool, log_path: Path
) -> dict[str, float]:
    """Run the verify benchmarks on the server core; return fastest seconds by name.

    ``short`` changes nothing here: both forms run full-length rounds. Raises
    :class:`MicroError` when pytest fails.
    """
    # The short form keeps full-length rounds: with 0.2 s per benchmark, even the
    # fastest rounds moved enough between runs to cross the verifier limits.
    max_time = "1.0"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(TESTS),
        "--benchmark-only",
        f"--benchmark-json={output}",
        f"--benchmark-max-time={max_time}",
        "--benchmark-disable-gc",
        "-p",
        "no:cacheprovider",
        "-q",
        # The rootdir's pytest options (testpaths, timeout) are for the test suite.
        "-o",
        "addopts=--import-mode=importlib",
    ]
    with log_path.open("wb") as log:
        completed = subprocess.run(
            placement.pin(argv, placement.server),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=TIMEOUT_S,
            check=False,
        )
    if completed.returncode != 0:
        raise MicroError(
            f"micro benchmarks failed with status {completed.returncode}; see"
            f" {log_path}"
        )
    return minimums(json.loads(output.read_text()))


def minimums(document: dict[str, Any]) -> dict[str, float]:
    """Return each benchmark's fastest round in seconds, by test name such as
    ``test_native[1KB]``."""
    return {
        benchmark["name"]: float(benchmark["stats"]["min"])
        for benchmark in document["benchmarks"]
    }


def micro_metrics(times: dict[str, float]) -> dict[str, float]:
    """Return the budget's micro ratios from the fastest rounds.

    Raises :class:`MicroError` naming a benchmark that is missing.
    """

    def time_of(name: str) -> float:
        if name not in times:
            raise MicroError(f"benchmark {name} missing from the micro run")
        return times[name]

    native_1kb = time_of("test_native[1KB]")
    return {
        "micro.verify_1kb_pure_over_native": time_of("test_pure[1KB]") / native_1kb,
        "micro.verify_1kb_standardwebhooks_over_native_decode": (
            time_of("test_standardwebhooks[1KB]")
            / time_of("test_native_msgspec_struct[1KB]")
        ),
        "micro.verify_64kb_native_over_sha256": (
            time_of("test_native[64KB]") / time_of("test_sha256_floor[64KB]")
        ),
        "micro.verify_1kb_native_us": native_1kb * 1e6,
        "micro.verify_64kb_native_us": time_of("test_native[64KB]") * 1e6,
    }
