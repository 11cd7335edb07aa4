"""Property tests: the two verifiers agree, and correct signatures always verify.

Each scheme has its own strategies and test class: Standard Webhooks first, then
GitHub, Stripe and the generic HMAC.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from .signing import (
    OK,
    github_signature,
    hmac_signature,
    raw_signature,
    reference_signature,
    stripe_signature,
)

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
def clocks(draw: st.DrawFn) -> tuple[int, int]:
    """Draw ``now`` and ``tolerance``, mostly near CLOCK, sometimes extreme."""
    clock = draw(st.sampled_from(["near"] * 4 + ["wide", "huge"]))
    if clock == "near":
        now = draw(st.integers(CLOCK - 10, CLOCK + 10))
    elif clock == "wide":
        now = draw(st.integers(0, 10**13))
    else:
        now = draw(st.integers(-(2**80), 2**80))
    tolerance = draw(st.sampled_from([TOLERANCE] * 4 + [0, -1, 2**70]))
    return now, tolerance


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
    now, tolerance = draw(clocks())

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


def recase(draw: st.DrawFn, text: bytes) -> bytes:
    """Upper-case a drawn subset of the letters in ``text``."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return b"".join(
        text[index : index + 1].upper() if flip else text[index : index + 1]
        for index, flip in enumerate(flips)
    )


def flip_bit(draw: st.DrawFn, text: bytes, start: int) -> bytes:
    """Flip the lowest bit of one byte of ``text`` at or after ``start``."""
    index = draw(st.integers(start, len(text) - 1))
    return text[:index] + bytes([text[index] ^ 1]) + text[index + 1 :]


@dataclass
class GithubCase:
    secrets: list[bytes]
    body: bytes
    header: bytes

    def arguments(self) -> tuple[object, ...]:
        return (self.secrets, self.body, self.header)


