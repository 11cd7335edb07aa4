"""Standard Webhooks verification, run once on each implementation."""

from __future__ import annotations

import base64
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from .conftest import Verify
from .signing import (
    BAD_TIMESTAMP,
    BODY,
    MISMATCH,
    MSG_ID,
    NO_SIGNATURE,
    NOW,
    OK,
    OTHER_SECRET,
    SECRET,
    STALE,
    TOLERANCE,
    raw_signature,
    reference_signature,
)

TIMESTAMP = str(NOW).encode()
SIGNATURE = reference_signature(SECRET, MSG_ID, NOW, BODY)
OTHER_SIGNATURE = reference_signature(OTHER_SECRET, MSG_ID, NOW, BODY)


def verify_signed(
    verify: Verify,
    signatures: bytes,
    *,
    secrets: object = (SECRET,),
    msg_id: bytes = MSG_ID,
    timestamp: bytes = TIMESTAMP,
    body: bytes = BODY,
    now: object = NOW,
    tolerance: object = TOLERANCE,
) -> int:
    return verify(secrets, msg_id, timestamp, body, signatures, now, tolerance)


class TestPublishedVectors:
    # From the standard-webhooks/standard-webhooks repository:
    # libraries/python/tests/test_webhooks.py (test_sign_function,
    # test_invalid_signature_raises_error, test_multi_sig_payload_is_valid,
    # test_invalid_timestamp_raises_error) and libraries/javascript/src/webhook.test.ts
    # ("partial signature throws error", "invalid signature throws error").
    # The secret is "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" with the prefix and
    # base64 removed, as hookgate's config does.
    SECRET = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    MSG_ID = b"msg_p5jXN8AQM9LWM0D4loKWxJek"
    TIMESTAMP = b"1614265330"
    BODY = b'{"test": 2432232314}'
    SIGNATURE = b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    OTHER_SIGNATURE = b"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

    def verify_vector(self, verify: Verify, signatures: bytes) -> int:
        return verify(
            [self.SECRET],
            self.MSG_ID,
            self.TIMESTAMP,
            self.BODY,
            signatures,
            1614265330,
            TOLERANCE,
        )

    def test_reference_library_signs_vector(self) -> None:
        webhook = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        when = datetime.fromtimestamp(1614265330, tz=UTC)

        signature = webhook.sign(self.MSG_ID.decode(), when, self.BODY)

        assert signature.encode() == self.SIGNATURE

    def test_published_vector_verifies(self, verify: Verify) -> None:
        assert self.verify_vector(verify, self.SIGNATURE) == OK

    def test_altered_last_character_rejected(self, verify: Verify) -> None:
        altered = b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="

        assert self.verify_vector(verify, altered) == MISMATCH

    def test_vector_among_other_entries_verifies(self, verify: Verify) -> None:
        header = b" ".join(
            [
                self.OTHER_SIGNATURE,
                b"v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                self.SIGNATURE,
                self.OTHER_SIGNATURE,
            ]
        )

        assert self.verify_vector(verify, header) == OK

    def test_truncated_signature_rejected(self, verify: Verify) -> None:
        assert self.verify_vector(verify, self.SIGNATURE[:8]) == MISMATCH

    def test_empty_v1_entry_rejected(self, verify: Verify) -> None:
        assert self.verify_vector(verify, b"v1,") == MISMATCH

    def test_short_random_signature_rejected(self, verify: Verify) -> None:
        assert self.verify_vector(verify, b"v1,dawfeoifkpqwoekfpqoekf") == MISMATCH

    def test_word_timestamp_rejected(self, verify: Verify) -> None:
        result = verify(
            [self.SECRET],
            self.MSG_ID,
            b"hello",
            self.BODY,
            self.SIGNATURE,
            1614265330,
            TOLERANCE,
        )

        assert result == BAD_TIMESTAMP


