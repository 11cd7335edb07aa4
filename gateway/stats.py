"""Per-process counters of the gateway, for health checks, tests and metrics."""

from __future__ import annotations

import collections

# Keys are dotted names such as "rejected.invalid_signature"; each Granian worker
# process has its own counters.
counters: collections.Counter[str] = collections.Counter()
