"""Sample a server worker with py-spy and rank its functions by self and total time.

py-spy pauses the process for each sample unless run with ``--nonblocking``, so a
profiled run is slower than an unprofiled one. The harness reports its throughput
apart from the measurement.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hookgate.loadtest._processes import Placement

SAMPLES_PER_SECOND = 100
REPOSITORY = str(Path(__file__).resolve().parent.parent)


def py_spy_binary() -> str | None:
    """Return py-spy from this virtualenv, else from PATH, else ``None``."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def record_argv(
    binary: str,
    pid: int,
    output: Path,
    duration_s: int,
    placement: Placement,
    *,
    native: bool,
    nonblocking: bool,
) -> list[str]:
    """Return the py-spy command that records ``pid`` to a speedscope file."""
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--output",
        str(output),
        "--format",
        "speedscope",
        "--duration",
        str(duration_s),
        "--rate",
        str(SAMPLES_PER_SECOND),
        # Group samples by function, so one function's lines add up to one row.
        "--function",
    ]
    if native:
        argv.append("--native")
    if nonblocking:
        argv.append("--nonblocking")
    return placement.pin(argv, placement.client)


@dataclass(frozen=True)
class Ranked:
    """One function's share of the ranked thread's samples, in percent."""

    function: str
    self_percent: float
    total_percent: float


@dataclass(frozen=True)
class ThreadActivity:
    name: str
    samples: int
    """Samples in which py-spy saw the thread running (idle ones are not recorded)."""
    python_samples: int
    """Of those, the samples with at least one Python frame on the stack."""


@dataclass(frozen=True)
class ProfileSummary:
    threads: list[ThreadActivity]
    ranked_thread: str
    """The thread whose functions are ranked: the one with most Python samples."""
    by_self: list[Ranked]
    by_total: list[Ranked]
    """Ranked by total, without the frames on every stack (the thread's start-up)."""


def summarize(path: Path, top: int = 15) -> ProfileSummary:
    """Rank the functions of one thread of a py-spy speedscope file.

    Only the thread with the most samples that hold Python frames is ranked. In a
    Granian worker that is the event loop thread, while the Rust runtime thread
    shows few Python frames. Self counts the samples where a function was the
    innermost frame. Total counts the samples where it was anywhere on the stack,
    once per sample even when it recurses.
    """
    document = json.loads(path.read_text())
    frames = document["shared"]["frames"]
    profiles = document["profiles"]
    threads = [
        ThreadActivity(
            name=profile["name"],
            samples=len(profile["samples"]),
            python_samples=sum(1 for stack in profile["samples"] if stack),
        )
        for profile in profiles
    ]
    if not profiles:
        return ProfileSummary(threads, "", [], [])
    chosen = max(range(len(profiles)), key=lambda i: threads[i].python_samples)
    stacks = [stack for stack in profiles[chosen]["samples"] if stack]
    if not stacks:
        return ProfileSummary(threads, threads[chosen].name, [], [])

    # py-spy may list one function under several frame indexes, so count by name.
    names = [_frame_name(frame) for frame in frames]
    self_counts: collections.Counter[str] = collections.Counter()
    total_counts: collections.Counter[str] = collections.Counter()
    for stack in stacks:
        # Speedscope stacks run from the outermost frame to the innermost.
        self_counts[names[stack[-1]]] += 1
        for name in {names[frame] for frame in stack}:
            total_counts[name] += 1
    on_every_stack = {
        name for name, count in total_counts.items() if count == len(stacks)
    }

    def rank(name: str) -> Ranked:
        return Ranked(
            function=name,
            self_percent=100 * self_counts[name] / len(stacks),
            total_percent=100 * total_counts[name] / len(stacks),
        )

    by_total = [
        name for name, _ in total_counts.most_common() if name not in on_every_stack
    ]
    return ProfileSummary(
        threads=threads,
        ranked_thread=threads[chosen].name,
        by_self=[rank(name) for name, _ in self_counts.most_common(top)],
        by_total=[rank(name) for name in by_total[:top]],
    )


def _frame_name(frame: dict[str, object]) -> str:
    name = str(frame.get("name", "?"))
    file = frame.get("file")
    if not file:
        return name
    short = _short_path(str(file))
    line = frame.get("line")
    return f"{name} ({short}:{line})" if line else f"{name} ({short})"


def _short_path(file: str) -> str:
    """Return ``file`` relative to site-packages, the repository or the stdlib."""
    if "/site-packages/" in file:
        return file.split("/site-packages/", 1)[1]
    if file.startswith(f"{REPOSITORY}/"):
        return file[len(REPOSITORY) + 1 :]
    match = re.search(r"/lib/(python3\.\d+/.*)", file)
    return match.group(1) if match else file