class TestValidSignatures:
    def test_reference_signature_verifies(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE) == OK

    def test_binary_body_verifies(self, verify: Verify) -> None:
        body = bytes(range(256)) * 4
        signature = reference_signature(SECRET, MSG_ID, NOW, body)

        assert verify_signed(verify, signature, body=body) == OK

    def test_empty_body_verifies(self, verify: Verify) -> None:
        signature = reference_signature(SECRET, MSG_ID, NOW, b"")

        assert verify_signed(verify, signature, body=b"") == OK

    def test_second_secret_matches(self, verify: Verify) -> None:
        secrets = [OTHER_SECRET, SECRET]

        assert verify_signed(verify, SIGNATURE, secrets=secrets) == OK

    def test_second_signature_matches(self, verify: Verify) -> None:
        header = OTHER_SIGNATURE + b" " + SIGNATURE

        assert verify_signed(verify, header) == OK

    def test_rotation_matches_second_of_each(self, verify: Verify) -> None:
        third_secret = b"a third key that signed nothing here"
        secrets = [OTHER_SECRET, SECRET, third_secret]
        stranger = reference_signature(
            b"a key hookgate does not hold", MSG_ID, NOW, BODY
        )
        header = b" ".join([stranger, SIGNATURE, stranger])

        assert verify_signed(verify, header, secrets=secrets) == OK

    def test_secret_iterator_accepted(self, verify: Verify) -> None:
        secrets = iter([OTHER_SECRET, SECRET])

        assert verify_signed(verify, SIGNATURE, secrets=secrets) == OK

    def test_empty_key_verifies(self, verify: Verify) -> None:
        signature = raw_signature(b"", MSG_ID, TIMESTAMP, BODY)

        assert verify_signed(verify, signature, secrets=[b""]) == OK

    def test_key_longer_than_block_verifies(self, verify: Verify) -> None:
        # HMAC hashes a key longer than SHA-256's 64-byte block before use.
        key = bytes(range(100))
        signature = reference_signature(key, MSG_ID, NOW, BODY)

        assert verify_signed(verify, signature, secrets=[key]) == OK

    def test_binary_msg_id_verifies(self, verify: Verify) -> None:
        msg_id = b"\x00\xff. \xe9"
        signature = raw_signature(SECRET, msg_id, TIMESTAMP, BODY)

        assert verify_signed(verify, signature, msg_id=msg_id) == OK

    def test_leading_zero_timestamp_verifies(self, verify: Verify) -> None:
        # The signed content carries the header's bytes, zeros included.
        timestamp = b"0" + TIMESTAMP
        signature = raw_signature(SECRET, MSG_ID, timestamp, BODY)

        assert verify_signed(verify, signature, timestamp=timestamp) == OK

    def test_twelve_digit_timestamp_verifies(self, verify: Verify) -> None:
        timestamp = b"100000000000"
        signature = raw_signature(SECRET, MSG_ID, timestamp, BODY)

        result = verify_signed(
            verify, signature, timestamp=timestamp, now=100_000_000_000
        )

        assert result == OK

    def test_bytes_subclass_accepted(self, verify: Verify) -> None:
        class Header(bytes):
            pass

        result = verify(
            [Header(SECRET)],
            Header(MSG_ID),
            Header(TIMESTAMP),
            Header(BODY),
            Header(SIGNATURE),
            NOW,
            TOLERANCE,
        )

        assert result == OK


class TestTampering:
    def test_tampered_body_rejected(self, verify: Verify) -> None:
        body = BODY.replace(b"4200", b"4201")

        assert verify_signed(verify, SIGNATURE, body=body) == MISMATCH

    def test_truncated_body_rejected(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE, body=BODY[:-1]) == MISMATCH

    def test_tampered_msg_id_rejected(self, verify: Verify) -> None:
        msg_id = MSG_ID + b"x"

        assert verify_signed(verify, SIGNATURE, msg_id=msg_id) == MISMATCH

    def test_tampered_timestamp_rejected(self, verify: Verify) -> None:
        # Still inside the tolerance, so only the signature can catch the change.
        timestamp = str(NOW + 1).encode()

        assert verify_signed(verify, SIGNATURE, timestamp=timestamp) == MISMATCH

    def test_zero_padded_timestamp_rejected(self, verify: Verify) -> None:
        # Same number, different signed bytes.
        timestamp = b"0" + TIMESTAMP

        assert verify_signed(verify, SIGNATURE, timestamp=timestamp) == MISMATCH

    def test_wrong_secret_rejected(self, verify: Verify) -> None:
        assert verify_signed(verify, OTHER_SIGNATURE) == MISMATCH

    def test_unpadded_signature_rejected(self, verify: Verify) -> None:
        # Encoded forms are compared, so base64 without its '=' does not match.
        assert verify_signed(verify, SIGNATURE.rstrip(b"=")) == MISMATCH

    def test_overlong_signature_rejected(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE + b"=") == MISMATCH

    def test_invalid_base64_rejected(self, verify: Verify) -> None:
        signature = b"v1," + b"!" * (len(SIGNATURE) - 3)

        assert verify_signed(verify, signature) == MISMATCH

    def test_case_swapped_signature_rejected(self, verify: Verify) -> None:
        signature = b"v1," + SIGNATURE[3:].swapcase()

        assert verify_signed(verify, signature) == MISMATCH

    def test_raw_digest_rejected(self, verify: Verify) -> None:
        digest = base64.b64decode(SIGNATURE[3:])

        assert verify_signed(verify, b"v1," + digest) == MISMATCH


