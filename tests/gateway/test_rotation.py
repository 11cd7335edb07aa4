"""Secret rotation with expiry, against real gateway processes and Redis.

The ``*-rotated`` sources of ``tests/conftest.py`` list the first secret of their
plain twin with a ``not_after`` in the past, so the same request that its twin
accepts must be rejected there. GitHub, Stripe and generic HMAC test their expired
secrets in their own modules.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import msgspec
import pytest
import redis

from hookgate.tests.conftest import (
    GMAIL_TOKEN,
    GMAIL_TOKEN_NEXT,
    GRAPH_CLIENT_STATE,
    GRAPH_CLIENT_STATE_NEXT,
    STANDARD_SECRET,
    STANDARD_SECRET_NEXT,
    TEST_CONFIG,
    Process,
    RedisServer,
    start_gateway,
)
from hookgate.tests.gateway.helpers import (
    entry_count,
    gmail_push,
    graph_item,
    log_records,
    standard_headers,
)

BODY = b'{"type":"invoice.paid","data":{"id":"inv_9"}}'


class TestStandardWebhooks:
    def test_expired_secret_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = standard_headers(BODY, secret=STANDARD_SECRET)

        response = http.post("/hooks/acme-mail-rotated", content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0

    def test_same_secret_unexpired_elsewhere(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = standard_headers(BODY, secret=STANDARD_SECRET)

        response = http.post("/hooks/acme-mail", content=BODY, headers=headers)

        assert response.status_code == 202

    def test_next_secret_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = standard_headers(BODY, secret=STANDARD_SECRET_NEXT)

        response = http.post("/hooks/acme-mail-rotated", content=BODY, headers=headers)

        assert response.status_code == 202
        assert entry_count(redis_client) == 1


class TestGraph:
    URL = "/hooks/acme-outlook-rotated"

    def test_expired_client_state_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        body = json.dumps({"value": [graph_item(client_state=GRAPH_CLIENT_STATE)]})

        response = http.post(self.URL, content=body)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client_state"
        assert entry_count(redis_client) == 0

    def test_next_client_state_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        item = graph_item(client_state=GRAPH_CLIENT_STATE_NEXT)

        response = http.post(self.URL, content=json.dumps({"value": [item]}))

        assert response.status_code == 202
        assert entry_count(redis_client) == 1

    def test_expired_items_dropped(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        old = graph_item(client_state=GRAPH_CLIENT_STATE, resource_id="old")
        new = graph_item(client_state=GRAPH_CLIENT_STATE_NEXT, resource_id="new")

        response = http.post(self.URL, content=json.dumps({"value": [old, new]}))

        assert response.status_code == 202
        assert "event_id" in response.json()
        (entry,) = redis_client.xrange("hg:{acme}:ingest")
        assert b'"new"' in entry[1][b"body"]


class TestGmail:
    URL = "/hooks/globex-gmail-rotated"

    def test_expired_token_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(
            self.URL, params={"token": GMAIL_TOKEN}, content=gmail_push()
        )

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert entry_count(redis_client) == 0

    def test_next_token_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(
            self.URL, params={"token": GMAIL_TOKEN_NEXT}, content=gmail_push()
        )

        assert response.status_code == 202
        assert entry_count(redis_client) == 1


def test_start_logs_expired_secrets(gateway: Process) -> None:
    records = log_records(gateway)
    expired = {
        record["source_id"]: record
        for record in records
        if record.get("event") == "secret.expired"
    }

    assert set(expired) == {
        "acme-github",
        "acme-stripe",
        "acme-hmac",
        "acme-mail-rotated",
        "acme-outlook-rotated",
        "globex-gmail-rotated",
    }
    assert expired["acme-github"]["expired"] == 1
    assert expired["acme-github"]["active"] == 2
    assert GMAIL_TOKEN not in gateway.log()
    assert STANDARD_SECRET not in gateway.log()


# Seconds from the rotating gateway's configuration to the old secret's expiry:
# enough for the gateway to start, which usually takes one or two seconds, and for
# requests to run before the expiry.
EXPIRES_IN_S = 6
# Requests keep going this long after the expiry.
RUN_PAST_EXPIRY_S = 2


@pytest.fixture
def rotating_gateway(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Process, float]]:
    """A gateway whose source ``acme-rotating`` has an old secret expiring soon.

    Yields the gateway and the old secret's ``not_after`` as Unix seconds.
    """
    not_after = int(time.time()) + EXPIRES_IN_S
    stamp = datetime.fromtimestamp(not_after, tz=UTC).isoformat()
    config = (
        TEST_CONFIG
        + f"""
[[sources]]
id = "acme-rotating"
tenant = "acme"
provider = "standard-webhooks"
secrets = [
  {{ env = "TEST_STANDARD_SECRET", not_after = "{stamp}" }},
  {{ env = "TEST_STANDARD_SECRET_NEXT" }},
]
"""
    )
    process = start_gateway(
        tmp_path_factory.mktemp("rotating"), redis_server.url, config
    )
    yield process, float(not_after)
    process.stop()


class Outcome(msgspec.Struct):
    secret: str
    sent_at: float
    answered_at: float
    status: int


def test_old_secret_stops_at_expiry(
    rotating_gateway: tuple[Process, float], redis_client: redis.Redis
) -> None:
    gateway, not_after = rotating_gateway
    outcomes: list[Outcome] = []

    def send_until_past_expiry() -> None:
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            number = 0
            while time.time() < not_after + RUN_PAST_EXPIRY_S:
                for secret in (STANDARD_SECRET, STANDARD_SECRET_NEXT):
                    number += 1
                    headers = standard_headers(
                        BODY, secret=secret, msg_id=f"msg_rotation_{number}"
                    )
                    sent_at = time.time()
                    response = client.post(
                        "/hooks/acme-rotating", content=BODY, headers=headers
                    )
                    outcomes.append(
                        Outcome(secret, sent_at, time.time(), response.status_code)
                    )

    sender = threading.Thread(target=send_until_past_expiry)
    sender.start()
    sender.join(timeout=EXPIRES_IN_S + RUN_PAST_EXPIRY_S + 30)

    assert not sender.is_alive()
    old = [outcome for outcome in outcomes if outcome.secret == STANDARD_SECRET]
    new = [outcome for outcome in outcomes if outcome.secret == STANDARD_SECRET_NEXT]
    before = [outcome for outcome in old if outcome.answered_at < not_after]
    after = [outcome for outcome in old if outcome.sent_at > not_after]
    assert before, "no old-secret request finished before the expiry"
    assert after, "no old-secret request started after the expiry"
    assert {outcome.status for outcome in before} == {202}
    assert {outcome.status for outcome in after} == {401}
    # A request in flight at the expiry may be judged on either side of it.
    assert {outcome.status for outcome in old} <= {202, 401}
    assert {outcome.status for outcome in new} == {202}
    accepted = sum(outcome.status == 202 for outcome in outcomes)
    assert entry_count(redis_client) == accepted
