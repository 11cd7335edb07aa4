"""Microsoft Graph change notifications against a real gateway process and Redis."""

from __future__ import annotations

import json

import httpx
import redis

from hookgate.tests.conftest import Process
from hookgate.tests.gateway.helpers import (
    entry_count,
    graph_item,
    graph_lifecycle,
    log_records,
)

URL = "/hooks/acme-outlook"


def test_handshake_echoes_decoded_token(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    token = (
        "Validation: Testing client application reachability for subscription"
        " Request-Id: 25b4a9f1 & more+plus/ü"
    )

    response = http.post(URL, params={"validationToken": token})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == token
    assert entry_count(redis_client) == 0


def test_handshake_percent_encoded_token(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(f"{URL}?validationToken=a%20b%2Bc%26d%3De")

    assert response.status_code == 200
    assert response.text == "a b+c&d=e"
    assert entry_count(redis_client) == 0


def test_collection_item_becomes_entry(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    item = graph_item()
    body = json.dumps({"value": [item]}, indent=2).encode()

    response = http.post(
        URL, content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    fields = entry[1]
    assert fields[b"type"] == b"graph.notification"
    assert fields[b"event_id"] == response.json()["event_id"].encode()
    assert json.loads(fields[b"body"]) == item
    # The entry's body is the item's own bytes, sliced from the request.
    assert fields[b"body"] in body


def test_mismatched_client_state_dropped(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    good = graph_item(resource="Users/0a1b2c/Messages/good")
    bad = graph_item(client_state="forged", resource="Users/0a1b2c/Messages/bad")
    body = json.dumps({"value": [bad, good]}).encode()

    response = http.post(URL, content=body)

    assert response.status_code == 202
    entries = redis_client.xrange("hg:{acme}:ingest")
    assert len(entries) == 1
    assert (
        json.loads(entries[0][1][b"body"])["resource"] == "Users/0a1b2c/Messages/good"
    )


def test_dropped_items_name_subscriptions(
    gateway: Process, http: httpx.Client, redis_client: redis.Redis
) -> None:
    forged = "forged-state-value"
    bad = [graph_item(client_state=forged) for _ in range(7)]
    for index, item in enumerate(bad):
        item["subscriptionId"] = f"sub-{index}-" + "x" * 100
    body = json.dumps({"value": [graph_item(), *bad]}).encode()

    response = http.post(URL, content=body)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1
    (record,) = [
        record
        for record in log_records(gateway)
        if record["event"] == "graph.notifications_dropped" and record["count"] == 7
    ]
    names = record["subscription_ids"]
    assert len(names) == 5
    assert all(len(name) == 64 for name in names)
    assert all(name.startswith("sub-") for name in names)
    assert forged not in gateway.log()


def test_no_matching_client_state_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = json.dumps({"value": [graph_item(client_state="forged")]}).encode()

    response = http.post(URL, content=body)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client_state"
    assert entry_count(redis_client) == 0


def test_missing_client_state_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    item = graph_item()
    del item["clientState"]

    response = http.post(URL, content=json.dumps({"value": [item]}).encode())

    assert response.status_code == 401
    assert entry_count(redis_client) == 0


def test_each_item_own_event(http: httpx.Client, redis_client: redis.Redis) -> None:
    items = [graph_item(resource=f"Users/u{i}/Messages/m{i}") for i in range(5)]

    response = http.post(URL, content=json.dumps({"value": items}).encode())

    assert response.status_code == 202
    event_ids = response.json()["event_ids"]
    assert len(set(event_ids)) == 5
    entries = redis_client.xrange("hg:{acme}:ingest")
    assert [e[1][b"event_id"].decode() for e in entries] == event_ids


def test_lifecycle_notification_enqueued(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = json.dumps({"value": [graph_lifecycle("subscriptionRemoved")]}).encode()

    response = http.post(URL, content=body)

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    assert entry[1][b"type"] == b"graph.lifecycle"


def test_empty_collection_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(URL, content=b'{"value": []}')

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0


def test_malformed_json_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.post(URL, content=b'{"value": [')

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert entry_count(redis_client) == 0


def test_item_not_object_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(URL, content=b'{"value": ["text"]}')

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0


def test_incomplete_items_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    broken: list[dict[str, object]] = []
    for field in ("resource", "changeType", "subscriptionId"):
        item = graph_item()
        del item[field]
        broken.append(item)
    broken.append(graph_item(change_type="exploded"))
    broken.append(graph_lifecycle("renamed"))

    for item in broken:
        response = http.post(URL, content=json.dumps({"value": [item]}).encode())

        assert response.status_code == 400, item
        assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0
