"""Generic HMAC verification (``verify_hmac``), run once on each implementation."""

from __future__ import annotations

import base64
import re
from typing import ClassVar

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
    hmac_signature,
)

ALGORITHMS = ["sha256", "sha512", "sha1"]
ENCODINGS = ["hex", "base64"]

# A signed-content template such as "{timestamp}.{body}", split as the gateway does.
CHUNKS = [b"1700000000", b".", BODY]
SIGNATURE = hmac_signature(SECRET, "sha256", CHUNKS, "hex")
OTHER_SIGNATURE = hmac_signature(OTHER_SECRET, "sha256", CHUNKS, "hex")


def verify_signed(
    verify: Verify,
    signatures: object,
    *,
    secrets: object = (SECRET,),
    algorithm: object = "sha256",
    chunks: object = CHUNKS,
    encoding: object = "hex",
) -> int:
    return verify(secrets, algorithm, chunks, signatures, encoding)


class TestPublishedVectors:
    # Test case 2 of RFC 4231 section 4.3 (SHA-256, SHA-512) and of RFC 2202
    # section 3 (SHA-1): key "Jefe", data "what do ya want for nothing?".
    KEY = b"Jefe"
    CHUNKS = (b"what do ya want ", b"for nothing?")
    DIGESTS: ClassVar[dict[str, bytes]] = {
        "sha256": b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "sha512": (
            b"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            b"9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        ),
        "sha1": b"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    }

    def verify_vector(self, verify: Verify, algorithm: str, signature: bytes) -> int:
        return verify([self.KEY], algorithm, self.CHUNKS, [signature], "hex")

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_published_vector_verifies(
        self, verify_hmac: Verify, algorithm: str
    ) -> None:
        assert self.verify_vector(verify_hmac, algorithm, self.DIGESTS[algorithm]) == OK

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_uppercase_vector_verifies(
        self, verify_hmac: Verify, algorithm: str
    ) -> None:
        signature = self.DIGESTS[algorithm].upper()

        assert self.verify_vector(verify_hmac, algorithm, signature) == OK

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_base64_vector_verifies(self, verify_hmac: Verify, algorithm: str) -> None:
        digest = bytes.fromhex(self.DIGESTS[algorithm].decode())
        signature = base64.b64encode(digest)

        result = verify_hmac([self.KEY], algorithm, self.CHUNKS, [signature], "base64")

        assert result == OK

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_altered_vector_rejected(self, verify_hmac: Verify, algorithm: str) -> None:
        digest = self.DIGESTS[algorithm]
        altered = digest[:-1] + (b"0" if digest[-1:] != b"0" else b"1")

        assert self.verify_vector(verify_hmac, algorithm, altered) == MISMATCH

    def test_test_signer_matches_vectors(self) -> None:
        for algorithm, digest in self.DIGESTS.items():
            assert hmac_signature(self.KEY, algorithm, self.CHUNKS, "hex") == digest


class TestSha256Vectors:
    """RFC 4231 section 4 vectors for HMAC-SHA256, which the native verifier
    computes from SHA-256 block calls instead of OpenSSL's HMAC."""

    LONG_KEY = b"\xaa" * 131
    CASES: ClassVar[list[tuple[bytes, bytes, bytes]]] = [
        # Test case 1: a 20-byte key.
        (
            b"\x0b" * 20,
            b"Hi There",
            b"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        # Test case 4: a 25-byte key and 50 bytes of data.
        (
            bytes(range(1, 26)),
            b"\xcd" * 50,
            b"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        # Test cases 6 and 7: a 131-byte key, which HMAC hashes before use.
        (
            LONG_KEY,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            LONG_KEY,
            b"This is a test using a larger than block-size key and a larger than"
            b" block-size data. The key needs to be hashed before being used by the"
            b" HMAC algorithm.",
            b"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ]

    @pytest.mark.parametrize("split", [0, 1, 7, 64])
    @pytest.mark.parametrize(("key", "data", "digest"), CASES)
    def test_vector_verifies_however_split(
        self, verify_hmac: Verify, key: bytes, data: bytes, digest: bytes, split: int
    ) -> None:
        chunks = [data[:split], data[split:]]

        assert verify_hmac([key], "sha256", chunks, [digest], "hex") == OK

    @pytest.mark.parametrize("length", [63, 64, 65, 128])
    def test_key_around_block_size_verifies(
        self, verify_hmac: Verify, length: int
    ) -> None:
        # A 64-byte key is used as it is, a 65-byte one is hashed first.
        key = bytes(range(length))
        signature = hmac_signature(key, "sha256", CHUNKS, "hex")

        assert verify_signed(verify_hmac, [signature], secrets=[key]) == OK
        assert verify_signed(verify_hmac, [signature], secrets=[key[:-1]]) == MISMATCH


class TestValidSignatures:
    @pytest.mark.parametrize("encoding", ENCODINGS)
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_signature_verifies(
        self, verify_hmac: Verify, algorithm: str, encoding: str
    ) -> None:
        signature = hmac_signature(SECRET, algorithm, CHUNKS, encoding)

        result = verify_signed(
            verify_hmac, [signature], algorithm=algorithm, encoding=encoding
        )

        assert result == OK

    def test_mixed_case_hex_verifies(self, verify_hmac: Verify) -> None:
        mixed = SIGNATURE[:32].upper() + SIGNATURE[32:]

        assert mixed.lower() != mixed
        assert verify_signed(verify_hmac, [mixed]) == OK

    def test_second_secret_matches(self, verify_hmac: Verify) -> None:
        secrets = [OTHER_SECRET, SECRET]

        assert verify_signed(verify_hmac, [SIGNATURE], secrets=secrets) == OK

    def test_second_signature_matches(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [OTHER_SIGNATURE, SIGNATURE]) == OK

    def test_rotation_matches_second_of_each(self, verify_hmac: Verify) -> None:
        stranger = hmac_signature(
            b"a key hookgate does not hold", "sha256", CHUNKS, "hex"
        )
        secrets = [OTHER_SECRET, SECRET, b"a third key that signed nothing here"]
        signatures = [stranger, SIGNATURE, stranger]

        assert verify_signed(verify_hmac, signatures, secrets=secrets) == OK

    def test_secret_iterator_accepted(self, verify_hmac: Verify) -> None:
        secrets = iter([OTHER_SECRET, SECRET])

        assert verify_signed(verify_hmac, [SIGNATURE], secrets=secrets) == OK

    def test_signature_tuple_accepted(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, (SIGNATURE,)) == OK

    def test_signature_iterator_accepted(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, iter([OTHER_SIGNATURE, SIGNATURE])) == OK

    def test_empty_key_verifies(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(b"", "sha256", CHUNKS, "hex")

        assert verify_signed(verify_hmac, [signature], secrets=[b""]) == OK

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_key_longer_than_block_verifies(
        self, verify_hmac: Verify, algorithm: str
    ) -> None:
        # SHA-512's block is 128 bytes, so 200 covers all three digests.
        key = bytes(range(200))
        signature = hmac_signature(key, algorithm, CHUNKS, "hex")

        result = verify_signed(
            verify_hmac, [signature], secrets=[key], algorithm=algorithm
        )

        assert result == OK

    def test_bytes_subclass_accepted(self, verify_hmac: Verify) -> None:
        class Value(bytes):
            pass

        result = verify_hmac(
            [Value(SECRET)],
            "sha256",
            [Value(chunk) for chunk in CHUNKS],
            [Value(SIGNATURE)],
            "hex",
        )

        assert result == OK


class TestChunks:
    def test_split_points_do_not_matter(self, verify_hmac: Verify) -> None:
        joined = b"".join(CHUNKS)
        split = [joined[:3], joined[3:4], b"", joined[4:]]

        assert verify_signed(verify_hmac, [SIGNATURE], chunks=[joined]) == OK
        assert verify_signed(verify_hmac, [SIGNATURE], chunks=split) == OK

    def test_chunk_order_matters(self, verify_hmac: Verify) -> None:
        chunks = [CHUNKS[2], CHUNKS[1], CHUNKS[0]]

        assert verify_signed(verify_hmac, [SIGNATURE], chunks=chunks) == MISMATCH

    def test_missing_chunk_rejected(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [SIGNATURE], chunks=CHUNKS[:2]) == MISMATCH

    def test_tampered_body_rejected(self, verify_hmac: Verify) -> None:
        chunks = [*CHUNKS[:2], BODY.replace(b"4200", b"4201")]

        assert verify_signed(verify_hmac, [SIGNATURE], chunks=chunks) == MISMATCH

    def test_no_chunks_signs_empty_message(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(SECRET, "sha256", [], "hex")

        assert verify_signed(verify_hmac, [signature], chunks=[]) == OK

    def test_many_chunks_verify(self, verify_hmac: Verify) -> None:
        chunks = [bytes([index % 256]) for index in range(5000)]
        signature = hmac_signature(SECRET, "sha256", chunks, "hex")

        assert verify_signed(verify_hmac, [signature], chunks=chunks) == OK

    def test_chunk_iterator_read_per_secret(self, verify_hmac: Verify) -> None:
        # An iterator is exhausted after one pass, but the second secret needs the
        # chunks again, so they must have been kept.
        chunks = iter(CHUNKS)
        secrets = [OTHER_SECRET, SECRET]

        result = verify_signed(verify_hmac, [SIGNATURE], secrets=secrets, chunks=chunks)

        assert result == OK


class TestEncodings:
    def test_hex_under_base64_malformed(self, verify_hmac: Verify) -> None:
        result = verify_signed(verify_hmac, [SIGNATURE], encoding="base64")

        assert result == MALFORMED_SIGNATURE

    def test_base64_under_hex_malformed(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(SECRET, "sha256", CHUNKS, "base64")

        assert verify_signed(verify_hmac, [signature]) == MALFORMED_SIGNATURE

    def test_other_algorithm_digest_malformed(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(SECRET, "sha512", CHUNKS, "hex")

        assert verify_signed(verify_hmac, [signature]) == MALFORMED_SIGNATURE

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_unpadded_base64_malformed(
        self, verify_hmac: Verify, algorithm: str
    ) -> None:
        signature = hmac_signature(SECRET, algorithm, CHUNKS, "base64").rstrip(b"=")

        result = verify_signed(
            verify_hmac, [signature], algorithm=algorithm, encoding="base64"
        )

        assert result == MALFORMED_SIGNATURE

    def test_urlsafe_base64_malformed(self, verify_hmac: Verify) -> None:
        # Found by trying keys: this digest's standard base64 contains '+' or '/'.
        key = self.key_with_urlsafe_difference()
        signature = hmac_signature(key, "sha256", CHUNKS, "base64")
        urlsafe = signature.replace(b"+", b"-").replace(b"/", b"_")

        result = verify_signed(verify_hmac, [urlsafe], secrets=[key], encoding="base64")

        assert urlsafe != signature
        assert result == MALFORMED_SIGNATURE

    def key_with_urlsafe_difference(self) -> bytes:
        for index in range(100):
            key = b"key-%d" % index
            signature = hmac_signature(key, "sha256", CHUNKS, "base64")
            if b"+" in signature or b"/" in signature:
                return key
        raise AssertionError("no key in 100 gave a digest with '+' or '/'")

    def test_base64_with_newline_malformed(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(SECRET, "sha256", CHUNKS, "base64")

        result = verify_signed(verify_hmac, [signature + b"\n"], encoding="base64")

        assert result == MALFORMED_SIGNATURE

    def test_padding_inside_base64_malformed(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(SECRET, "sha256", CHUNKS, "base64")
        moved = b"=" + signature[:-1]

        result = verify_signed(verify_hmac, [moved], encoding="base64")

        assert result == MALFORMED_SIGNATURE

    def test_noncanonical_base64_mismatches(self, verify_hmac: Verify) -> None:
        # SHA-256's 32 bytes leave two unused bits in the last character before
        # '='. Setting one decodes to the same digest, but the text is compared.
        signature = hmac_signature(SECRET, "sha256", CHUNKS, "base64")
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(signature[-2:-1])
        noncanonical = signature[:-2] + alphabet[last ^ 1 : (last ^ 1) + 1] + b"="

        result = verify_signed(verify_hmac, [noncanonical], encoding="base64")

        assert base64.b64decode(noncanonical) == base64.b64decode(signature)
        assert result == MISMATCH

    def test_case_swapped_base64_mismatches(self, verify_hmac: Verify) -> None:
        signature = hmac_signature(SECRET, "sha256", CHUNKS, "base64")

        result = verify_signed(verify_hmac, [signature.swapcase()], encoding="base64")

        assert result == MISMATCH


class TestSignatures:
    def test_empty_sequence_has_no_signature(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, []) == NO_SIGNATURE

    def test_no_signature_skips_secrets(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [], secrets=[1]) == NO_SIGNATURE

    @pytest.mark.parametrize(
        "signature",
        [
            pytest.param(b"", id="empty"),
            pytest.param(SIGNATURE[:-1], id="63-digits"),
            pytest.param(SIGNATURE + b"0", id="65-digits"),
            pytest.param(SIGNATURE[:-1] + b"g", id="letter-g"),
            pytest.param(b" " + SIGNATURE[1:], id="leading-space"),
            pytest.param(SIGNATURE[:-1] + b" ", id="trailing-space"),
            pytest.param(b"sha256=" + SIGNATURE, id="prefix-left-on"),
            pytest.param(SIGNATURE[:-2] + "é".encode(), id="non-ascii"),
            pytest.param(bytes.fromhex(SIGNATURE.decode()), id="raw-digest"),
            pytest.param(b"a" * 100_000, id="100-kb-signature"),
        ],
    )
    def test_malformed_signature_rejected(
        self, verify_hmac: Verify, signature: bytes
    ) -> None:
        assert verify_signed(verify_hmac, [signature]) == MALFORMED_SIGNATURE

    def test_malformed_skips_secrets(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [b"zz"], secrets=[1]) == MALFORMED_SIGNATURE

    def test_malformed_beside_valid_verifies(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [b"zz", SIGNATURE]) == OK

    def test_malformed_beside_wrong_mismatches(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [b"zz", OTHER_SIGNATURE]) == MISMATCH

    def test_many_signatures_valid_last(self, verify_hmac: Verify) -> None:
        signatures = [OTHER_SIGNATURE] * 2000 + [SIGNATURE]

        assert verify_signed(verify_hmac, signatures) == OK

    def test_many_signatures_all_wrong(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [OTHER_SIGNATURE] * 2000) == MISMATCH


class TestSecrets:
    def test_empty_secret_list_mismatches(self, verify_hmac: Verify) -> None:
        assert verify_signed(verify_hmac, [SIGNATURE], secrets=[]) == MISMATCH

    def test_str_secret_raises(self, verify_hmac: Verify) -> None:
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got str"):
            verify_signed(verify_hmac, [SIGNATURE], secrets=["hookgate"])

    def test_bare_bytes_secrets_raises(self, verify_hmac: Verify) -> None:
        with pytest.raises(TypeError, match=r"secrets\[0\] must be bytes, got int"):
            verify_signed(verify_hmac, [SIGNATURE], secrets=SECRET)

    def test_secrets_after_match_unchecked(self, verify_hmac: Verify) -> None:
        secrets = [SECRET, "never reached"]

        assert verify_signed(verify_hmac, [SIGNATURE], secrets=secrets) == OK


class TestArguments:
    @pytest.mark.parametrize(
        "algorithm", ["md5", "SHA256", "sha-256", "sha384", "", b"sha256", None]
    )
    def test_unknown_algorithm_raises(
        self, verify_hmac: Verify, algorithm: object
    ) -> None:
        message = f"algorithm must be 'sha256', 'sha512' or 'sha1', got {algorithm!r}"

        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            verify_signed(verify_hmac, [SIGNATURE], algorithm=algorithm)

    @pytest.mark.parametrize("encoding", ["HEX", "base64url", "b64", "", b"hex", None])
    def test_unknown_encoding_raises(
        self, verify_hmac: Verify, encoding: object
    ) -> None:
        message = f"encoding must be 'hex' or 'base64', got {encoding!r}"

        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            verify_signed(verify_hmac, [SIGNATURE], encoding=encoding)

    def test_algorithm_checked_before_encoding(self, verify_hmac: Verify) -> None:
        with pytest.raises(ValueError, match="algorithm"):
            verify_signed(verify_hmac, [SIGNATURE], algorithm="md5", encoding="b64")

    def test_str_chunk_raises(self, verify_hmac: Verify) -> None:
        chunks = [b"1700000000", ".", BODY]

        with pytest.raises(TypeError, match=r"chunks\[1\] must be bytes, got str"):
            verify_signed(verify_hmac, [SIGNATURE], chunks=chunks)

    def test_bytearray_chunk_raises(self, verify_hmac: Verify) -> None:
        chunks = [bytearray(BODY)]

        with pytest.raises(
            TypeError, match=r"chunks\[0\] must be bytes, got bytearray"
        ):
            verify_signed(verify_hmac, [SIGNATURE], chunks=chunks)

    def test_bare_bytes_chunks_raises(self, verify_hmac: Verify) -> None:
        with pytest.raises(TypeError, match=r"chunks\[0\] must be bytes, got int"):
            verify_signed(verify_hmac, [SIGNATURE], chunks=BODY)

    def test_str_signature_raises(self, verify_hmac: Verify) -> None:
        signatures = [SIGNATURE, SIGNATURE.decode()]

        with pytest.raises(TypeError, match=r"signatures\[1\] must be bytes, got str"):
            verify_signed(verify_hmac, signatures)

    def test_bare_bytes_signatures_raises(self, verify_hmac: Verify) -> None:
        with pytest.raises(TypeError, match=r"signatures\[0\] must be bytes, got int"):
            verify_signed(verify_hmac, SIGNATURE)

    def test_chunks_checked_before_signatures(self, verify_hmac: Verify) -> None:
        with pytest.raises(TypeError, match=r"chunks\[0\]"):
            verify_signed(verify_hmac, ["not bytes"], chunks=["not bytes"])

    def test_types_checked_before_verdict(self, verify_hmac: Verify) -> None:
        # An empty signature list would return NO_SIGNATURE, but the chunks come first.
        with pytest.raises(TypeError, match=r"chunks\[0\]"):
            verify_signed(verify_hmac, [], chunks=[None])

    def test_non_iterable_chunks_raises(self, verify_hmac: Verify) -> None:
        with pytest.raises(TypeError, match="not iterable"):
            verify_signed(verify_hmac, [SIGNATURE], chunks=None)


class TestConcurrency:
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_digest_releases_gil(self, verify_hmac: Verify, algorithm: str) -> None:
        chunks = [b"\xa5" * (8 * 1024 * 1024), b"\x5a" * (8 * 1024 * 1024)]
        signature = hmac_signature(SECRET, algorithm, chunks, "base64")

        result, ticked = run_with_ticker(
            lambda: verify_signed(
                verify_hmac,
                [signature],
                algorithm=algorithm,
                chunks=chunks,
                encoding="base64",
            )
        )

        assert result == OK
        assert ticked