class TestTimestampWindow:
    def sign_at(self, sent_at: int) -> tuple[bytes, bytes]:
        timestamp = str(sent_at).encode()
        return timestamp, reference_signature(SECRET, MSG_ID, sent_at, BODY)

    def test_stale_timestamp_rejected(self, verify: Verify) -> None:
        timestamp, signature = self.sign_at(NOW - TOLERANCE - 1)

        assert verify_signed(verify, signature, timestamp=timestamp) == STALE

    def test_future_timestamp_rejected(self, verify: Verify) -> None:
        timestamp, signature = self.sign_at(NOW + TOLERANCE + 1)

        assert verify_signed(verify, signature, timestamp=timestamp) == STALE

    def test_oldest_allowed_timestamp_accepted(self, verify: Verify) -> None:
        timestamp, signature = self.sign_at(NOW - TOLERANCE)

        assert verify_signed(verify, signature, timestamp=timestamp) == OK

    def test_newest_allowed_timestamp_accepted(self, verify: Verify) -> None:
        timestamp, signature = self.sign_at(NOW + TOLERANCE)

        assert verify_signed(verify, signature, timestamp=timestamp) == OK

    def test_zero_tolerance_accepts_same_second(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE, tolerance=0) == OK

    def test_zero_tolerance_rejects_next_second(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE, now=NOW + 1, tolerance=0) == STALE

    def test_negative_tolerance_rejects_all(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE, tolerance=-1) == STALE

    def test_huge_clock_compared_exactly(self, verify: Verify) -> None:
        # Beyond 64 bits: the native version must not overflow or wrap.
        assert verify_signed(verify, SIGNATURE, now=2**70) == STALE

    def test_huge_tolerance_accepts_all(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE, now=-(2**70), tolerance=2**71) == OK

    def test_float_clock_accepted(self, verify: Verify) -> None:
        result = verify_signed(verify, SIGNATURE, now=NOW + TOLERANCE + 0.5)

        assert result == STALE

    def test_stale_checked_before_header(self, verify: Verify) -> None:
        timestamp = str(NOW - TOLERANCE - 1).encode()

        assert verify_signed(verify, b"", timestamp=timestamp) == STALE


