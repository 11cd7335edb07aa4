"""JSON decoding of provider bodies: msgspec into the gateway's structs, beside
msgspec without a type and the standard library's ``json.loads``.

The typed decode does what the gateway does with each body. For a Graph collection
that is the collection with its items kept as raw bytes, then each item on its own.
For a Pub/Sub push it is the envelope only, because ``message.data`` stays a base64
string in every decoder here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hookgate.gateway.providers.gmail import PushEnvelope
from hookgate.gateway.providers.graph import Collection, Notification
from hookgate.gateway.providers.standard import Payload
from hookgate.loadtest.micro._payloads import (
    CLIENT_STATE,
    graph_collection,
    pubsub_push,
    standard_event,
)

GRAPH_ITEMS = 10

_decode_collection = msgspec.json.Decoder(Collection).decode
_decode_notification = msgspec.json.Decoder(Notification).decode
_decode_envelope = msgspec.json.Decoder(PushEnvelope).decode
_decode_payload = msgspec.json.Decoder(Payload).decode
_decode_any = msgspec.json.Decoder().decode


def _decode_graph(body: bytes) -> list[Notification]:
    collection = _decode_collection(body)
    return [_decode_notification(item) for item in collection.value]


def _check_graph(items: Any) -> None:
    assert len(items) == GRAPH_ITEMS
    assert all(item.change_type == "created" for item in items)
    assert all(item.client_state == CLIENT_STATE for item in items)


def _check_pubsub(envelope: Any) -> None:
    assert envelope.message.message_id == "2070443601311540"
    assert envelope.subscription.endswith("/gmail-push")


def _check_standard(payload: Any) -> None:
    assert payload.type == "invoice.paid"


@dataclass(frozen=True)
class Body:
    """A provider body with the gateway's typed decode and a check of its result."""

    content: bytes
    decode: Callable[[bytes], Any]
    check: Callable[[Any], None]


BODIES = {
    "graph": Body(graph_collection(GRAPH_ITEMS), _decode_graph, _check_graph),
    "pubsub": Body(pubsub_push(), _decode_envelope, _check_pubsub),
    "standard": Body(standard_event(1024), _decode_payload, _check_standard),
}

KINDS = [
    pytest.param(
        "graph",
        id="graph",
        marks=pytest.mark.benchmark(
            group=f"decode Graph collection, {GRAPH_ITEMS} items"
        ),
    ),
    pytest.param(
        "pubsub",
        id="pubsub",
        marks=pytest.mark.benchmark(group="decode Pub/Sub push envelope"),
    ),
    pytest.param(
        "standard",
        id="standard",
        marks=pytest.mark.benchmark(group="decode Standard Webhooks event, 1 KB"),
    ),
]


@pytest.mark.parametrize("kind", KINDS)
def test_msgspec_struct(benchmark: BenchmarkFixture, kind: str) -> None:
    body = BODIES[kind]
    result = benchmark(body.decode, body.content)
    body.check(result)


@pytest.mark.parametrize("kind", KINDS)
def test_msgspec_untyped(benchmark: BenchmarkFixture, kind: str) -> None:
    body = BODIES[kind]
    result = benchmark(_decode_any, body.content)
    assert result == json.loads(body.content)


@pytest.mark.parametrize("kind", KINDS)
def test_json_loads(benchmark: BenchmarkFixture, kind: str) -> None:
    body = BODIES[kind]
    result = benchmark(json.loads, body.content)
    assert isinstance(result, dict)
    assert result == msgspec.json.decode(body.content)
