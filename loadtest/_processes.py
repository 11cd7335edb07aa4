"""Processes of a load test: CPU placement, start, stop and CPU time.

Every process starts in its own session, so a Ctrl-C in the terminal reaches only
the harness, which then stops each process it started by PID. Nothing here sends
traffic, and callers pass loopback addresses only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Placement:
    """Core lists for the server and for the load side (wrk, redis-server, py-spy).

    ``server`` and ``client`` are ``taskset -c`` lists, or ``None`` when the
    processes are left to the scheduler.
    """

    server: str | None
    client: str | None
    description: str

    def pin(self, argv: Sequence[str], cores: str | None) -> list[str]:
        """Return ``argv`` prefixed with ``taskset -c cores`` when pinning is on."""
        if cores is None:
            return list(argv)
        return ["taskset", "-c", cores, *argv]


def plan_placement() -> Placement:
    """Pin the server to the first allowed core and the load side to the second.

    Falls back to no pinning when ``taskset`` is missing or fewer than two cores
    are allowed, and gives the reason in ``description``.
    """
    cores = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None:
        return Placement(None, None, "not pinned: taskset not found")
    if len(cores) < 2:
        return Placement(None, None, f"not pinned: only core {cores[0]} is allowed")
    server, client = str(cores[0]), str(cores[1])
    return Placement(
        server,
        client,
        f"taskset: server (Granian main and worker) on core {server};"
        f" wrk, redis-server, the load generators and py-spy on core {client}",
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProcessGroup:
    """Starts processes and stops every one of them, newest first."""

    def __init__(self) -> None:
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr appended to ``log_path``."""
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._started.append((name, process))
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 15) -> int:
        """Send SIGINT, wait up to ``timeout`` seconds, then kill its process group.

        Granian stops its workers on SIGINT. The group kill covers a worker whose
        parent died first. The group id is the PID this harness started, because
        each process leads its own session.
        """
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Children that outlived their parent still belong to its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._started = [item for item in self._started if item[1] is not process]
        return process.returncode

    def stop_all(self) -> None:
        for _, process in reversed(list(self._started)):
            self.stop(process)


@dataclass(frozen=True)
class ProcessStat:
    """The fields of /proc/PID/stat that the harness uses."""

    name: str
    parent: int
    cpu_seconds: float
    """User and system CPU time of every thread so far."""


def read_processes() -> dict[int, ProcessStat]:
    """Return every live process on the machine, by PID, read from /proc."""
    processes = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name in brackets may contain spaces, so split after it.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # ppid, utime and stime are fields 4, 14 and 15 of proc_pid_stat(5).
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        processes[int(entry.name)] = ProcessStat(name, int(fields[1]), cpu)
    return processes


def descendants(pid: int, processes: dict[int, ProcessStat] | None = None) -> list[int]:
    """Return the PIDs of every descendant of ``pid`` in ``processes``.

    ``processes`` defaults to the processes alive now.
    """
    if processes is None:
        processes = read_processes()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, stat in processes.items() if stat.parent == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


@dataclass(frozen=True)
class CoreTicks:
    """Clock ticks one core spent in each kind of state since boot (/proc/stat)."""

    busy: int
    """Every state but idle, iowait and steal."""
    interrupts: int
    """Hard and soft interrupts, also counted in ``busy``."""
    total: int


def core_ticks() -> dict[int, CoreTicks]:
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        # user nice system idle iowait irq softirq steal, see proc_stat(5).
        numbers = [int(value) for value in values[:8]]
        busy = sum(numbers) - numbers[3] - numbers[4] - numbers[7]
        ticks[int(name[3:])] = CoreTicks(
            busy=busy, interrupts=numbers[5] + numbers[6], total=sum(numbers)
        )
    return ticks


@dataclass(frozen=True)
class CoreUse:
    """Shares of a stretch of time that one core spent busy, in %."""

    busy: float
    interrupts: float


