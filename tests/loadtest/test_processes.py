"""CPU accounting of the load harnesses, on samples built by hand."""

from __future__ import annotations

from hookgate.loadtest._processes import CoreTicks, CpuSample, CpuWindow, ProcessStat


def window(core_busy_ticks: int, own_cpu_seconds: float) -> CpuWindow:
    """Return a closed one-second window over one core and one own process."""
    measured = CpuWindow(start_after=0, length=1)
    measured.first = CpuSample(
        at=0.0,
        processes={7: ProcessStat("worker", 1, 0.0)},
        cores={0: CoreTicks(busy=0, interrupts=0, total=0)},
    )
    measured.last = CpuSample(
        at=1.0,
        processes={7: ProcessStat("worker", 1, own_cpu_seconds)},
        cores={0: CoreTicks(busy=core_busy_ticks, interrupts=0, total=100)},
    )
    measured.own = {7}
    return measured


def test_foreign_share_is_the_rest() -> None:
    assert round(window(80, 0.5).foreign_percent(), 6) == 30.0


def test_foreign_share_never_negative() -> None:
    # The process read 2 % more than the core, as samples a moment apart can.
    assert window(50, 0.52).foreign_percent() == 0.0
