"""Property tests: the two verifiers agree, and correct signatures always verify."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from .signing import OK, raw_signature, reference_signature

TOLERANCE = 300
# A recent Unix time in seconds, so that drawn timestamps have the usual 10 digits.
CLOCK = 1_700_000_000

keys = st.binary(max_size=80)
msg_ids = st.binary(max_size=40)
bodies = st.binary(max_size=2048)


@dataclass
class Case:
    secrets: list[bytes]
    msg_id: bytes
    timestamp: bytes
    body: bytes
    signatures: bytes
    now: int
    tolerance: int

    def arguments(self) -> tuple[object, ...]:
        return (
            self.secrets,
            self.msg_id,
            self.timestamp,
            self.body,
            self.signatures,
            self.now,
            self.tolerance,
        )


@st.composite
def timestamps(draw: st.DrawFn, now: int) -> bytes:
    """Draw webhook-timestamp values, half of them near ``now`` and well-formed."""
    # Reaches one second past the tolerance both ways, to cover the boundary.
    fresh = str(draw(st.integers(now - TOLERANCE - 1, now + TOLERANCE + 1))).encode()
    kind = draw(
        st.sampled_from(["fresh"] * 5 + ["prefixed", "digits", "unicode", "binary"])
    )
    if kind == "fresh":
        return fresh
    if kind == "prefixed":
        return draw(st.sampled_from([b"0", b"00", b"+", b"-", b" "])) + fresh
    if kind == "digits":
        return str(draw(st.integers(0, 10**14))).encode()
    if kind == "unicode":
        return draw(st.text(st.characters(categories=["Nd"]), max_size=14)).encode()
    return draw(st.binary(max_size=16))


@st.composite
def tokens(
    draw: st.DrawFn, signers: list[bytes], msg_id: bytes, timestamp: bytes, body: bytes
) -> bytes:
    """Draw one signature-header entry, valid or broken in one of many ways."""
    key = draw(st.sampled_from(signers))
    valid = raw_signature(key, msg_id, timestamp, body)

    kind = draw(
        st.sampled_from(
            [
                *["valid"] * 3,
                "flipped",
                "truncated",
                "unpadded",
                "other-version",
                "random-v1",
                "bare-prefix",
                "junk",
                "empty",
            ]
        )
    )
    if kind == "valid":
        return valid
    if kind == "flipped":
        index = draw(st.integers(3, len(valid) - 1))
        return valid[:index] + bytes([valid[index] ^ 1]) + valid[index + 1 :]
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "unpadded":
        return valid.rstrip(b"=")
    if kind == "other-version":
        version = draw(st.sampled_from([b"v1a,", b"v2,", b"V1,", b"v1", b"xv1,"]))
        return version + valid[3:]
    if kind == "random-v1":
        raw = draw(st.binary(min_size=30, max_size=34))
        return b"v1," + base64.b64encode(raw)
    if kind == "bare-prefix":
        return b"v1,"
    if kind == "junk":
        return draw(st.binary(max_size=60))
    return b""


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Draw arbitrary inputs whose header mixes valid and invalid entries."""
    clock = draw(st.sampled_from(["near"] * 4 + ["wide", "huge"]))
    if clock == "near":
        now = draw(st.integers(CLOCK - 10, CLOCK + 10))
    elif clock == "wide":
        now = draw(st.integers(0, 10**13))
    else:
        now = draw(st.integers(-(2**80), 2**80))
    tolerance = draw(st.sampled_from([TOLERANCE] * 4 + [0, -1, 2**70]))

    secrets = draw(st.lists(keys, max_size=4))
    msg_id = draw(msg_ids)
    timestamp = draw(timestamps(now if abs(now) < 10**12 else CLOCK))
    body = draw(bodies)

    # One signer outside the secrets, so that some valid entries must not match.
    signers = [*secrets, draw(keys)]
    entries = draw(st.lists(tokens(signers, msg_id, timestamp, body), max_size=6))
    separators = draw(
        st.lists(
            st.sampled_from([b" ", b"  ", b"\t", b","]),
            min_size=len(entries),
            max_size=len(entries),
        )
    )
    signatures = b"".join(
        entry + separator for entry, separator in zip(entries, separators, strict=True)
    )
    if draw(st.booleans()):
        signatures = signatures.rstrip()
    return Case(secrets, msg_id, timestamp, body, signatures, now, tolerance)


@st.composite
def signed_cases(draw: st.DrawFn) -> Case:
    """Draw a correctly signed input, hidden among other entries and secrets."""
    now = draw(st.integers(CLOCK - 10**6, CLOCK + 10**6))
    tolerance = draw(st.integers(0, 10**4))
    sent_at = now + draw(st.integers(-tolerance, tolerance))
    zeros = draw(st.integers(0, 12 - len(str(sent_at))))
    timestamp = b"0" * zeros + str(sent_at).encode()

    key = draw(keys)
    secrets = draw(st.lists(keys, max_size=3))
    secrets.insert(draw(st.integers(0, len(secrets))), key)
    msg_id = draw(msg_ids)
    body = draw(bodies)

    others = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=60).filter(lambda token: b" " not in token),
                st.binary(min_size=32, max_size=32).map(
                    lambda raw: b"v1," + base64.b64encode(raw)
                ),
            ),
            max_size=4,
        )
    )
    entries = [*others]
    entries.insert(
        draw(st.integers(0, len(entries))),
        raw_signature(key, msg_id, timestamp, body),
    )
    spaces = draw(st.integers(1, 3))
    signatures = (b" " * spaces).join(entries)
    return Case(secrets, msg_id, timestamp, body, signatures, now, tolerance)


class TestAgreement:
    @settings(max_examples=1000, deadline=None)
    @given(case=cases())
    def test_implementations_agree(
        self, native: ModuleType, pure: ModuleType, case: Case
    ) -> None:
        assert native.verify_standard(*case.arguments()) == pure.verify_standard(
            *case.arguments()
        )

    @settings(max_examples=300, deadline=None)
    @given(case=signed_cases())
    def test_native_verifies_signed_input(self, native: ModuleType, case: Case) -> None:
        assert native.verify_standard(*case.arguments()) == OK

    @settings(max_examples=300, deadline=None)
    @given(case=signed_cases())
    def test_pure_verifies_signed_input(self, pure: ModuleType, case: Case) -> None:
        assert pure.verify_standard(*case.arguments()) == OK

    @settings(max_examples=200, deadline=None)
    @given(
        key=keys.filter(bool),
        msg_id=st.text(max_size=40),
        body=bodies,
        offset=st.integers(-TOLERANCE, TOLERANCE),
    )
    def test_reference_signatures_verify(
        self,
        native: ModuleType,
        pure: ModuleType,
        key: bytes,
        msg_id: str,
        body: bytes,
        offset: int,
    ) -> None:
        sent_at = CLOCK + offset
        signature = reference_signature(key, msg_id.encode(), sent_at, body)
        arguments = (
            [key],
            msg_id.encode(),
            str(sent_at).encode(),
            body,
            signature,
            CLOCK,
            TOLERANCE,
        )

        assert native.verify_standard(*arguments) == OK
        assert pure.verify_standard(*arguments) == OK
