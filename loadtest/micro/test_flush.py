"""Building one flush: 64 ingest commands packed with ``pack_ingest``, then joined.

The gateway packs each entry when its request is accepted and joins a batch's
commands when it flushes, so the sum is the CPU cost of a 64-entry flush before
any I/O. Divide the time by ``extra_info["entries"]`` for the cost per entry. The
baseline joins 64 commands packed beforehand, which is the join alone.
"""

from __future__ import annotations

import hiredis
import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hookgate import entry, keys
from hookgate.loadtest.micro._payloads import MSG_ID, standard_event

ENTRIES = 64
TENANT = "acme"
SOURCE = "acme-mail"
DEDUP_WINDOW_S = 86_400
MAX_STREAM_LENGTH = 1_000_000

STREAM = keys.ingest_stream(TENANT).encode()
BODY = standard_event(1024)
# The header values of a Standard Webhooks delivery, as the entry keeps them.
HEADERS = msgspec.json.encode(
    {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1764871200",
        "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    }
)
# Distinct ids per entry, made up front so the benchmark times packing only.
EVENT_IDS = [f"evt_019aea1b2c3d5f2a9c4e{index:012x}" for index in range(ENTRIES)]
PROVIDER_EVENT_IDS = [f"{MSG_ID}_{index}" for index in range(ENTRIES)]
SEEN_KEYS = [
    keys.seen_key(TENANT, SOURCE, event_id).encode() for event_id in PROVIDER_EVENT_IDS
]

pytestmark = pytest.mark.benchmark(group=f"flush of {ENTRIES} entries")


def _pack(index: int) -> bytes:
    return entry.pack_ingest(
        STREAM,
        SEEN_KEYS[index],
        DEDUP_WINDOW_S,
        max_length=MAX_STREAM_LENGTH,
        event_id=EVENT_IDS[index],
        type=entry.STANDARD_WEBHOOK,
        tenant=TENANT,
        source=SOURCE,
        provider="standard-webhooks",
        received_at="1764871200123",
        provider_event_id=PROVIDER_EVENT_IDS[index],
        headers=HEADERS,
        body=BODY,
    )


def _build_flush() -> bytes:
    commands = [_pack(index) for index in range(ENTRIES)]
    return b"".join(commands)


def _check_flush(payload: bytes) -> None:
    # Parse the payload back as RESP: one array per entry, with its own event id and
    # the body as its last element.
    reader = hiredis.Reader()
    reader.feed(payload)
    commands = []
    while (command := reader.gets()) is not False:
        commands.append(command)
    assert len(commands) == ENTRIES
    for index, command in enumerate(commands):
        assert command[0] == b"EVALSHA"
        assert command[6] == EVENT_IDS[index].encode()
        assert command[-1] == BODY


def test_pack_and_join(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["entries"] = ENTRIES
    payload = benchmark(_build_flush)
    _check_flush(payload)


def test_join_only(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["entries"] = ENTRIES
    commands = [_pack(index) for index in range(ENTRIES)]
    payload = benchmark(b"".join, commands)
    _check_flush(payload)