class TestTimestampParsing:
    @pytest.mark.parametrize(
        "timestamp",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"hello", id="letters"),
            pytest.param(b"17000000O0", id="letter-o"),
            pytest.param(b"+1700000000", id="plus-sign"),
            pytest.param(b"-1700000000", id="minus-sign"),
            pytest.param(b"-0", id="negative-zero"),
            pytest.param(b" 1700000000", id="leading-space"),
            pytest.param(b"1700000000 ", id="trailing-space"),
            pytest.param(b"1700000000\n", id="trailing-newline"),
            pytest.param(b"1700000000\x00", id="trailing-nul"),
            pytest.param(b"1_700_000_000", id="underscores"),
            pytest.param(b"1700000000.0", id="decimal"),
            pytest.param(b"1.7e9", id="exponent"),
            pytest.param(b"0x6553f100", id="hexadecimal"),
            pytest.param(b"1700000000000", id="thirteen-digits"),
            pytest.param(b"0001700000000", id="thirteen-with-zeros"),
            pytest.param(b"9" * 4300, id="huge-digit-string"),
            pytest.param("١٧٠٠٠٠٠٠٠٠".encode(), id="arabic-indic-digits"),
            pytest.param("１７００００００００".encode(), id="fullwidth-digits"),
            pytest.param("¹⁷⁰⁰⁰⁰⁰⁰⁰⁰".encode(), id="superscript-digits"),
            pytest.param("1700000000".encode("utf-16-le"), id="utf-16"),
        ],
    )
    def test_malformed_timestamp_rejected(
        self, verify: Verify, timestamp: bytes
    ) -> None:
        # Signed over the malformed bytes, so only the timestamp check can reject.
        signature = raw_signature(SECRET, MSG_ID, timestamp, BODY)

        result = verify_signed(verify, signature, timestamp=timestamp)

        assert result == BAD_TIMESTAMP

    def test_zero_timestamp_parsed(self, verify: Verify) -> None:
        signature = raw_signature(SECRET, MSG_ID, b"0", BODY)

        result = verify_signed(verify, signature, timestamp=b"0", now=0)

        assert result == OK

    def test_bad_timestamp_checked_first(self, verify: Verify) -> None:
        result = verify_signed(verify, b"", secrets=[], timestamp=b"soon")

        assert result == BAD_TIMESTAMP


class TestSignatureHeader:
    def test_empty_header_has_no_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, b"") == NO_SIGNATURE

    def test_spaces_only_header_has_no_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, b"   ") == NO_SIGNATURE

    def test_v1a_entries_have_no_signature(self, verify: Verify) -> None:
        # v1a marks ed25519 signatures (spec/standard-webhooks.md in the
        # standard-webhooks repository), which hookgate does not verify.
        header = b"v1a," + SIGNATURE[3:] + b" v1a," + OTHER_SIGNATURE[3:]

        assert verify_signed(verify, header) == NO_SIGNATURE

    def test_other_versions_have_no_signature(self, verify: Verify) -> None:
        header = b"v2," + SIGNATURE[3:] + b" v0," + SIGNATURE[3:]

        assert verify_signed(verify, header) == NO_SIGNATURE

    def test_uppercase_version_has_no_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, b"V1," + SIGNATURE[3:]) == NO_SIGNATURE

    def test_bare_base64_has_no_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE[3:]) == NO_SIGNATURE

    def test_prefix_inside_token_ignored(self, verify: Verify) -> None:
        assert verify_signed(verify, b"x" + SIGNATURE) == NO_SIGNATURE

    def test_comma_separated_entries_ignored(self, verify: Verify) -> None:
        # Only spaces separate entries, so this is one v2 token.
        header = b"v2,abc," + SIGNATURE

        assert verify_signed(verify, header) == NO_SIGNATURE

    def test_repeated_spaces_between_entries(self, verify: Verify) -> None:
        header = OTHER_SIGNATURE + b"   " + SIGNATURE

        assert verify_signed(verify, header) == OK

    def test_surrounding_spaces_ignored(self, verify: Verify) -> None:
        assert verify_signed(verify, b"  " + SIGNATURE + b"  ") == OK

    def test_tab_does_not_separate(self, verify: Verify) -> None:
        header = OTHER_SIGNATURE + b"\t" + SIGNATURE

        assert verify_signed(verify, header) == MISMATCH

    def test_space_after_comma_rejected(self, verify: Verify) -> None:
        header = b"v1, " + SIGNATURE[3:]

        assert verify_signed(verify, header) == MISMATCH

    def test_trailing_nul_rejected(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE + b"\x00") == MISMATCH

    def test_nul_token_before_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, b"\x00 " + SIGNATURE) == OK

    def test_large_header_valid_last(self, verify: Verify) -> None:
        filler = b" ".join([OTHER_SIGNATURE] * 2300)
        header = filler + b" " + SIGNATURE

        assert len(header) > 100_000
        assert verify_signed(verify, header) == OK

    def test_large_header_all_wrong(self, verify: Verify) -> None:
        header = b" ".join([OTHER_SIGNATURE] * 2300)

        assert len(header) > 100_000
        assert verify_signed(verify, header) == MISMATCH

    def test_large_header_without_v1(self, verify: Verify) -> None:
        header = b" ".join([b"v1a," + SIGNATURE[3:]] * 2300)

        assert len(header) > 100_000
        assert verify_signed(verify, header) == NO_SIGNATURE

    def test_large_single_token_rejected(self, verify: Verify) -> None:
        header = b"v1," + b"A" * 100_000

        assert verify_signed(verify, header) == MISMATCH

    def test_large_space_run_has_no_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, b" " * 100_000) == NO_SIGNATURE


