"""A check that a verifier releases the GIL while it computes the MAC."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


def run_with_ticker(call: Callable[[], int]) -> tuple[int, bool]:
    """Run ``call`` and return its result and whether another thread ran meanwhile.

    The switch interval is set far longer than the call, so the main thread keeps
    the GIL until a call releases it. A ticker thread can only advance while
    ``call`` has released the GIL.
    """
    ticks = [0]
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(60)
    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        while ticks[0] == 0:
            time.sleep(0.001)
        before = ticks[0]
        result = call()
        after = ticks[0]
    finally:
        stop.set()
        ticker.join()
        sys.setswitchinterval(switch_interval)
    return result, after > before
