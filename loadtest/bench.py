"""``hookgate bench``: measure hookgate against its baselines and check the budget.

Steps, each optional with ``--only``:

- ``micro``: the verifier benchmarks of ``loadtest/micro`` (pytest-benchmark);
- ``bare``: the baseline Granian app of :mod:`hookgate.loadtest.bare`;
- ``nowrite``: the gateway of :mod:`hookgate.loadtest.nowrite`, which handles
  requests as ``hookgate serve`` does but confirms writes in memory;
- ``hookgate``: ``hookgate serve`` with 1 KB Standard Webhooks requests, with the
  gateway's flush and accept counters read before and after;
- ``mix``: the same gateway with Standard Webhooks, Graph collections of 1 to 50
  items and Gmail pushes;
- ``open``: the open-model run at half of hookgate's measured rate;
- ``tracing``: hookgate with tracing at the default sampler (0.1%), in pairs of
  runs beside a gateway without tracing, then once at 100%;
- ``fastapi``: the FastAPI peer of :mod:`hookgate.loadtest.fastapi_peer`.

``open`` offers half the ``hookgate`` step's rate, so it runs that step too. The
bench writes ``results.json``, ``report.md`` and PNG plots into the output folder,
prints each budget entry's outcome, and returns 1 when an entry that is not
informational missed, 2 when a step failed. It loads only 127.0.0.1 and runs a
private redis-server on a free port. It stops every process
it started by PID, also on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from hookgate.loadtest._bench_micro import MicroError, micro_metrics, run_micro
from hookgate.loadtest._bench_report import (
    LATENCY_PNG,
    THROUGHPUT_PNG,
    verdicts_json,
    write_plots,
    write_report_md,
    write_results,
)
from hookgate.loadtest._bench_runs import Durations, MacroBench
from hookgate.loadtest._budget import (
    DEFAULT_BUDGET,
    evaluate,
    load_budget,
)
from hookgate.loadtest._harness import HarnessError, exit_on_sigterm
from hookgate.loadtest._processes import ProcessGroup, plan_placement
from hookgate.loadtest._report import code_state, machine_facts, tool_versions

STEPS = (
    "micro",
    "bare",
    "nowrite",
    "hookgate",
    "mix",
    "open",
    "tracing",
    "fastapi",
)
SLOWDOWNS = ("no-batching",)
FULL = Durations(warmup_s=3, measured_s=10, open_s=15, tracing_pairs=3)
SHORT = Durations(warmup_s=2, measured_s=5, open_s=5, tracing_pairs=1)
OUTPUTS = ("results.json", "report.md", "micro.json", THROUGHPUT_PNG, LATENCY_PNG)


@dataclass(frozen=True)
class BenchOptions:
    out: Path
    budget: Path = DEFAULT_BUDGET
    short: bool = False
    slowdown: str | None = None
    batch_io_threads: bool = False
    only: tuple[str, ...] = ()


def _steps(only: tuple[str, ...]) -> set[str]:
    unknown = sorted(set(only) - set(STEPS))
    if unknown:
        raise ValueError(
            f"unknown bench step {', '.join(unknown)}; choose from {', '.join(STEPS)}"
        )
    return set(only or STEPS)


def run_bench(options: BenchOptions) -> int:
    """Run the selected steps, write the output folder and return the exit status.

    Raises ``ValueError`` for an unknown step or slowdown and
    :class:`hookgate.loadtest._budget.BudgetError` for an invalid budget file,
    before anything starts.
    """
    steps = _steps(options.only)
    if options.slowdown is not None and options.slowdown not in SLOWDOWNS:
        raise ValueError(
            f"unknown slowdown {options.slowdown!r}; choose from {', '.join(SLOWDOWNS)}"
        )
    entries = load_budget(options.budget)
    durations = SHORT if options.short else FULL
    max_batch = 1 if options.slowdown == "no-batching" else None
    out = options.out.resolve()
    work = out / "work"
    # A previous run's files would pass for this run's, so they go first.
    shutil.rmtree(work, ignore_errors=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    work.mkdir(parents=True)
    placement = plan_placement()
    started = time.monotonic()
    started_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    code = code_state()

    metrics: dict[str, float] = {}
    errors: list[str] = []
    runs: dict[str, Any] = {}
    latencies: list[int] = []
    processes = ProcessGroup()
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        if "micro" in steps:
            print("bench: micro", flush=True)
            try:
                times = run_micro(
                    out / "micro.json",
                    placement,
                    short=options.short,
                    log_path=work / "micro.log",
                )
                metrics.update(micro_metrics(times))
                runs["micro_minimums_s"] = times
            except (MicroError, OSError) as exc:
                errors.append(f"micro: {exc}")
        macro_steps = steps - {"micro"}
        if macro_steps:
            macro = MacroBench(
                macro_steps,
                durations,
                max_batch,
                work,
                placement,
                processes,
                batch_io_threads=options.batch_io_threads,
            )
            try:
                results = macro.run()
            except (HarnessError, OSError, redis.RedisError) as exc:
                errors.append(f"redis-server: {exc}")
            else:
                metrics.update(results.metrics)
                runs.update(results.runs)
                errors += results.errors
                latencies = results.latencies_us
    except KeyboardInterrupt:
        print("interrupted; stopping every process started", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        signal.signal(signal.SIGTERM, previous)
        # The bench Redis's append-only file grows by about a gigabyte in a short
        # run and nothing reads it afterwards. Its log stays.
        shutil.rmtree(work / "redis" / "appendonlydir", ignore_errors=True)

    verdicts = evaluate(entries, metrics)
    document = {
        "started": started_at,
        "seconds": time.monotonic() - started,
        "form": "short" if options.short else "full",
        "slowdown": options.slowdown,
        "batch_io_threads": options.batch_io_threads,
        "steps": sorted(steps),
        "durations": vars(durations),
        "code": code,
        "machine": machine_facts(),
        "versions": tool_versions(),
        "placement": placement.description,
        "budget_file": str(options.budget),
        "metrics": metrics,
        "runs": runs,
        "budget": verdicts_json(verdicts),
        "errors": errors,
    }
    write_results(out / "results.json", document)
    write_plots(out, runs, latencies)
    write_report_md(out / "report.md", document)

    for verdict in verdicts:
        print(verdict.describe())
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    missed = [v for v in verdicts if v.fails_bench]
    informational = [
        v for v in verdicts if v.measured and not v.passed and v.entry.informational
    ]
    print(
        f"bench: {document['seconds']:.0f} s, {len(missed)} gating budget entries"
        f" missed, {len(informational)} informational ones;"
        f" wrote {out / 'report.md'}"
    )
    if errors:
        return 2
    return 1 if missed else 0
