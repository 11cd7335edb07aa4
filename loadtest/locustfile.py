"""Locust users that send signed webhooks of each provider to a running gateway.

Usage, against a gateway started with the same configuration and secrets::

    HOOKGATE_CONFIG=examples/hookgate.toml locust -f loadtest/locustfile.py \\
        --host http://127.0.0.1:8000                     # web UI on :8089
    HOOKGATE_CONFIG=... locust -f loadtest/locustfile.py --host ... \\
        --headless -u 20 -r 20 -t 30s StandardUser GraphUser

Environment:

``HOOKGATE_CONFIG``
    The gateway's TOML file (required). Each user signs with the first unexpired
    secret of a source of its provider. The secrets come from the environment
    variables that the file names in ``secret_env`` and ``secrets``, as the
    gateway reads them, so export those too (``source .data/run.env`` after
    ``scripts/run``).
``HOOKGATE_LOCUST_SOURCE_<PROVIDER>``
    The source id to send to for one provider, e.g.
    ``HOOKGATE_LOCUST_SOURCE_GRAPH=acme-outlook``; by default the first source of
    that provider in the file. ``<PROVIDER>`` is ``STANDARD_WEBHOOKS``, ``GRAPH``,
    ``GMAIL_PUBSUB``, ``GITHUB`` or ``STRIPE``.
``HOOKGATE_LOCUST_RATE``
    Requests per second that each user offers, paced with locust's
    ``constant_throughput``; users times this rate is then the offered rate. By
    default each user sends again at most 10 ms after a response, which finds the
    highest rate the users reach.
``HOOKGATE_LOCUST_EVENT_LOG``
    Optional file to which every event id answered 202 is appended, one a line,
    so a test can look for each of them in the ingest stream.

A user whose provider has no source in the file is left out. A Gmail source that
authenticates by OIDC (``[sources.oidc]``) is skipped, because locust cannot sign
Google's tokens. Each task fails unless the response is 202 with one event id per
event sent (one per Graph item).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import IO, Any

import msgspec
from locust import FastHttpUser, between, constant_throughput, events, task

from hookgate.config import Source, load_config
from hookgate.loadtest._bench_load import graph_items
from hookgate.loadtest._providers import (
    GitHub,
    Gmail,
    Graph,
    SignedRequest,
    Standard,
    Stripe,
)

CONFIG_VARIABLE = "HOOKGATE_CONFIG"
EVENT_LOG_VARIABLE = "HOOKGATE_LOCUST_EVENT_LOG"


class _Accepted(msgspec.Struct):
    event_id: str | None = None
    event_ids: list[str] | None = None


_decode_accepted = msgspec.json.Decoder(_Accepted).decode


def _pick_source(sources: tuple[Source, ...], provider: str) -> Source | None:
    variable = "HOOKGATE_LOCUST_SOURCE_" + provider.upper().replace("-", "_")
    wanted = os.environ.get(variable)
    for source in sources:
        if wanted is not None and source.id != wanted:
            continue
        if source.provider != provider:
            continue
        if provider == "gmail-pubsub" and source.oidc is not None:
            continue
        if source.active_secrets(time.time()):
            return source
    return None


def _builders() -> dict[str, Callable[[], SignedRequest]]:
    """Return one request builder per provider that the configuration serves."""
    path = os.environ.get(CONFIG_VARIABLE)
    if not path:
        raise SystemExit(
            f"{CONFIG_VARIABLE} is not set; point it at the gateway's TOML file"
        )
    sources = load_config(path).sources
    now = time.time()
    rng = random.Random()
    found: dict[str, Callable[[], SignedRequest]] = {}
    if source := _pick_source(sources, "standard-webhooks"):
        found["standard-webhooks"] = Standard(
            source.id, source.active_secrets(now)[0]
        ).build
    if source := _pick_source(sources, "graph"):
        graph = Graph(source.id, source.active_secrets(now)[0])
        found["graph"] = lambda: graph.build(graph_items(rng))
    if source := _pick_source(sources, "gmail-pubsub"):
        found["gmail-pubsub"] = Gmail(source.id, source.active_secrets(now)[0]).build
    if source := _pick_source(sources, "github"):
        found["github"] = GitHub(source.id, source.active_secrets(now)[0]).build
    if source := _pick_source(sources, "stripe"):
        found["stripe"] = Stripe(source.id, source.active_secrets(now)[0]).build
    return found


BUILDERS = _builders()
_event_log: IO[str] | None = None


def _open_event_log(**_: Any) -> None:
    global _event_log
    path = os.environ.get(EVENT_LOG_VARIABLE)
    if path:
        _event_log = open(path, "a")  # noqa: SIM115 - open for the whole test


def _close_event_log(**_: Any) -> None:
    global _event_log
    if _event_log is not None:
        _event_log.close()
        _event_log = None


events.test_start.add_listener(_open_event_log)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_close_event_log)  # type: ignore[no-untyped-call]


class _WebhookUser(FastHttpUser):
    """Sends requests built for one provider and checks each 202 body."""

    abstract = True
    wait_time = (
        constant_throughput(float(os.environ["HOOKGATE_LOCUST_RATE"]))
        if os.environ.get("HOOKGATE_LOCUST_RATE")
        else between(0.0, 0.01)
    )

    def send(self, provider: str) -> None:
        request = BUILDERS[provider]()
        with self.client.post(
            request.path,
            # Signatures cover these exact bytes; locust 2.47 sends bytes as they
            # are, though its annotation lists only str and dict.
            data=request.body,  # type: ignore[arg-type]
            headers=request.headers,
            name=f"{provider} /hooks/{{source_id}}",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"status {response.status_code}: {response.text}")
                return
            try:
                accepted = _decode_accepted(response.content or b"")
            except msgspec.DecodeError as exc:
                response.failure(f"invalid 202 body: {exc}")
                return
            ids = accepted.event_ids or []
            if accepted.event_id is not None:
                ids = [accepted.event_id]
            if len(ids) != request.events:
                response.failure(f"{len(ids)} event ids for {request.events} events")
                return
            if not all(event_id.startswith("evt_") for event_id in ids):
                response.failure(f"invalid event ids: {ids[:3]}")
                return
            if _event_log is not None:
                _event_log.write("".join(f"{event_id}\n" for event_id in ids))
            response.success()


class StandardUser(_WebhookUser):
    """Standard Webhooks deliveries with 1 KB bodies."""

    abstract = "standard-webhooks" not in BUILDERS

    @task
    def standard(self) -> None:
        self.send("standard-webhooks")


class GraphUser(_WebhookUser):
    """Microsoft Graph collections of 1 to 50 items, each with clientState."""

    abstract = "graph" not in BUILDERS

    @task
    def graph(self) -> None:
        self.send("graph")


class GmailUser(_WebhookUser):
    """Gmail notifications in Pub/Sub push envelopes, token in the query."""

    abstract = "gmail-pubsub" not in BUILDERS

    @task
    def gmail(self) -> None:
        self.send("gmail-pubsub")


class GitHubUser(_WebhookUser):
    """GitHub push deliveries with X-Hub-Signature-256."""

    abstract = "github" not in BUILDERS

    @task
    def github(self) -> None:
        self.send("github")


class StripeUser(_WebhookUser):
    """Stripe events with a v1 Stripe-Signature."""

    abstract = "stripe" not in BUILDERS

    @task
    def stripe(self) -> None:
        self.send("stripe")


# Task weights of the mix, in twentieths: mostly Standard Webhooks, then Graph,
# then the rest. Locust picks uniformly from its task list, so a task appears in
# the list as many times as its weight.
MIX_WEIGHTS = {
    "standard-webhooks": 12,
    "graph": 4,
    "gmail-pubsub": 2,
    "github": 1,
    "stripe": 1,
}


def _mix_task(provider: str) -> Callable[[_WebhookUser], None]:
    def send(user: _WebhookUser) -> None:
        user.send(provider)

    send.__name__ = provider.replace("-", "_")
    return send


class MixUser(_WebhookUser):
    """A realistic mix of every provider the configuration serves."""

    abstract = not BUILDERS
    tasks = [  # noqa: RUF012 - locust reads this class attribute
        _mix_task(provider)
        for provider, weight in MIX_WEIGHTS.items()
        if provider in BUILDERS
        for _ in range(weight)
    ]