class TestSecrets:
    def test_empty_secret_list_mismatches(self, verify: Verify) -> None:
        assert verify_signed(verify, SIGNATURE, secrets=[]) == MISMATCH

    def test_empty_secret_list_without_signature(self, verify: Verify) -> None:
        assert verify_signed(verify, b"v1a,xyz", secrets=[]) == NO_SIGNATURE

    def test_empty_secret_list_stale_timestamp(self, verify: Verify) -> None:
        result = verify_signed(verify, SIGNATURE, secrets=[], now=NOW + TOLERANCE + 1)

        assert result == STALE

    def test_str_secret_raises(self, verify: Verify) -> None:
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got str"):
            verify_signed(verify, SIGNATURE, secrets=["hookgate"])

    def test_bytearray_secret_raises(self, verify: Verify) -> None:
        secrets = [bytearray(SECRET)]

        with pytest.raises(TypeError, match="got bytearray"):
            verify_signed(verify, SIGNATURE, secrets=secrets)

    def test_bare_bytes_secrets_raises(self, verify: Verify) -> None:
        # Iterating bytes yields ints, so a secret passed without a list fails.
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got int"):
            verify_signed(verify, SIGNATURE, secrets=SECRET)

    def test_secrets_after_match_unchecked(self, verify: Verify) -> None:
        secrets = [SECRET, "never reached"]

        assert verify_signed(verify, SIGNATURE, secrets=secrets) == OK


class TestArgumentTypes:
    @pytest.mark.parametrize("argument", ["msg_id", "timestamp", "body", "signatures"])
    def test_bytearray_argument_raises(self, verify: Verify, argument: str) -> None:
        arguments: dict[str, object] = {
            "msg_id": MSG_ID,
            "timestamp": TIMESTAMP,
            "body": BODY,
            "signatures": SIGNATURE,
        }
        arguments[argument] = bytearray(b"1")

        with pytest.raises(TypeError, match=f"{argument} must be bytes, got bytearray"):
            verify([SECRET], **arguments, now=NOW, tolerance=TOLERANCE)

    def test_none_body_raises(self, verify: Verify) -> None:
        with pytest.raises(TypeError, match="body must be bytes, got NoneType"):
            verify([SECRET], MSG_ID, TIMESTAMP, None, SIGNATURE, NOW, TOLERANCE)


class TestConcurrency:
    def test_threads_verify_concurrently(self, verify: Verify) -> None:
        body = bytes(range(256)) * 1024
        signature = reference_signature(SECRET, MSG_ID, NOW, body)
        tampered = body[:-1] + b"\x00"

        def check(index: int) -> int:
            sent = body if index % 2 == 0 else tampered
            return verify_signed(verify, signature, body=sent)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(check, range(64)))

        assert results[0::2] == [OK] * 32
        assert results[1::2] == [MISMATCH] * 32

    def test_digest_releases_gil(self, verify: Verify) -> None:
        # The switch interval is far longer than the test, so the main thread keeps
        # the GIL until a call releases it. The ticker can only advance while
        # verify_standard has released the GIL.
        body = b"\xa5" * (16 * 1024 * 1024)
        signature = reference_signature(SECRET, MSG_ID, NOW, body)
        ticks = [0]
        stop = threading.Event()

        def tick() -> None:
            while not stop.is_set():
                ticks[0] += 1
                time.sleep(0)

        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(60)
        ticker = threading.Thread(target=tick)
        ticker.start()
        try:
            while ticks[0] == 0:
                time.sleep(0.001)
            before = ticks[0]
            result = verify_signed(verify, signature, body=body)
            after = ticks[0]
        finally:
            stop.set()
            ticker.join()
            sys.setswitchinterval(switch_interval)

        assert result == OK
        assert after > before
