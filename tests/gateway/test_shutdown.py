"""A gateway stopped under load answers what it accepted and loses nothing."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import redis

from hookgate.tests.conftest import Process, RedisServer, start_gateway
from hookgate.tests.gateway.helpers import standard_headers

Outcome = httpx.Response | httpx.TransportError


async def load_then_stop(gateway: Process, *, stop_after: int) -> list[Outcome]:
    """Send signed requests from 32 clients; SIGTERM once ``stop_after`` answered."""
    requests = []
    for n in range(4 * stop_after):
        body = f'{{"type":"t","data":{{"n":{n}}}}}'.encode()
        requests.append((body, standard_headers(body, msg_id=f"msg_stop_{n}")))
    outcomes: list[Outcome] = []
    enough = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient) -> None:
        while requests:
            body, headers = requests.pop()
            try:
                outcomes.append(
                    await client.post("/hooks/acme-mail", content=body, headers=headers)
                )
            except httpx.TransportError as exc:
                outcomes.append(exc)
            if len(outcomes) >= stop_after:
                enough.set()

    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        loops = [asyncio.create_task(client_loop(client)) for _ in range(32)]
        await enough.wait()
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.gather(*loops)
    return outcomes


def test_sigterm_under_load_loses_nothing(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    gateway = start_gateway(tmp_path, redis_server.url)

    outcomes = asyncio.run(load_then_stop(gateway, stop_after=200))
    returncode = gateway.process.wait(timeout=30)

    responses = [o for o in outcomes if isinstance(o, httpx.Response)]
    accepted = {r.json()["event_id"] for r in responses if r.status_code == 202}
    stored = {
        fields[b"event_id"].decode()
        for _, fields in redis_client.xrange("hg:{acme}:ingest")
    }
    assert returncode == 0, gateway.log()
    assert {r.status_code for r in responses} <= {202, 503}
    assert len(accepted) >= 200
    assert accepted <= stored
