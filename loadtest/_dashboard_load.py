"""The local run behind ``scripts/render-dashboard``: services and a mixed load.

:func:`run` starts a private redis-server, ``hookgate serve``, one
``hookgate consume`` and Prometheus, each on a free port of 127.0.0.1, then sends a
bounded mix of webhooks for a fixed time, so that every panel of the dashboard has
data. It sends nothing to any other address, never uses the default Redis port,
and stops every process it started by PID, also when the run fails.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from hookgate.keys import events_stream, ingest_stream

from ._harness import server_env, start_redis
from ._processes import Placement, ProcessGroup, free_port
from ._requests import new_secret

# Each source: id, tenant, provider, and the variable of its secret.
SOURCES = (
    ("acme-mail", "acme", "standard-webhooks", "RENDER_ACME_MAIL_SECRET"),
    ("acme-gmail", "acme", "gmail-pubsub", "RENDER_ACME_GMAIL_TOKEN"),
    ("globex-github", "globex", "github", "RENDER_GLOBEX_GITHUB_SECRET"),
)
CONFIG = "[retention]\ninterval_s = 3600\n" + "".join(
    f'\n[[sources]]\nid = "{source}"\ntenant = "{tenant}"\nprovider = "{provider}"'
    f'\nsecret_env = ["{variable}"]\n'
    for source, tenant, provider, variable in SOURCES
)

# Request kinds and their shares of the load. The failing kinds give the rejection
# panels data, and "unknown" posts to a source id that the config lacks (404).
MIX = {
    "standard": 0.36,
    "github": 0.24,
    "gmail": 0.16,
    "forged-standard": 0.06,
    "forged-github": 0.06,
    "stale": 0.05,
    "bad-token": 0.04,
    "unknown": 0.03,
}
# The consumer reclaims an entry that stayed unacknowledged this long, and
# dead-letters it as poison after this many deliveries.
VISIBILITY_TIMEOUT_MS = 3000
MAX_DELIVERIES = 3
MAX_IN_FLIGHT = 64
# Spans of the timeline in shares of the load's length.
STOPPED, OUTAGE, STALLS = (0.1, 0.22), (0.33, 0.55), (0.7, 0.8)
STALL_MS = 500
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Timeline:
    """What happens when in a run, in seconds after the load starts.

    The consumer is stopped (SIGSTOP) for a while, so the group lag grows and then
    drains. During the outage globex's events stream is a plain string key, so
    every publish there fails (WRONGTYPE) and its entries stay pending until a
    reclaim succeeds, or until their deliveries run out and they are dead-lettered.
    In the stalls, CLIENT PAUSE holds Redis writes for :data:`STALL_MS` every second,
    so entries wait for their flush.
    """

    seconds: float

    def rate(self, at: float) -> float:
        """Return the requests per second to send at ``at``."""
        if at < 0.25 * self.seconds:
            return 40.0
        if at < 0.6 * self.seconds:
            return 160.0
        return 80.0

    def span(self, shares: tuple[float, float]) -> tuple[int, int]:
        """Return the first and the last second of a span given in shares of the run."""
        return int(shares[0] * self.seconds), int(shares[1] * self.seconds)

    def describe(self) -> str:
        stopped, outage = self.span(STOPPED), self.span(OUTAGE)
        stalls = self.span(STALLS)
        return (
            f"The consumer was stopped from {stopped[0]} s to {stopped[1]} s into the"
            f" load, globex's events stream was unwritable from {outage[0]} s to"
            f" {outage[1]} s, and Redis paused writes for {STALL_MS} ms each second"
            f" from {stalls[0]} s to {stalls[1]} s.\n3 entries of an unknown version"
            " were written to acme's ingest stream every 6 s."
        )


class Requests:
    """Build requests of each kind in :data:`MIX`, signed with the run's secrets."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self._mail_key = base64.b64decode(secrets["RENDER_ACME_MAIL_SECRET"][6:])
        self._github_key = secrets["RENDER_GLOBEX_GITHUB_SECRET"].encode()
        self._token = secrets["RENDER_ACME_GMAIL_TOKEN"]

    def build(self, kind: str) -> tuple[str, dict[str, str], bytes]:
        """Return the path, headers and body of one request of ``kind``."""
        body = json.dumps({"type": "invoice.paid", "data": {"id": uuid.uuid4().hex}})
        raw = body.encode()
        if kind in ("github", "forged-github"):
            digest = hmac.new(self._github_key, raw, hashlib.sha256).hexdigest()
            headers = {**JSON, "x-github-delivery": str(uuid.uuid4())}
            headers["x-github-event"] = "push"
            headers["x-hub-signature-256"] = "sha256=" + (
                "0" * 64 if kind == "forged-github" else digest
            )
            return "/hooks/globex-github", headers, raw
        if kind in ("gmail", "bad-token"):
            data = json.dumps({"emailAddress": "user@example.com", "historyId": 9876})
            message = {"data": base64.b64encode(data.encode()).decode()}
            message["messageId"] = uuid.uuid4().hex
            push = {"message": message, "subscription": "projects/p/subscriptions/s"}
            token = self._token if kind == "gmail" else "not-the-token"
            return f"/hooks/acme-gmail?token={token}", JSON, json.dumps(push).encode()

        # Standard Webhooks: the signed content is "{id}.{timestamp}.{body}".
        webhook_id = f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(time.time()) - (3600 if kind == "stale" else 0))
        signed = f"{webhook_id}.{timestamp}.".encode() + raw
        key = os.urandom(24) if kind == "forged-standard" else self._mail_key
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        headers = {**JSON, "webhook-id": webhook_id, "webhook-timestamp": timestamp}
        headers["webhook-signature"] = "v1," + signature.decode()
        path = "/hooks/initech-mail" if kind == "unknown" else "/hooks/acme-mail"
        return path, headers, raw


