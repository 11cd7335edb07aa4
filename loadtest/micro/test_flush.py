"""Building one flush: 64 entries packed with ``pack_entry``, then one script call.

The gateway packs each entry when its request is accepted and builds one
``EVALSHA`` per tenant when it flushes, so the sum is the CPU cost of a 64-entry
flush before any I/O. Divide the time by ``extra_info["entries"]`` for the cost per
entry. The baseline builds the call from 64 entries packed beforehand, which is the
flush's share alone.
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

WRITER = entry.IngestWriter(
    TENANT, keys.ingest_stream(TENANT).encode(), DEDUP_WINDOW_S, MAX_STREAM_LENGTH
)
SOURCE_AND_PROVIDER = entry.bulk(SOURCE.encode()) + entry.bulk(b"standard-webhooks")
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
SEEN_PREFIX = keys.seen_prefix(TENANT, SOURCE).encode()

pytestmark = pytest.mark.benchmark(group=f"flush of {ENTRIES} entries")


def _pack(index: int) -> tuple[bytes, bytes]:
    # The same steps as the gateway's, from the same kinds of values.
    provider_event_id = PROVIDER_EVENT_IDS[index].encode()
    return entry.bulk(SEEN_PREFIX + provider_event_id), entry.pack_entry(
        event_id=EVENT_IDS[index].encode(),
        type=entry.STANDARD_WEBHOOK.encode(),
        source_and_provider=SOURCE_AND_PROVIDER,
        received_at=b"1764871200123",
        provider_event_id=provider_event_id,
        headers=HEADERS,
        body=BODY,
    )


def _script_call(packed: list[tuple[bytes, bytes]]) -> bytes:
    return WRITER.pack(
        [key for key, _ in packed], [values for _, values in packed], ENTRIES
    )


def _build_flush() -> bytes:
    return _script_call([_pack(index) for index in range(ENTRIES)])


def _check_flush(payload: bytes) -> None:
    # Parse the payload back as RESP: one EVALSHA with the stream and 64 seen keys,
    # then the shared values and eight values per entry.
    reader = hiredis.Reader()
    reader.feed(payload)
    command = reader.gets()
    assert reader.gets() is False
    assert command[0] == b"EVALSHA"
    assert int(command[2]) == ENTRIES + 1
    values = command[3 + ENTRIES + 1 + 3 :]
    assert len(values) == entry.ENTRY_ARGS * ENTRIES
    for index in range(ENTRIES):
        assert values[entry.ENTRY_ARGS * index] == EVENT_IDS[index].encode()
        assert values[entry.ENTRY_ARGS * index + 7] == BODY


def test_pack_and_join(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["entries"] = ENTRIES
    payload = benchmark(_build_flush)
    _check_flush(payload)


def test_join_only(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["entries"] = ENTRIES
    packed = [_pack(index) for index in range(ENTRIES)]
    payload = benchmark(_script_call, packed)
    _check_flush(payload)