@st.composite
def github_headers(draw: st.DrawFn, signers: list[bytes], body: bytes) -> bytes:
    """Draw one X-Hub-Signature-256 value, valid or broken in one of many ways."""
    valid = github_signature(draw(st.sampled_from(signers)), body)
    digest = valid[len(b"sha256=") :]

    kind = draw(
        st.sampled_from(
            [
                *["valid"] * 3,
                "recased",
                "flipped",
                "truncated",
                "extended",
                "prefix",
                "spaced",
                "random-hex",
                "junk",
                "empty",
            ]
        )
    )
    if kind == "valid":
        return valid
    if kind == "recased":
        return b"sha256=" + recase(draw, digest)
    if kind == "flipped":
        return flip_bit(draw, valid, 0)
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "extended":
        return valid + draw(st.binary(min_size=1, max_size=3))
    if kind == "prefix":
        prefixes = [b"", b"sha1=", b"SHA256=", b"sha256:", b"sha256= ", b" sha256="]
        return draw(st.sampled_from(prefixes)) + digest
    if kind == "spaced":
        index = draw(st.integers(0, len(valid)))
        return valid[:index] + b" " + valid[index:]
    if kind == "random-hex":
        size = draw(st.sampled_from([62, 63, 64, 64, 64, 65, 66]))
        raw = draw(st.binary(min_size=(size + 1) // 2, max_size=(size + 1) // 2))
        return b"sha256=" + recase(draw, raw.hex().encode()[:size])
    if kind == "junk":
        return draw(st.binary(max_size=80))
    return b""


@st.composite
def github_cases(draw: st.DrawFn) -> GithubCase:
    """Draw arbitrary GitHub inputs, some with a header valid for one secret."""
    secrets = draw(st.lists(keys, max_size=4))
    body = draw(bodies)
    # One signer outside the secrets, so that some valid headers must not match.
    signers = [*secrets, draw(keys)]
    header = draw(github_headers(signers, body))
    return GithubCase(secrets, body, header)


@st.composite
def signed_github_cases(draw: st.DrawFn) -> GithubCase:
    """Draw a correctly signed GitHub input, its key among other secrets."""
    key = draw(keys)
    secrets = draw(st.lists(keys, max_size=3))
    secrets.insert(draw(st.integers(0, len(secrets))), key)
    body = draw(bodies)
    digest = github_signature(key, body)[len(b"sha256=") :]
    return GithubCase(secrets, body, b"sha256=" + recase(draw, digest))


@dataclass
class StripeCase:
    secrets: list[bytes]
    body: bytes
    header: bytes
    now: int
    tolerance: int

    def arguments(self) -> tuple[object, ...]:
        return (self.secrets, self.body, self.header, self.now, self.tolerance)


@st.composite
def stripe_fields(
    draw: st.DrawFn, signers: list[bytes], timestamp: bytes, body: bytes
) -> bytes:
    """Draw one Stripe-Signature field, valid or broken in one of many ways."""
    valid = stripe_signature(draw(st.sampled_from(signers)), timestamp, body)

    kind = draw(
        st.sampled_from(
            [
                "repeated-t",
                *["v1"] * 6,
                *["v1-recased"] * 2,
                "v1-flipped",
                "v1-truncated",
                "v1-random",
                "v1-junk",
                "other-scheme",
                "near-key",
                "junk",
                "empty",
            ]
        )
    )
    if kind == "repeated-t":
        return b"t=" + draw(st.sampled_from([timestamp, b"", b"1", timestamp + b"0"]))
    if kind == "v1":
        return b"v1=" + valid
    if kind == "v1-recased":
        return b"v1=" + recase(draw, valid)
    if kind == "v1-flipped":
        return b"v1=" + flip_bit(draw, valid, 0)
    if kind == "v1-truncated":
        return b"v1=" + valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "v1-random":
        return b"v1=" + draw(st.binary(min_size=32, max_size=32)).hex().encode()
    if kind == "v1-junk":
        return b"v1=" + draw(st.binary(max_size=70))
    if kind == "other-scheme":
        return draw(st.sampled_from([b"v0=", b"v1a=", b"v2=", b"V1="])) + valid
    if kind == "near-key":
        keys = [b"t", b"v1", b"v1 =", b" v1=", b"T=", b" t=", b"t ="]
        return draw(st.sampled_from(keys)) + draw(st.sampled_from([b"", valid]))
    if kind == "junk":
        return draw(st.binary(max_size=20))
    return b""


@st.composite
def stripe_cases(draw: st.DrawFn) -> StripeCase:
    """Draw arbitrary Stripe inputs: fields in any order, separators varied."""
    now, tolerance = draw(clocks())
    # A quarter of the timestamps come from the broad strategy above and the rest
    # are fresh, because a bad t hides every later check.
    near = now if abs(now) < 10**12 else CLOCK
    if draw(st.integers(0, 3)) == 0:
        timestamp = draw(timestamps(near))
    else:
        timestamp = str(draw(st.integers(near - TOLERANCE, near + TOLERANCE))).encode()
    secrets = draw(st.lists(keys, max_size=4))
    body = draw(bodies)

    signers = [*secrets, draw(keys)]
    fields = draw(st.lists(stripe_fields(signers, timestamp, body), max_size=6))
    # Most headers get one t field, so that the later checks are reached.
    if draw(st.integers(0, 9)) < 9:
        fields.insert(draw(st.integers(0, len(fields))), b"t=" + timestamp)
    separators = draw(
        st.lists(
            st.sampled_from([b","] * 12 + [b", ", b" ", b",,", b";"]),
            min_size=len(fields),
            max_size=len(fields),
        )
    )
    header = b"".join(
        field + separator for field, separator in zip(fields, separators, strict=True)
    )
    if draw(st.booleans()):
        header = header.rstrip(b",")
    return StripeCase(secrets, body, header, now, tolerance)


def is_inert_stripe_field(field: bytes) -> bool:
    """Check that a field is neither a separator nor a t field."""
    return b"," not in field and field.partition(b"=")[0] != b"t"


@st.composite
def signed_stripe_cases(draw: st.DrawFn) -> StripeCase:
    """Draw a correctly signed Stripe input, hidden among other fields and secrets."""
    now = draw(st.integers(CLOCK - 10**6, CLOCK + 10**6))
    tolerance = draw(st.integers(0, 10**4))
    sent_at = now + draw(st.integers(-tolerance, tolerance))
    zeros = draw(st.integers(0, 12 - len(str(sent_at))))
    timestamp = b"0" * zeros + str(sent_at).encode()

    key = draw(keys)
    secrets = draw(st.lists(keys, max_size=3))
    secrets.insert(draw(st.integers(0, len(secrets))), key)
    body = draw(bodies)

    others = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=40).filter(is_inert_stripe_field),
                st.binary(min_size=32, max_size=32).map(
                    lambda raw: b"v1=" + raw.hex().encode()
                ),
            ),
            max_size=4,
        )
    )
    fields = [*others]
    signature = recase(draw, stripe_signature(key, timestamp, body))
    fields.insert(draw(st.integers(0, len(fields))), b"v1=" + signature)
    fields.insert(draw(st.integers(0, len(fields))), b"t=" + timestamp)
    return StripeCase(secrets, body, b",".join(fields), now, tolerance)


@dataclass
class HmacCase:
    secrets: list[bytes]
    algorithm: str
    chunks: list[bytes]
    signatures: list[bytes]
    encoding: str

    def arguments(self) -> tuple[object, ...]:
        return (
            self.secrets,
            self.algorithm,
            self.chunks,
            self.signatures,
            self.encoding,
        )


algorithms = st.sampled_from(["sha256", "sha512", "sha1"])
encodings = st.sampled_from(["hex", "base64"])
chunk_lists = st.lists(st.binary(max_size=512), max_size=6)


