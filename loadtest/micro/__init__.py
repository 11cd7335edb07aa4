"""Micro benchmarks of the gateway's hot-path steps, each beside its baseline.

Run with ``scripts/bench-micro``. The ordinary test run does not collect them,
because pytest's ``testpaths`` is ``tests``.
"""
