"""What the bench sends: its gateway configuration, secrets and request pools.

The bench's gateway has four sources. ``bench`` (Standard Webhooks), ``bench-graph``
and ``bench-gmail`` belong to tenant ``bench`` and receive the wrk runs. ``open``
(Standard Webhooks, tenant ``open``) receives only the open-model run, so its
stream contains exactly that run's events. Nothing here sends traffic.
"""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass
from pathlib import Path

from hookgate import keys
from hookgate.loadtest._harness import SECRET_VARIABLE, SOURCE_ID, TENANT
from hookgate.loadtest._providers import Gmail, Graph, SignedRequest, Standard

RAW_POOL_MARKER = b"hookgate-raw-pool 1"
OPEN_SOURCE = "open"
OPEN_TENANT = "open"
OPEN_STREAM = keys.ingest_stream(OPEN_TENANT)
GRAPH_SOURCE = "bench-graph"
GMAIL_SOURCE = "bench-gmail"
GRAPH_VARIABLE = "HOOKGATE_BENCH_GRAPH_CLIENT_STATE"
GMAIL_VARIABLE = "HOOKGATE_BENCH_GMAIL_TOKEN"

# Shares of the realistic mix: mostly Standard Webhooks, with Graph collections
# and Gmail pushes, as a mail-heavy tenant receives them.
MIX_STANDARD = 0.7
MIX_GRAPH = 0.2
GRAPH_MAX_ITEMS = 50
# Fixed, so every run of the bench sends the same mix.
MIX_SEED = 20261204


@dataclass(frozen=True)
class Secrets:
    """The secrets of one bench invocation, made up at its start."""

    standard: str
    graph_client_state: str
    gmail_token: str

    @classmethod
    def new(cls) -> Secrets:
        return cls(
            standard="whsec_" + base64.b64encode(os.urandom(24)).decode(),
            graph_client_state=os.urandom(16).hex(),
            gmail_token=os.urandom(16).hex(),
        )

    def environment(self) -> dict[str, str]:
        return {
            SECRET_VARIABLE: self.standard,
            GRAPH_VARIABLE: self.graph_client_state,
            GMAIL_VARIABLE: self.gmail_token,
        }


def gateway_config(*, max_batch: int | None, batch_io_threads: bool = False) -> str:
    """Return the bench's gateway TOML; ``max_batch`` None keeps the default."""
    settings = []
    if max_batch is not None:
        settings.append(f"max_batch = {max_batch}")
    if batch_io_threads:
        settings.append("batch_io_threads = true")
    gateway = ""
    if settings:
        gateway = "[gateway]\n" + "\n".join(settings) + "\n\n"
    return f"""\
# Written by hookgate bench.
{gateway}[[sources]]
id = "{SOURCE_ID}"
tenant = "{TENANT}"
provider = "standard-webhooks"
secret_env = ["{SECRET_VARIABLE}"]

[[sources]]
id = "{GRAPH_SOURCE}"
tenant = "{TENANT}"
provider = "graph"
secret_env = ["{GRAPH_VARIABLE}"]

[[sources]]
id = "{GMAIL_SOURCE}"
tenant = "{TENANT}"
provider = "gmail-pubsub"
secret_env = ["{GMAIL_VARIABLE}"]

[[sources]]
id = "{OPEN_SOURCE}"
tenant = "{OPEN_TENANT}"
provider = "standard-webhooks"
secret_env = ["{SECRET_VARIABLE}"]
"""


def graph_items(rng: random.Random) -> int:
    """Draw a collection size from 1 to 50, most of them small."""
    return 1 + int((GRAPH_MAX_ITEMS - 1) * rng.random() ** 3)


def mix_requests(secrets: Secrets, count: int) -> list[SignedRequest]:
    """Return ``count`` requests of the realistic mix, each with its own ids."""
    rng = random.Random(MIX_SEED)
    standard = Standard(SOURCE_ID, secrets.standard)
    graph = Graph(GRAPH_SOURCE, secrets.graph_client_state)
    gmail = Gmail(GMAIL_SOURCE, secrets.gmail_token)
    requests = []
    for _ in range(count):
        draw = rng.random()
        if draw < MIX_STANDARD:
            requests.append(standard.build())
        elif draw < MIX_STANDARD + MIX_GRAPH:
            requests.append(graph.build(graph_items(rng)))
        else:
            requests.append(gmail.build())
    return requests


def write_raw_pool(path: Path, requests: list[bytes]) -> None:
    """Write whole requests for ``wrk/raw_requests.lua``: length line, then bytes."""
    with path.open("wb") as pool:
        pool.write(RAW_POOL_MARKER + b"\n")
        for request in requests:
            pool.write(b"%d\n" % len(request))
            pool.write(request)


class MixPool:
    """A pool writer for :func:`hookgate.loadtest._harness.measure` that sends the
    realistic mix and remembers the events per request of the last pool."""

    def __init__(self, secrets: Secrets, host: str) -> None:
        self.secrets = secrets
        self.host = host
        self.events_per_request = 1.0

    def __call__(self, path: Path, count: int) -> None:
        requests = mix_requests(self.secrets, count)
        self.events_per_request = sum(r.events for r in requests) / len(requests)
        write_raw_pool(path, [request.raw(self.host) for request in requests])


def open_requests(secrets: Secrets, host: str, count: int) -> list[bytes]:
    """Return ``count`` signed Standard Webhooks requests for the ``open`` source."""
    builder = Standard(OPEN_SOURCE, secrets.standard)
    return [builder.build().raw(host) for _ in range(count)]
