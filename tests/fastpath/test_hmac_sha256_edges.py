"""Edge cases for HMAC-SHA256, which the native verifier builds from SHA-256 calls.

The native verifier pads, hashes and wipes the key itself instead of calling
OpenSSL's EVP_MAC, so these checks pin that construction to the standard library's
``hmac``: every key length across the 64-byte block, bodies of several megabytes
fed in many chunks, and threads that each hold their own key while the GIL is
released.
"""

from __future__ import annotations

import hashlib
import threading
from types import ModuleType

import pytest

from .conftest import Verify
from .signing import (
    MISMATCH,
    MSG_ID,
    NOW,
    OK,
    TOLERANCE,
    github_signature,
    hmac_signature,
    raw_signature,
    stripe_header,
)

CHUNKS = [b"1700000000", b".", b'{"type": "invoice.paid"}']
TIMESTAMP = str(NOW).encode()


def key_of_length(length: int) -> bytes:
    # Neighbouring bytes differ and the first byte depends on the length, so a key
    # cut short or shifted by one byte gives another MAC.
    return bytes((index * 37 + length) % 256 for index in range(length))


def verify_sha256(verify_hmac: Verify, key: bytes, chunks: list[bytes]) -> int:
    signature = hmac_signature(key, "sha256", chunks, "hex")
    return verify_hmac([key], "sha256", chunks, [signature], "hex")


class TestKeyLengths:
    def test_every_key_length_verifies(self, verify_hmac: Verify) -> None:
        # 0 to 300 bytes covers keys used as they are, keys of exactly one block
        # and keys hashed first, with every boundary in between.
        failed = [
            length
            for length in range(301)
            if verify_sha256(verify_hmac, key_of_length(length), CHUNKS) != OK
        ]

        assert failed == []

    @pytest.mark.parametrize("length", [65, 129, 300])
    def test_long_key_equals_its_digest(self, verify_hmac: Verify, length: int) -> None:
        # HMAC hashes a key longer than the 64-byte block and uses the digest in its
        # place, so both keys give the same MAC.
        key = key_of_length(length)
        signature = hmac_signature(key, "sha256", CHUNKS, "hex")
        digest_key = hashlib.sha256(key).digest()

        assert verify_hmac([digest_key], "sha256", CHUNKS, [signature], "hex") == OK


class TestLargeBodies:
    @pytest.mark.parametrize("length", [0, 64, 65])
    def test_megabyte_body_in_chunks(self, verify_hmac: Verify, length: int) -> None:
        # 4093 is odd, so chunk ends fall at every offset within a 64-byte block,
        # and the empty chunks add updates of length zero between them.
        body = bytes(range(251)) * (4 * 1024 * 1024 // 251)
        chunks = []
        for start in range(0, len(body), 4093):
            chunks += [body[start : start + 4093], b""]

        assert verify_sha256(verify_hmac, key_of_length(length), chunks) == OK


class TestThreads:
    # Each test starts one thread per entry of its list of key lengths.
    THREADS = 8
    ROUNDS = 20

    def test_threads_keep_own_keys(self, verify_hmac: Verify) -> None:
        # Each thread checks its own signature and its neighbour's, with keys and
        # bodies of different lengths. With the GIL released, state shared
        # between calls could show up as a wrong verdict in some thread.
        lengths = [0, 31, 63, 64, 65, 128, 129, 300]
        keys = [key_of_length(length) for length in lengths]
        bodies = [bytes([index]) * (1000 + 997 * index) for index in range(8)]
        signatures = [
            hmac_signature(key, "sha256", [body], "hex")
            for key, body in zip(keys, bodies, strict=True)
        ]
        results: list[list[tuple[int, int]]] = [[] for _ in range(self.THREADS)]
        barrier = threading.Barrier(self.THREADS)

        def run(index: int) -> None:
            neighbour = signatures[(index + 1) % self.THREADS]
            barrier.wait()
            for _ in range(self.ROUNDS):
                own = verify_hmac(
                    [keys[index]], "sha256", [bodies[index]], [signatures[index]], "hex"
                )
                other = verify_hmac(
                    [keys[index]], "sha256", [bodies[index]], [neighbour], "hex"
                )
                results[index].append((own, other))

        threads = [
            threading.Thread(target=run, args=(index,)) for index in range(self.THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert results == [[(OK, MISMATCH)] * self.ROUNDS] * self.THREADS

    def test_schemes_verify_in_threads(
        self, native: ModuleType, pure: ModuleType
    ) -> None:
        # Standard Webhooks, GitHub and Stripe each feed the MAC a different set of
        # chunks. Every thread runs all three on both twins, round after round, and
        # each call must accept the signature that hmac made with its own key.
        lengths = [1, 32, 63, 64, 65, 100, 129, 256]
        results: list[list[int]] = [[] for _ in lengths]
        barrier = threading.Barrier(len(lengths))

        def run(index: int) -> None:
            key = key_of_length(lengths[index])
            body = bytes([index]) * (20000 + 131 * index)
            standard_header = raw_signature(key, MSG_ID, TIMESTAMP, body)
            github_header = github_signature(key, body)
            stripe_value = stripe_header(key, TIMESTAMP, body)
            barrier.wait()
            for module in [native, pure] * self.ROUNDS:
                results[index] += [
                    module.verify_standard(
                        [key], MSG_ID, TIMESTAMP, body, standard_header, NOW, TOLERANCE
                    ),
                    module.verify_github([key], body, github_header),
                    module.verify_stripe([key], body, stripe_value, NOW, TOLERANCE),
                ]

        threads = [
            threading.Thread(target=run, args=(index,)) for index in range(len(lengths))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert results == [[OK] * 6 * self.ROUNDS] * len(lengths)