@dataclass
class CpuSample:
    """CPU time of every process and of each core at one moment."""

    at: float
    processes: dict[int, ProcessStat]
    cores: dict[int, CoreTicks]

    @classmethod
    def take(cls) -> CpuSample:
        return cls(time.monotonic(), read_processes(), core_ticks())

    def percent_since(self, earlier: CpuSample) -> dict[int, float]:
        """Return each process's CPU use between the samples, in % of one core.

        A process that started between the samples counts from its start, and one
        that exited is left out.
        """
        wall = self.at - earlier.at
        percent = {}
        for pid, stat in self.processes.items():
            before = earlier.processes.get(pid)
            spent = stat.cpu_seconds - (before.cpu_seconds if before else 0.0)
            percent[pid] = 100 * spent / wall
        return percent

    def core_use_since(self, earlier: CpuSample) -> dict[int, CoreUse]:
        use = {}
        for core, now in self.cores.items():
            then = earlier.cores.get(core, CoreTicks(0, 0, 0))
            elapsed = now.total - then.total
            if elapsed <= 0:
                continue
            use[core] = CoreUse(
                busy=100 * (now.busy - then.busy) / elapsed,
                interrupts=100 * (now.interrupts - then.interrupts) / elapsed,
            )
        return use


def machine_busy(seconds: float = 1.0) -> dict[int, CoreUse]:
    """Return how busy each core is over the next ``seconds``, blocking meanwhile."""
    first = CpuSample.take()
    time.sleep(seconds)
    return CpuSample.take().core_use_since(first)


class CpuWindow(threading.Thread):
    """Measures CPU use of every process and of each core inside a load run.

    The window opens ``start_after`` seconds after :meth:`start` and lasts
    ``length`` seconds, so wrk's start-up (loading its pool) and wind-down stay
    outside it.
    """

    def __init__(self, start_after: float, length: float) -> None:
        super().__init__(daemon=True)
        self._start_after = start_after
        self._length = length
        self._stop_event = threading.Event()
        self.first: CpuSample | None = None
        self.last: CpuSample | None = None
        self.own: set[int] = set()
        """This process and its descendants when the window closed."""

    def run(self) -> None:
        if self._stop_event.wait(self._start_after):
            return
        self.first = CpuSample.take()
        if self._stop_event.wait(self._length):
            return
        self.last = CpuSample.take()
        me = os.getpid()
        self.own = {me, *descendants(me, self.last.processes)}

    def cancel(self) -> None:
        self._stop_event.set()

    @property
    def percent(self) -> dict[int, float]:
        """CPU use per PID in % of one core, or empty if the window never closed."""
        if self.first is None or self.last is None:
            return {}
        return self.last.percent_since(self.first)

    def others(self, minimum_percent: float = 2.0) -> list[tuple[str, float]]:
        """Return the processes this harness did not start that used at least
        ``minimum_percent`` of a core in the window, busiest first, by name."""
        if self.last is None:
            return []
        names = self.last.processes
        found = [
            (names[pid].name, percent)
            for pid, percent in self.percent.items()
            if pid not in self.own and percent >= minimum_percent
        ]
        return sorted(found, key=lambda item: -item[1])

    def foreign_percent(self) -> float:
        """Return CPU use, in % of one core, that this harness's processes do not
        account for: other processes (also short-lived ones the samples miss) and
        kernel work outside any process."""
        percent = self.percent
        own = sum(percent.get(pid, 0.0) for pid in self.own)
        # The cores' and the processes' times are read from different files a
        # moment apart, so with no other work the difference can fall below zero.
        return max(0.0, sum(use.busy for use in self.cores.values()) - own)

    @property
    def cores(self) -> dict[int, CoreUse]:
        """Use of each core, or empty if the window never closed."""
        if self.first is None or self.last is None:
            return {}
        return self.last.core_use_since(self.first)
