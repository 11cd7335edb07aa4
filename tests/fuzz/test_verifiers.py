"""Property tests of the four verifiers on unstructured bytes, native against pure.

tests/fastpath/test_agreement.py draws inputs shaped like each scheme, valid or
broken one way at a time. These draw raw bytes for every argument, secrets as a
tuple as providers pass them, and check what those tests do not: both
implementations return a Verdict value, never raise, and agree.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hookgate.fastpath import Verdict, _native, _pure

from .strategies import weighted

VERDICTS = {int(verdict) for verdict in Verdict}

secrets = st.lists(st.binary(max_size=80), max_size=4).map(tuple)
bodies = st.binary(max_size=600)
# Bytes that the parsers treat specially, so that random headers hit their branches.
tokens = st.sampled_from(
    [b"v1,", b"v1=", b"t=", b"sha256=", b",", b" ", b"  ", b"\t", b"=", b"v1a,"]
)
scheme_bytes = st.lists(
    weighted(
        (3, tokens),
        (2, st.binary(max_size=70)),
        (1, st.integers(0, 10**13).map(lambda number: str(number).encode())),
        (1, st.binary(min_size=32, max_size=32).map(lambda raw: raw.hex().encode())),
    ),
    max_size=8,
).map(b"".join)
clocks = st.integers(-(2**70), 2**70) | st.integers(1_600_000_000, 1_800_000_000)
tolerances = st.integers(-(2**70), 2**70) | st.integers(-1, 1000)


def agreed_verdict(name: str, *arguments: Any) -> int:
    """Call ``name`` in both implementations and return the common verdict."""
    native = getattr(_native, name)(*arguments)
    pure = getattr(_pure, name)(*arguments)

    assert type(native) is int, type(native)
    assert native in VERDICTS, native
    assert native == pure, (native, pure)
    return native


class TestArbitraryBytes:
    @settings(max_examples=500, deadline=None)
    @given(
        keys=secrets,
        msg_id=st.binary(max_size=40),
        timestamp=scheme_bytes | st.binary(max_size=16),
        body=bodies,
        signatures=scheme_bytes,
        now=clocks,
        tolerance=tolerances,
    )
    def test_standard_agrees(
        self,
        keys: tuple[bytes, ...],
        msg_id: bytes,
        timestamp: bytes,
        body: bytes,
        signatures: bytes,
        now: int,
        tolerance: int,
    ) -> None:
        verdict = agreed_verdict(
            "verify_standard", keys, msg_id, timestamp, body, signatures, now, tolerance
        )

        assert verdict != Verdict.MALFORMED_SIGNATURE

    @settings(max_examples=500, deadline=None)
    @given(keys=secrets, body=bodies, header=scheme_bytes)
    def test_github_agrees(
        self, keys: tuple[bytes, ...], body: bytes, header: bytes
    ) -> None:
        verdict = agreed_verdict("verify_github", keys, body, header)

        assert verdict not in (Verdict.BAD_TIMESTAMP, Verdict.STALE)

    @settings(max_examples=500, deadline=None)
    @given(
        keys=secrets,
        body=bodies,
        header=scheme_bytes,
        now=clocks,
        tolerance=tolerances,
    )
    def test_stripe_agrees(
        self,
        keys: tuple[bytes, ...],
        body: bytes,
        header: bytes,
        now: int,
        tolerance: int,
    ) -> None:
        agreed_verdict("verify_stripe", keys, body, header, now, tolerance)

    @settings(max_examples=500, deadline=None)
    @given(
        keys=secrets,
        algorithm=st.sampled_from(["sha256", "sha512", "sha1"]),
        chunks=st.lists(bodies, max_size=5).map(tuple),
        signatures=st.lists(scheme_bytes, max_size=4).map(tuple),
        encoding=st.sampled_from(["hex", "base64"]),
    )
    def test_hmac_agrees(
        self,
        keys: tuple[bytes, ...],
        algorithm: str,
        chunks: tuple[bytes, ...],
        signatures: tuple[bytes, ...],
        encoding: str,
    ) -> None:
        verdict = agreed_verdict(
            "verify_hmac", keys, algorithm, chunks, signatures, encoding
        )

        assert verdict not in (Verdict.BAD_TIMESTAMP, Verdict.STALE)
