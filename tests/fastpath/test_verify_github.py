"""GitHub ``X-Hub-Signature-256`` verification, run once on each implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from .conftest import Verify
from .gil import run_with_ticker
from .signing import (
    BODY,
    MALFORMED_SIGNATURE,
    MISMATCH,
    NO_SIGNATURE,
    OK,
    OTHER_SECRET,
    SECRET,
    github_signature,
)

SIGNATURE = github_signature(SECRET, BODY)
OTHER_SIGNATURE = github_signature(OTHER_SECRET, BODY)
HEX = SIGNATURE[len(b"sha256=") :]


def verify_signed(
    verify: Verify,
    header: object,
    *,
    secrets: object = (SECRET,),
    body: object = BODY,
) -> int:
    return verify(secrets, body, header)


class TestPublishedVector:
    # From GitHub's "Validating webhook deliveries" page, section "Testing the
    # webhook payload validation":
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    SECRET = b"It's a Secret to Everybody"
    BODY = b"Hello, World!"
    HEADER = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    def test_test_signer_matches_vector(self) -> None:
        assert github_signature(self.SECRET, self.BODY) == self.HEADER

    def test_published_vector_verifies(self, verify_github: Verify) -> None:
        assert verify_github([self.SECRET], self.BODY, self.HEADER) == OK

    def test_uppercase_vector_verifies(self, verify_github: Verify) -> None:
        header = b"sha256=" + self.HEADER[7:].upper()

        assert verify_github([self.SECRET], self.BODY, header) == OK

    def test_altered_last_digit_rejected(self, verify_github: Verify) -> None:
        header = self.HEADER[:-1] + b"6"

        assert verify_github([self.SECRET], self.BODY, header) == MISMATCH

    def test_vector_with_other_body_rejected(self, verify_github: Verify) -> None:
        assert verify_github([self.SECRET], b"Hello, World", self.HEADER) == MISMATCH


class TestValidSignatures:
    def test_signature_verifies(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, SIGNATURE) == OK

    def test_mixed_case_digest_verifies(self, verify_github: Verify) -> None:
        mixed = HEX[:32].upper() + HEX[32:]

        assert mixed.lower() != mixed
        assert verify_signed(verify_github, b"sha256=" + mixed) == OK

    def test_empty_body_verifies(self, verify_github: Verify) -> None:
        header = github_signature(SECRET, b"")

        assert verify_signed(verify_github, header, body=b"") == OK

    def test_binary_body_verifies(self, verify_github: Verify) -> None:
        body = bytes(range(256)) * 4
        header = github_signature(SECRET, body)

        assert verify_signed(verify_github, header, body=body) == OK

    def test_second_secret_matches(self, verify_github: Verify) -> None:
        secrets = [OTHER_SECRET, SECRET]

        assert verify_signed(verify_github, SIGNATURE, secrets=secrets) == OK

    def test_secret_iterator_accepted(self, verify_github: Verify) -> None:
        secrets = iter([OTHER_SECRET, SECRET])

        assert verify_signed(verify_github, SIGNATURE, secrets=secrets) == OK

    def test_empty_key_verifies(self, verify_github: Verify) -> None:
        header = github_signature(b"", BODY)

        assert verify_signed(verify_github, header, secrets=[b""]) == OK

    def test_key_longer_than_block_verifies(self, verify_github: Verify) -> None:
        # HMAC hashes a key longer than SHA-256's 64-byte block before use.
        key = bytes(range(100))
        header = github_signature(key, BODY)

        assert verify_signed(verify_github, header, secrets=[key]) == OK

    def test_bytes_subclass_accepted(self, verify_github: Verify) -> None:
        class Header(bytes):
            pass

        result = verify_github([Header(SECRET)], Header(BODY), Header(SIGNATURE))

        assert result == OK


class TestTampering:
    def test_tampered_body_rejected(self, verify_github: Verify) -> None:
        body = BODY.replace(b"4200", b"4201")

        assert verify_signed(verify_github, SIGNATURE, body=body) == MISMATCH

    def test_truncated_body_rejected(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, SIGNATURE, body=BODY[:-1]) == MISMATCH

    def test_extended_body_rejected(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, SIGNATURE, body=BODY + b"\n") == MISMATCH

    def test_wrong_secret_rejected(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, OTHER_SIGNATURE) == MISMATCH

    def test_flipped_digit_rejected(self, verify_github: Verify) -> None:
        flipped = b"0" if HEX[10:11] != b"0" else b"1"
        header = b"sha256=" + HEX[:10] + flipped + HEX[11:]

        assert verify_signed(verify_github, header) == MISMATCH

    def test_sha512_of_body_rejected(self, verify_github: Verify) -> None:
        # Same prefix and alphabet, but a 64-byte digest is not a SHA-256 one.
        digest = hmac.new(SECRET, BODY, hashlib.sha512).hexdigest().encode()

        assert verify_signed(verify_github, b"sha256=" + digest) == MALFORMED_SIGNATURE


class TestSignatureHeader:
    def test_empty_header_has_no_signature(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, b"") == NO_SIGNATURE

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param(HEX, id="missing-prefix"),
            pytest.param(b"sha256=", id="prefix-only"),
            pytest.param(b"SHA256=" + HEX, id="uppercase-prefix"),
            pytest.param(b"sha256:" + HEX, id="colon-separator"),
            pytest.param(b"sha256 " + HEX, id="space-separator"),
            pytest.param(b"v1=" + HEX, id="stripe-prefix"),
            pytest.param(
                b"sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest().encode(),
                id="sha1-header",
            ),
            pytest.param(b" " + SIGNATURE, id="leading-space"),
            pytest.param(SIGNATURE + b" ", id="trailing-space"),
            pytest.param(b"sha256= " + HEX, id="space-after-equals"),
            pytest.param(b"sha256=" + HEX[:32] + b" " + HEX[32:], id="inner-space"),
            pytest.param(SIGNATURE + b"\r\n", id="trailing-crlf"),
            pytest.param(SIGNATURE + b"\x00", id="trailing-nul"),
            pytest.param(b"\tsha256=" + HEX, id="leading-tab"),
            pytest.param(SIGNATURE[:-1], id="63-digits"),
            pytest.param(SIGNATURE + b"0", id="65-digits"),
            pytest.param(SIGNATURE + b"00", id="66-digits"),
            pytest.param(b"sha256=" + HEX[:-1] + b"g", id="letter-g"),
            pytest.param(b"sha256=" + b"0x" + HEX[2:], id="0x-inside"),
            pytest.param(b"sha256=" + HEX[:-2] + "é".encode(), id="non-ascii"),
            # 61 ASCII digits and one three-byte fullwidth zero: 64 bytes.
            pytest.param(b"sha256=" + b"0" * 61 + "０".encode(), id="fullwidth-digit"),
            pytest.param(
                b"sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).digest(),
                id="raw-digest",
            ),
            pytest.param(
                b"sha256=" + base64.b64encode(bytes.fromhex(HEX.decode())),
                id="base64-digest",
            ),
            pytest.param(SIGNATURE + b"," + SIGNATURE, id="two-signatures"),
            pytest.param(SIGNATURE + b" " + SIGNATURE, id="space-separated-pair"),
            pytest.param(b"sha256=sha256=" + HEX, id="doubled-prefix"),
            pytest.param(b"sha256=" + b"a" * 100_000, id="100-kb-digest"),
            pytest.param(b" " * 100_000, id="100-kb-spaces"),
            pytest.param(SIGNATURE + b" " * 100_000, id="100-kb-trailing-spaces"),
        ],
    )
    def test_malformed_header_rejected(
        self, verify_github: Verify, header: bytes
    ) -> None:
        assert verify_signed(verify_github, header) == MALFORMED_SIGNATURE

    def test_malformed_header_skips_secrets(self, verify_github: Verify) -> None:
        # The header is checked first, so secrets are never read or type-checked.
        result = verify_signed(verify_github, HEX, secrets=["not bytes"])

        assert result == MALFORMED_SIGNATURE

    def test_empty_header_skips_secrets(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, b"", secrets=["not bytes"]) == NO_SIGNATURE


class TestSecrets:
    def test_empty_secret_list_mismatches(self, verify_github: Verify) -> None:
        assert verify_signed(verify_github, SIGNATURE, secrets=[]) == MISMATCH

    def test_str_secret_raises(self, verify_github: Verify) -> None:
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got str"):
            verify_signed(verify_github, SIGNATURE, secrets=["hookgate"])

    def test_bytearray_secret_raises(self, verify_github: Verify) -> None:
        secrets = [OTHER_SECRET, bytearray(SECRET)]

        with pytest.raises(
            TypeError, match=r"secrets\[1\] must be bytes, got bytearray"
        ):
            verify_signed(verify_github, SIGNATURE, secrets=secrets)

    def test_bare_bytes_secrets_raises(self, verify_github: Verify) -> None:
        # Iterating bytes yields ints, so a secret passed without a list fails.
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got int"):
            verify_signed(verify_github, SIGNATURE, secrets=SECRET)

    def test_secrets_after_match_unchecked(self, verify_github: Verify) -> None:
        secrets = [SECRET, "never reached"]

        assert verify_signed(verify_github, SIGNATURE, secrets=secrets) == OK


class TestArgumentTypes:
    def test_bytearray_body_raises(self, verify_github: Verify) -> None:
        with pytest.raises(TypeError, match="body must be bytes, got bytearray"):
            verify_signed(verify_github, SIGNATURE, body=bytearray(BODY))

    def test_memoryview_body_raises(self, verify_github: Verify) -> None:
        with pytest.raises(TypeError, match="body must be bytes, got memoryview"):
            verify_signed(verify_github, SIGNATURE, body=memoryview(BODY))

    def test_str_header_raises(self, verify_github: Verify) -> None:
        with pytest.raises(TypeError, match="header must be bytes, got str"):
            verify_github([SECRET], BODY, SIGNATURE.decode())

    def test_none_header_raises(self, verify_github: Verify) -> None:
        with pytest.raises(TypeError, match="header must be bytes, got NoneType"):
            verify_github([SECRET], BODY, None)

    def test_body_checked_before_header(self, verify_github: Verify) -> None:
        with pytest.raises(TypeError, match="body must be bytes, got str"):
            verify_github([SECRET], "body", "header")


class TestConcurrency:
    def test_digest_releases_gil(self, verify_github: Verify) -> None:
        body = b"\xa5" * (16 * 1024 * 1024)
        header = github_signature(SECRET, body)

        result, ticked = run_with_ticker(
            lambda: verify_signed(verify_github, header, body=body)
        )

        assert result == OK
        assert ticked
