"""hookgate: a webhook ingest gateway on Redis Streams.

The installed package maps the source tree's subsystems into one namespace:

- ``hookgate.gateway``: the HTTP ingest hot path (Granian RSGI) and its batcher.
- ``hookgate.fastpath``: signature verification, compiled with a pure-Python twin.
- ``hookgate.consumers``: FastStream apps that process ingested entries.
- ``hookgate.loadtest``: load tests and the benchmark harness.

Modules directly under ``hookgate`` are shared by all of them: configuration,
the Redis key layout, the ingest entry layout and the downstream event contract.
"""

__version__ = "0.1.0"