@st.composite
def hmac_candidates(
    draw: st.DrawFn,
    signers: list[bytes],
    algorithm: str,
    chunks: list[bytes],
    encoding: str,
) -> bytes:
    """Draw one candidate signature, valid or broken in one of many ways."""
    key = draw(st.sampled_from(signers))
    valid = hmac_signature(key, algorithm, chunks, encoding)

    kind = draw(
        st.sampled_from(
            [
                *["valid"] * 3,
                "recased",
                "flipped",
                "truncated",
                "extended",
                "unpadded",
                "other-algorithm",
                "other-encoding",
                "random",
                "junk",
                "empty",
            ]
        )
    )
    if kind == "valid":
        return valid
    if kind == "recased":
        return recase(draw, valid)
    if kind == "flipped":
        return flip_bit(draw, valid, 0)
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "extended":
        return valid + draw(st.sampled_from([b"=", b"0", b"A", b" ", b"\n"]))
    if kind == "unpadded":
        return valid.rstrip(b"=")
    if kind == "other-algorithm":
        return hmac_signature(key, draw(algorithms), chunks, encoding)
    if kind == "other-encoding":
        return hmac_signature(key, algorithm, chunks, draw(encodings))
    if kind == "random":
        raw = draw(st.binary(min_size=20, max_size=64))
        return raw.hex().encode() if encoding == "hex" else base64.b64encode(raw)
    if kind == "junk":
        return draw(st.binary(max_size=100))
    return b""


@st.composite
def hmac_cases(draw: st.DrawFn) -> HmacCase:
    """Draw arbitrary generic-HMAC inputs with mixed candidate signatures."""
    algorithm = draw(algorithms)
    encoding = draw(encodings)
    secrets = draw(st.lists(keys, max_size=4))
    chunks = draw(chunk_lists)

    signers = [*secrets, draw(keys)]
    candidates = hmac_candidates(signers, algorithm, chunks, encoding)
    signatures = draw(st.lists(candidates, max_size=5))
    return HmacCase(secrets, algorithm, chunks, signatures, encoding)


@st.composite
def signed_hmac_cases(draw: st.DrawFn) -> HmacCase:
    """Draw a correctly signed generic-HMAC input among other candidates."""
    algorithm = draw(algorithms)
    encoding = draw(encodings)
    key = draw(keys)
    secrets = draw(st.lists(keys, max_size=3))
    secrets.insert(draw(st.integers(0, len(secrets))), key)
    chunks = draw(chunk_lists)

    signature = hmac_signature(key, algorithm, chunks, encoding)
    if encoding == "hex":
        signature = recase(draw, signature)
    signatures = draw(st.lists(st.binary(max_size=100), max_size=4))
    signatures.insert(draw(st.integers(0, len(signatures))), signature)
    return HmacCase(secrets, algorithm, chunks, signatures, encoding)


class TestGithubAgreement:
    @settings(max_examples=1000, deadline=None)
    @given(case=github_cases())
    def test_implementations_agree(
        self, native: ModuleType, pure: ModuleType, case: GithubCase
    ) -> None:
        assert native.verify_github(*case.arguments()) == pure.verify_github(
            *case.arguments()
        )

    @settings(max_examples=300, deadline=None)
    @given(case=signed_github_cases())
    def test_native_verifies_signed_input(
        self, native: ModuleType, case: GithubCase
    ) -> None:
        assert native.verify_github(*case.arguments()) == OK

    @settings(max_examples=300, deadline=None)
    @given(case=signed_github_cases())
    def test_pure_verifies_signed_input(
        self, pure: ModuleType, case: GithubCase
    ) -> None:
        assert pure.verify_github(*case.arguments()) == OK


class TestStripeAgreement:
    @settings(max_examples=1000, deadline=None)
    @given(case=stripe_cases())
    def test_implementations_agree(
        self, native: ModuleType, pure: ModuleType, case: StripeCase
    ) -> None:
        assert native.verify_stripe(*case.arguments()) == pure.verify_stripe(
            *case.arguments()
        )

    @settings(max_examples=300, deadline=None)
    @given(case=signed_stripe_cases())
    def test_native_verifies_signed_input(
        self, native: ModuleType, case: StripeCase
    ) -> None:
        assert native.verify_stripe(*case.arguments()) == OK

    @settings(max_examples=300, deadline=None)
    @given(case=signed_stripe_cases())
    def test_pure_verifies_signed_input(
        self, pure: ModuleType, case: StripeCase
    ) -> None:
        assert pure.verify_stripe(*case.arguments()) == OK


class TestHmacAgreement:
    @settings(max_examples=1000, deadline=None)
    @given(case=hmac_cases())
    def test_implementations_agree(
        self, native: ModuleType, pure: ModuleType, case: HmacCase
    ) -> None:
        assert native.verify_hmac(*case.arguments()) == pure.verify_hmac(
            *case.arguments()
        )

    @settings(max_examples=300, deadline=None)
    @given(case=signed_hmac_cases())
    def test_native_verifies_signed_input(
        self, native: ModuleType, case: HmacCase
    ) -> None:
        assert native.verify_hmac(*case.arguments()) == OK

    @settings(max_examples=300, deadline=None)
    @given(case=signed_hmac_cases())
    def test_pure_verifies_signed_input(self, pure: ModuleType, case: HmacCase) -> None:
        assert pure.verify_hmac(*case.arguments()) == OK
