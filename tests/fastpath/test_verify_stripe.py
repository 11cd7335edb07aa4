"""``Stripe-Signature`` verification, run once on each implementation.

Stripe publishes no fixed test vector: its libraries sign with the current time. The
header layout and signed content follow ``WebhookSignature`` in stripe-python 16.1.0
(``stripe/_webhook.py``): fields split at commas and then at ``=``, only ``t`` and
``v1`` count, and the HMAC-SHA256 key is the whole ``whsec_...`` secret.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from .conftest import Verify
from .gil import run_with_ticker
from .signing import (
    BAD_TIMESTAMP,
    BODY,
    MALFORMED_SIGNATURE,
    MISMATCH,
    NO_SIGNATURE,
    NOW,
    OK,
    OTHER_SECRET,
    SECRET,
    STALE,
    TOLERANCE,
    stripe_header,
    stripe_signature,
)

TIMESTAMP = str(NOW).encode()
SIGNATURE = stripe_signature(SECRET, TIMESTAMP, BODY)
OTHER_SIGNATURE = stripe_signature(OTHER_SECRET, TIMESTAMP, BODY)
HEADER = stripe_header(SECRET, TIMESTAMP, BODY)


def verify_signed(
    verify: Verify,
    header: object,
    *,
    secrets: object = (SECRET,),
    body: object = BODY,
    now: object = NOW,
    tolerance: object = TOLERANCE,
) -> int:
    return verify(secrets, body, header, now, tolerance)


def fields(*parts: bytes) -> bytes:
    return b",".join(parts)


class TestValidSignatures:
    def test_signature_verifies(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, HEADER) == OK

    def test_whsec_secret_verifies(self, verify_stripe: Verify) -> None:
        # Stripe's libraries key the HMAC with the secret's text, prefix included.
        secret = b"whsec_test_secret"
        header = stripe_header(secret, TIMESTAMP, BODY)

        assert verify_signed(verify_stripe, header, secrets=[secret]) == OK

    def test_uppercase_digest_verifies(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=" + SIGNATURE.upper())

        assert verify_signed(verify_stripe, header) == OK

    def test_signature_before_timestamp_verifies(self, verify_stripe: Verify) -> None:
        header = fields(b"v1=" + SIGNATURE, b"t=" + TIMESTAMP)

        assert verify_signed(verify_stripe, header) == OK

    def test_second_secret_matches(self, verify_stripe: Verify) -> None:
        secrets = [OTHER_SECRET, SECRET]

        assert verify_signed(verify_stripe, HEADER, secrets=secrets) == OK

    def test_second_signature_matches(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=" + OTHER_SIGNATURE, b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == OK

    def test_rotation_matches_second_of_each(self, verify_stripe: Verify) -> None:
        third_secret = b"a third key that signed nothing here"
        stranger = stripe_signature(b"a key hookgate does not hold", TIMESTAMP, BODY)
        header = fields(
            b"t=" + TIMESTAMP,
            b"v1=" + stranger,
            b"v1=" + SIGNATURE,
            b"v1=" + stranger,
        )
        secrets = [OTHER_SECRET, SECRET, third_secret]

        assert verify_signed(verify_stripe, header, secrets=secrets) == OK

    def test_secret_iterator_accepted(self, verify_stripe: Verify) -> None:
        secrets = iter([OTHER_SECRET, SECRET])

        assert verify_signed(verify_stripe, HEADER, secrets=secrets) == OK

    def test_other_schemes_ignored(self, verify_stripe: Verify) -> None:
        header = fields(
            b"t=" + TIMESTAMP,
            b"v0=" + OTHER_SIGNATURE,
            b"v1a=zz",
            b"v2=" + SIGNATURE,
            b"v1=" + SIGNATURE,
        )

        assert verify_signed(verify_stripe, header) == OK

    def test_fields_without_equals_ignored(self, verify_stripe: Verify) -> None:
        header = fields(b"junk", b"t=" + TIMESTAMP, b"v1", b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == OK

    def test_empty_fields_ignored(self, verify_stripe: Verify) -> None:
        header = b",," + HEADER + b",,"

        assert verify_signed(verify_stripe, header) == OK

    def test_empty_body_verifies(self, verify_stripe: Verify) -> None:
        header = stripe_header(SECRET, TIMESTAMP, b"")

        assert verify_signed(verify_stripe, header, body=b"") == OK

    def test_binary_body_verifies(self, verify_stripe: Verify) -> None:
        body = bytes(range(256)) * 4
        header = stripe_header(SECRET, TIMESTAMP, body)

        assert verify_signed(verify_stripe, header, body=body) == OK

    def test_body_with_commas_verifies(self, verify_stripe: Verify) -> None:
        # The body is never parsed, so separators inside it change nothing.
        body = b"t=1,v1=00,=,"
        header = stripe_header(SECRET, TIMESTAMP, body)

        assert verify_signed(verify_stripe, header, body=body) == OK

    def test_leading_zero_timestamp_verifies(self, verify_stripe: Verify) -> None:
        # The signed content carries t's bytes as sent, zeros included.
        timestamp = b"0" + TIMESTAMP
        header = stripe_header(SECRET, timestamp, BODY)

        assert verify_signed(verify_stripe, header) == OK

    def test_bytes_subclass_accepted(self, verify_stripe: Verify) -> None:
        class Value(bytes):
            pass

        result = verify_stripe(
            [Value(SECRET)], Value(BODY), Value(HEADER), NOW, TOLERANCE
        )

        assert result == OK


class TestTampering:
    def test_tampered_body_rejected(self, verify_stripe: Verify) -> None:
        body = BODY.replace(b"4200", b"4201")

        assert verify_signed(verify_stripe, HEADER, body=body) == MISMATCH

    def test_truncated_body_rejected(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, HEADER, body=BODY[:-1]) == MISMATCH

    def test_tampered_timestamp_rejected(self, verify_stripe: Verify) -> None:
        # Still inside the tolerance, so only the signature can catch the change.
        header = fields(b"t=" + str(NOW + 1).encode(), b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_zero_padded_timestamp_rejected(self, verify_stripe: Verify) -> None:
        # Same number, different signed bytes.
        header = fields(b"t=0" + TIMESTAMP, b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_wrong_secret_rejected(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=" + OTHER_SIGNATURE)

        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_flipped_digit_rejected(self, verify_stripe: Verify) -> None:
        flipped = b"0" if SIGNATURE[:1] != b"0" else b"1"
        header = fields(b"t=" + TIMESTAMP, b"v1=" + flipped + SIGNATURE[1:])

        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_body_only_signature_rejected(self, verify_stripe: Verify) -> None:
        # A GitHub-style MAC over the body alone leaves out the timestamp.
        digest = hmac.new(SECRET, BODY, hashlib.sha256).hexdigest().encode()
        header = fields(b"t=" + TIMESTAMP, b"v1=" + digest)

        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_valid_signature_as_v0_rejected(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v0=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == NO_SIGNATURE


class TestTimestampWindow:
    def sign_at(self, sent_at: int) -> bytes:
        return stripe_header(SECRET, str(sent_at).encode(), BODY)

    def test_stale_timestamp_rejected(self, verify_stripe: Verify) -> None:
        header = self.sign_at(NOW - TOLERANCE - 1)

        assert verify_signed(verify_stripe, header) == STALE

    def test_future_timestamp_rejected(self, verify_stripe: Verify) -> None:
        # Stripe's own libraries accept any future time; hookgate bounds both ways.
        header = self.sign_at(NOW + TOLERANCE + 1)

        assert verify_signed(verify_stripe, header) == STALE

    def test_oldest_allowed_timestamp_accepted(self, verify_stripe: Verify) -> None:
        header = self.sign_at(NOW - TOLERANCE)

        assert verify_signed(verify_stripe, header) == OK

    def test_newest_allowed_timestamp_accepted(self, verify_stripe: Verify) -> None:
        header = self.sign_at(NOW + TOLERANCE)

        assert verify_signed(verify_stripe, header) == OK

    def test_zero_tolerance_accepts_same_second(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, HEADER, tolerance=0) == OK

    def test_zero_tolerance_rejects_next_second(self, verify_stripe: Verify) -> None:
        result = verify_signed(verify_stripe, HEADER, now=NOW + 1, tolerance=0)

        assert result == STALE

    def test_negative_tolerance_rejects_all(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, HEADER, tolerance=-1) == STALE

    def test_huge_clock_compared_exactly(self, verify_stripe: Verify) -> None:
        # Beyond 64 bits: the native version must not overflow or wrap.
        assert verify_signed(verify_stripe, HEADER, now=2**70) == STALE

    def test_huge_tolerance_accepts_all(self, verify_stripe: Verify) -> None:
        result = verify_signed(verify_stripe, HEADER, now=-(2**70), tolerance=2**71)

        assert result == OK

    def test_float_clock_accepted(self, verify_stripe: Verify) -> None:
        result = verify_signed(verify_stripe, HEADER, now=NOW + TOLERANCE + 0.5)

        assert result == STALE

    def test_stale_checked_before_signature(self, verify_stripe: Verify) -> None:
        header = b"t=" + str(NOW - TOLERANCE - 1).encode()

        assert verify_signed(verify_stripe, header) == STALE


class TestTimestampField:
    def test_missing_timestamp_rejected(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, b"v1=" + SIGNATURE) == BAD_TIMESTAMP

    def test_empty_header_rejected(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, b"") == BAD_TIMESTAMP

    def test_repeated_timestamp_rejected(self, verify_stripe: Verify) -> None:
        # Even two equal values: the header is ambiguous, so it is not trusted.
        header = fields(b"t=" + TIMESTAMP, b"t=" + TIMESTAMP, b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    def test_conflicting_timestamps_rejected(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=" + SIGNATURE, b"t=1")

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    def test_bare_t_counts_as_timestamp(self, verify_stripe: Verify) -> None:
        # A "t" field without "=" has an empty value, and it is a second t.
        header = fields(b"t", b"t=" + TIMESTAMP, b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    def test_uppercase_key_is_not_timestamp(self, verify_stripe: Verify) -> None:
        header = fields(b"T=" + TIMESTAMP, b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    def test_space_before_key_rejected(self, verify_stripe: Verify) -> None:
        header = fields(b"v1=" + SIGNATURE, b" t=" + TIMESTAMP)

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    def test_space_separated_fields_rejected(self, verify_stripe: Verify) -> None:
        # Without the comma the whole rest is t's value.
        header = b"t=" + TIMESTAMP + b" v1=" + SIGNATURE

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    @pytest.mark.parametrize(
        "timestamp",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"hello", id="letters"),
            pytest.param(b"+1700000000", id="plus-sign"),
            pytest.param(b"-1700000000", id="minus-sign"),
            pytest.param(b" 1700000000", id="leading-space"),
            pytest.param(b"1700000000 ", id="trailing-space"),
            pytest.param(b"1700000000\n", id="trailing-newline"),
            pytest.param(b"1_700_000_000", id="underscores"),
            pytest.param(b"1700000000.0", id="decimal"),
            pytest.param(b"1700000000=", id="trailing-equals"),
            pytest.param(b"1700000000000", id="thirteen-digits"),
            pytest.param(b"1700000000000000", id="milliseconds"),
            pytest.param(b"9" * 100_000, id="100-kb-digits"),
            pytest.param("١٧٠٠٠٠٠٠٠٠".encode(), id="arabic-indic-digits"),
            pytest.param("１７００００００００".encode(), id="fullwidth-digits"),
        ],
    )
    def test_malformed_timestamp_rejected(
        self, verify_stripe: Verify, timestamp: bytes
    ) -> None:
        # Signed over the malformed bytes, so only the timestamp check can reject.
        header = stripe_header(SECRET, timestamp, BODY)

        assert verify_signed(verify_stripe, header) == BAD_TIMESTAMP

    def test_zero_timestamp_parsed(self, verify_stripe: Verify) -> None:
        header = stripe_header(SECRET, b"0", BODY)

        assert verify_signed(verify_stripe, header, now=0) == OK

    def test_bad_timestamp_checked_first(self, verify_stripe: Verify) -> None:
        result = verify_signed(verify_stripe, b"t=soon", secrets=["not bytes"])

        assert result == BAD_TIMESTAMP


class TestSignatureFields:
    def test_timestamp_only_has_no_signature(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, b"t=" + TIMESTAMP) == NO_SIGNATURE

    def test_uppercase_scheme_has_no_signature(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"V1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == NO_SIGNATURE

    def test_space_after_comma_has_no_signature(self, verify_stripe: Verify) -> None:
        header = b"t=" + TIMESTAMP + b", v1=" + SIGNATURE

        assert verify_signed(verify_stripe, header) == NO_SIGNATURE

    def test_space_before_equals_has_no_signature(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1 =" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == NO_SIGNATURE

    def test_no_signature_skips_secrets(self, verify_stripe: Verify) -> None:
        header = b"t=" + TIMESTAMP

        assert verify_signed(verify_stripe, header, secrets=[1]) == NO_SIGNATURE

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(b"", id="empty"),
            pytest.param(SIGNATURE[:-1], id="63-digits"),
            pytest.param(SIGNATURE + b"0", id="65-digits"),
            pytest.param(SIGNATURE[:-1] + b"g", id="letter-g"),
            pytest.param(b" " + SIGNATURE, id="leading-space"),
            pytest.param(SIGNATURE + b" ", id="trailing-space"),
            pytest.param(SIGNATURE + b"=", id="trailing-equals"),
            pytest.param(b"=" + SIGNATURE, id="leading-equals"),
            pytest.param(SIGNATURE[:-2] + "é".encode(), id="non-ascii"),
            pytest.param(b"sha256=" + SIGNATURE, id="github-prefix"),
            pytest.param(
                hmac.new(SECRET, TIMESTAMP + b"." + BODY, hashlib.sha512)
                .hexdigest()
                .encode(),
                id="sha512-digest",
            ),
            pytest.param(b"a" * 100_000, id="100-kb-value"),
        ],
    )
    def test_malformed_signature_rejected(
        self, verify_stripe: Verify, value: bytes
    ) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=" + value)

        assert verify_signed(verify_stripe, header) == MALFORMED_SIGNATURE

    def test_malformed_skips_secrets(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=zz")

        assert verify_signed(verify_stripe, header, secrets=[1]) == MALFORMED_SIGNATURE

    def test_malformed_beside_valid_verifies(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=zz", b"v1=" + SIGNATURE)

        assert verify_signed(verify_stripe, header) == OK

    def test_malformed_beside_wrong_mismatches(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, b"v1=zz", b"v1=" + OTHER_SIGNATURE)

        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_large_header_valid_last(self, verify_stripe: Verify) -> None:
        wrong = [b"v1=" + OTHER_SIGNATURE] * 1500
        header = fields(b"t=" + TIMESTAMP, *wrong, b"v1=" + SIGNATURE)

        assert len(header) > 100_000
        assert verify_signed(verify_stripe, header) == OK

    def test_large_header_all_wrong(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, *[b"v1=" + OTHER_SIGNATURE] * 1500)

        assert len(header) > 100_000
        assert verify_signed(verify_stripe, header) == MISMATCH

    def test_large_header_without_v1(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, *[b"v0=" + SIGNATURE] * 1500)

        assert len(header) > 100_000
        assert verify_signed(verify_stripe, header) == NO_SIGNATURE

    def test_large_header_empty_v1_values(self, verify_stripe: Verify) -> None:
        header = fields(b"t=" + TIMESTAMP, *[b"v1="] * 30_000)

        assert len(header) > 100_000
        assert verify_signed(verify_stripe, header) == MALFORMED_SIGNATURE

    def test_large_comma_run_lacks_timestamp(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, b"," * 100_000) == BAD_TIMESTAMP


class TestSecrets:
    def test_empty_secret_list_mismatches(self, verify_stripe: Verify) -> None:
        assert verify_signed(verify_stripe, HEADER, secrets=[]) == MISMATCH

    def test_str_secret_raises(self, verify_stripe: Verify) -> None:
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got str"):
            verify_signed(verify_stripe, HEADER, secrets=["whsec_test_secret"])

    def test_bare_bytes_secrets_raises(self, verify_stripe: Verify) -> None:
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got int"):
            verify_signed(verify_stripe, HEADER, secrets=SECRET)

    def test_secrets_after_match_unchecked(self, verify_stripe: Verify) -> None:
        secrets = [SECRET, "never reached"]

        assert verify_signed(verify_stripe, HEADER, secrets=secrets) == OK


class TestArgumentTypes:
    def test_bytearray_body_raises(self, verify_stripe: Verify) -> None:
        with pytest.raises(TypeError, match="body must be bytes, got bytearray"):
            verify_signed(verify_stripe, HEADER, body=bytearray(BODY))

    def test_str_header_raises(self, verify_stripe: Verify) -> None:
        with pytest.raises(TypeError, match="header must be bytes, got str"):
            verify_signed(verify_stripe, HEADER.decode())

    def test_type_checked_before_timestamp(self, verify_stripe: Verify) -> None:
        with pytest.raises(TypeError, match="header must be bytes, got bytearray"):
            verify_signed(verify_stripe, bytearray(b"t=soon"))


class TestConcurrency:
    def test_digest_releases_gil(self, verify_stripe: Verify) -> None:
        body = b"\xa5" * (16 * 1024 * 1024)
        header = stripe_header(SECRET, TIMESTAMP, body)

        result, ticked = run_with_ticker(
            lambda: verify_signed(verify_stripe, header, body=body)
        )

        assert result == OK
        assert ticked
