"""Standard Webhooks verification on 1 KB and 64 KB bodies, by implementation.

Baselines in each group: the pure twin, the reference ``standardwebhooks`` package,
and one SHA-256 pass over the body, which any HMAC-SHA256 of the body includes.
The reference ``Webhook.verify`` also parses the body with ``json.loads``, so the
group also times the native verifier followed by msgspec decoding the same body,
once into the gateway's struct and once into plain dicts and lists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from standardwebhooks.webhooks import Webhook

from hookgate.fastpath import Verdict
from hookgate.gateway.providers.standard import Payload
from hookgate.loadtest.micro._payloads import MSG_ID, SECRET, standard_event

TOLERANCE_S = 300

SIZES = [
    pytest.param(1024, id="1KB", marks=pytest.mark.benchmark(group="verify 1 KB")),
    pytest.param(
        64 * 1024, id="64KB", marks=pytest.mark.benchmark(group="verify 64 KB")
    ),
]

_decode_payload = msgspec.json.Decoder(Payload).decode
_decode_any = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Signed:
    """One signed delivery, as the verifiers take it."""

    secrets: tuple[bytes, ...]
    msg_id: bytes
    timestamp: bytes
    body: bytes
    signature: bytes
    now: int

    def arguments(self) -> tuple[Any, ...]:
        return (
            self.secrets,
            self.msg_id,
            self.timestamp,
            self.body,
            self.signature,
            self.now,
            TOLERANCE_S,
        )

    def headers(self) -> dict[str, str]:
        return {
            "webhook-id": self.msg_id.decode(),
            "webhook-timestamp": self.timestamp.decode(),
            "webhook-signature": self.signature.decode(),
        }


@pytest.fixture
def signed(size: int) -> Signed:
    """A delivery signed now, because ``Webhook.verify`` checks the real clock.

    Function scope keeps each benchmark's timestamp fresh: standardwebhooks 1.3.0
    allows 5 minutes either way, and a full run may take longer.
    """
    now = int(time.time())
    timestamp = str(now).encode()
    body = standard_event(size)
    content = MSG_ID.encode() + b"." + timestamp + b"." + body
    digest = hmac.new(SECRET, content, hashlib.sha256).digest()
    return Signed(
        secrets=(SECRET,),
        msg_id=MSG_ID.encode(),
        timestamp=timestamp,
        body=body,
        signature=b"v1," + base64.b64encode(digest),
        now=now,
    )


@pytest.mark.parametrize("size", SIZES)
def test_native(
    benchmark: BenchmarkFixture, native: ModuleType, signed: Signed
) -> None:
    verdict = benchmark(native.verify_standard, *signed.arguments())
    assert verdict == Verdict.OK


@pytest.mark.parametrize("size", SIZES)
def test_pure(benchmark: BenchmarkFixture, pure: ModuleType, signed: Signed) -> None:
    verdict = benchmark(pure.verify_standard, *signed.arguments())
    assert verdict == Verdict.OK


@pytest.mark.parametrize("size", SIZES)
def test_standardwebhooks(benchmark: BenchmarkFixture, signed: Signed) -> None:
    webhook = Webhook(SECRET)
    parsed = benchmark(webhook.verify, signed.body, signed.headers())
    assert parsed == json.loads(signed.body)


@pytest.mark.parametrize("size", SIZES)
def test_native_msgspec_struct(
    benchmark: BenchmarkFixture, native: ModuleType, signed: Signed
) -> None:
    """Native verify, then the gateway's decode into the ``type``-only Payload."""
    arguments = signed.arguments()

    def verify_and_decode() -> tuple[int, Payload]:
        return native.verify_standard(*arguments), _decode_payload(signed.body)

    verdict, payload = benchmark(verify_and_decode)
    assert verdict == Verdict.OK
    assert payload.type == "invoice.paid"


@pytest.mark.parametrize("size", SIZES)
def test_native_msgspec_dict(
    benchmark: BenchmarkFixture, native: ModuleType, signed: Signed
) -> None:
    """Native verify, then a full untyped decode: the reference's output."""
    arguments = signed.arguments()

    def verify_and_decode() -> tuple[int, Any]:
        return native.verify_standard(*arguments), _decode_any(signed.body)

    verdict, parsed = benchmark(verify_and_decode)
    assert verdict == Verdict.OK
    assert parsed == json.loads(signed.body)


@pytest.mark.parametrize("size", SIZES)
def test_sha256_floor(benchmark: BenchmarkFixture, signed: Signed) -> None:
    def digest() -> bytes:
        return hashlib.sha256(signed.body).digest()

    result = benchmark(digest)
    assert result == hashlib.new("sha256", signed.body).digest()
