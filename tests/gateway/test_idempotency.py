"""Repeated deliveries of one provider event are written once."""

from __future__ import annotations

import asyncio
import json

import httpx
import redis

from hookgate.tests.conftest import GMAIL_TOKEN, Process
from hookgate.tests.gateway.helpers import (
    entry_count,
    gmail_push,
    graph_item,
    graph_lifecycle,
    standard_headers,
)

BODY = b'{"type":"invoice.paid","data":{"id":"inv_3"}}'


def test_repeat_answers_original_id(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = standard_headers(BODY, msg_id="msg_repeat")

    first = http.post("/hooks/acme-mail", content=BODY, headers=headers)
    second = http.post("/hooks/acme-mail", content=BODY, headers=headers)

    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json()["event_id"] == first.json()["event_id"]
    assert entry_count(redis_client) == 1


def test_other_id_written_again(http: httpx.Client, redis_client: redis.Redis) -> None:
    first = http.post(
        "/hooks/acme-mail", content=BODY, headers=standard_headers(BODY, msg_id="msg_a")
    )
    second = http.post(
        "/hooks/acme-mail", content=BODY, headers=standard_headers(BODY, msg_id="msg_b")
    )

    assert second.json()["event_id"] != first.json()["event_id"]
    assert entry_count(redis_client) == 2


def test_seen_key_expires_after_window(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = standard_headers(BODY, msg_id="msg_ttl")

    http.post("/hooks/acme-mail", content=BODY, headers=headers)

    ttl = redis_client.ttl("hg:{acme}:seen:acme-mail:msg_ttl")
    assert 72 * 3600 - 60 < ttl <= 72 * 3600


def test_concurrent_repeats_write_once(
    gateway: Process, redis_client: redis.Redis
) -> None:
    headers = standard_headers(BODY, msg_id="msg_race")

    async def deliver_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            requests = [
                client.post("/hooks/acme-mail", content=BODY, headers=headers)
                for _ in range(50)
            ]
            return await asyncio.gather(*requests)

    responses = asyncio.run(deliver_all())

    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["event_id"] for response in responses}) == 1
    assert entry_count(redis_client) == 1


def test_graph_repeat_written_once(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = json.dumps({"value": [graph_item()]}).encode()

    first = http.post("/hooks/acme-outlook", content=body)
    second = http.post("/hooks/acme-outlook", content=body)

    assert second.json()["event_id"] == first.json()["event_id"]
    assert entry_count(redis_client) == 1


def test_graph_later_change_written(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    first_change = graph_item()
    later_change = graph_item(etag='W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHg"')

    first = http.post("/hooks/acme-outlook", json={"value": [first_change]})
    later = http.post("/hooks/acme-outlook", json={"value": [later_change]})

    assert later.status_code == 202
    assert later.json()["event_id"] != first.json()["event_id"]
    assert entry_count(redis_client) == 2


def test_graph_reformatted_repeat_written_once(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    item = graph_item()
    compact = json.dumps({"value": [item]}, separators=(",", ":"))
    # A retry after the subscription was renewed carries a later expiration.
    renewed = {**item, "subscriptionExpirationDateTime": "2026-12-08T18:23:45Z"}
    reordered = json.dumps({"value": [dict(reversed(renewed.items()))]}, indent=2)

    first = http.post("/hooks/acme-outlook", content=compact)
    second = http.post("/hooks/acme-outlook", content=reordered)

    assert second.json()["event_id"] == first.json()["event_id"]
    assert entry_count(redis_client) == 1


def test_graph_lifecycle_events_each_written(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = json.dumps({"value": [graph_lifecycle("missed")]})

    first = http.post("/hooks/acme-outlook", content=body)
    second = http.post("/hooks/acme-outlook", content=body)

    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json()["event_id"] != first.json()["event_id"]
    assert entry_count(redis_client) == 2


def test_graph_unversioned_changes_each_written(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    item = graph_item()
    del item["resourceData"]
    body = json.dumps({"value": [item]})

    first = http.post("/hooks/acme-outlook", content=body)
    second = http.post("/hooks/acme-outlook", content=body)

    assert second.json()["event_id"] != first.json()["event_id"]
    assert entry_count(redis_client) == 2
    # Nothing would ever read a seen key for them, so none is written.
    assert redis_client.keys("hg:{acme}:seen:*") == []


def test_graph_partial_repeat(http: httpx.Client, redis_client: redis.Redis) -> None:
    old = graph_item(resource="Users/u/Messages/old", resource_id="old")
    new = graph_item(resource="Users/u/Messages/new", resource_id="new")

    first = http.post("/hooks/acme-outlook", content=json.dumps({"value": [old]}))
    both = http.post("/hooks/acme-outlook", content=json.dumps({"value": [old, new]}))

    assert both.json()["event_ids"][0] == first.json()["event_id"]
    assert both.json()["event_ids"][1] != first.json()["event_id"]
    assert entry_count(redis_client) == 2


def test_gmail_repeat_written_once(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = gmail_push(message_id="555")

    first = http.post(
        "/hooks/globex-gmail", params={"token": GMAIL_TOKEN}, content=body
    )
    second = http.post(
        "/hooks/globex-gmail", params={"token": GMAIL_TOKEN}, content=body
    )

    assert second.json()["event_id"] == first.json()["event_id"]
    assert entry_count(redis_client) == 1


def test_flushed_scripts_reloaded(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    http.post("/hooks/acme-mail", content=BODY, headers=standard_headers(BODY))
    redis_client.script_flush()

    statuses = []
    for n in range(2):
        headers = standard_headers(BODY, msg_id=f"msg_after_flush_{n}")
        statuses.append(http.post("/hooks/acme-mail", content=BODY, headers=headers))

    assert statuses[0].status_code == 503
    assert statuses[1].status_code == 202