async def send_load(
    base_url: str,
    timeline: Timeline,
    requests: Requests,
    rng: random.Random,
    each_second: Callable[[int], None],
) -> Counter[int]:
    """Send the mix at the timeline's rates and return the count of each status.

    ``each_second`` runs once per whole second of the load, for its side events.
    At most :data:`MAX_IN_FLIGHT` requests are open at a time, so a slow gateway
    lowers the rate instead of piling up connections.
    """
    statuses: Counter[int] = Counter()
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    kinds, weights = list(MIX), list(MIX.values())
    loop = asyncio.get_running_loop()

    async def send(client: httpx.AsyncClient, kind: str) -> None:
        path, headers, body = requests.build(kind)
        try:
            response = await client.post(path, headers=headers, content=body)
            statuses[response.status_code] += 1
        except httpx.HTTPError:
            statuses[0] += 1
        finally:
            slots.release()

    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
    async with (
        httpx.AsyncClient(base_url=base_url, limits=limits) as client,
        asyncio.TaskGroup() as tasks,
    ):
        start = loop.time()
        owed, last, second = 0.0, 0.0, -1
        while (now := loop.time() - start) < timeline.seconds:
            # Every second gets its call, also after a stall of the loop.
            while second < int(now):
                second += 1
                each_second(second)
            owed += timeline.rate(now) * (now - last)
            last = now
            while owed >= 1:
                owed -= 1
                await slots.acquire()
                tasks.create_task(send(client, rng.choices(kinds, weights)[0]))
            await asyncio.sleep(0.05)
    return statuses


def wait_until(check: Callable[[], object], name: str, timeout: float = 30) -> None:
    """Call ``check`` until it returns a true value; raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, redis.RedisError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not ready within {timeout:.0f} s")
        time.sleep(0.2)


def run(
    work: Path, timeline: Timeline, group: ProcessGroup
) -> tuple[float, float, Counter[int], str]:
    """Start the services in ``work`` and send the load.

    Returns the Unix times when the load started and ended, the count of each HTTP
    status it got, and Prometheus' base URL. The caller stops ``group`` once it has
    queried Prometheus.
    """
    gateway_port, metrics_port, prometheus_port = (free_port() for _ in range(3))
    redis_server = start_redis(group, work, Placement(None, None, "not pinned"))
    client = redis_server.client
    secrets = {variable: os.urandom(16).hex() for *_, variable in SOURCES}
    secrets["RENDER_ACME_MAIL_SECRET"] = new_secret()
    env = server_env({**secrets, "REDIS_URL": redis_server.url})
    config = work / "hookgate.toml"
    config.write_text(CONFIG)
    hookgate = str(Path(sys.executable).with_name("hookgate"))

    serve = [hookgate, "serve", "--config", str(config), "--port", str(gateway_port)]
    group.start("gateway", serve, work / "gateway.log", env)
    gateway = f"http://127.0.0.1:{gateway_port}"
    wait_until(lambda: httpx.get(gateway + "/readyz").is_success, "hookgate serve")

    scrape = f"""\
global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: hookgate-gateway
    static_configs: [{{targets: ["127.0.0.1:{gateway_port}"]}}]
  - job_name: hookgate-consumer
    static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
"""
    (work / "prometheus.yml").write_text(scrape)
    prometheus_argv = [shutil.which("prometheus") or "prometheus"]
    prometheus_argv += [f"--config.file={work / 'prometheus.yml'}"]
    prometheus_argv += [f"--storage.tsdb.path={work / 'tsdb'}"]
    prometheus_argv += [f"--web.listen-address=127.0.0.1:{prometheus_port}"]
    group.start("prometheus", prometheus_argv, work / "prometheus.log")
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    wait_until(lambda: httpx.get(prometheus + "/-/ready").is_success, "prometheus")

    consume = [hookgate, "consume", "--config", str(config), "--name", "render-1"]
    consume += ["--metrics-port", str(metrics_port)]
    consume += ["--visibility-timeout-ms", str(VISIBILITY_TIMEOUT_MS)]
    consume += ["--max-deliveries", str(MAX_DELIVERIES)]
    consumer = group.start("consumer", consume, work / "consumer.log", env)
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    wait_until(lambda: httpx.get(metrics).is_success, "hookgate consume")
    stopped, outage = timeline.span(STOPPED), timeline.span(OUTAGE)
    stalls = timeline.span(STALLS)

    jitter = random.Random(11)

    def each_second(second: int) -> None:
        if second % 6 == 3:
            # Entries with an unknown entry version, as a newer gateway might
            # write: the consumer dead-letters them as EntryError.
            for _ in range(3):
                client.xadd(ingest_stream("acme"), {"v": "9", "body": "{}"})
        if second == stopped[0]:
            consumer.send_signal(signal.SIGSTOP)
        if second == stopped[1]:
            consumer.send_signal(signal.SIGCONT)
        if second == outage[0]:
            client.set(events_stream("globex"), "not a stream")
        if second == outage[1]:
            client.delete(events_stream("globex"))
        if stalls[0] <= second <= stalls[1]:
            # A random start within the second, because pauses on whole seconds
            # keep one phase against the 1 s scrapes and may never be scraped.
            delay = jitter.random()
            loop = asyncio.get_running_loop()
            loop.call_later(delay, lambda: client.client_pause(STALL_MS, all=False))

    requests = Requests(secrets)
    started = time.time()
    statuses = asyncio.run(
        send_load(gateway, timeline, requests, random.Random(7), each_second)
    )
    ended = time.time()
    # Two more scrapes, so the last second of the load is in Prometheus.
    time.sleep(2.5)
    client.close()
    return started, ended, statuses, prometheus
