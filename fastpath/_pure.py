"""Pure-Python twin of ``_native``: the same contract, on the standard library.

Used when the extension is not built, and as the reference the compiled version is
tested against. Keep the two in step: every branch here has its twin there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence

OK = 0
BAD_TIMESTAMP = 1
STALE = 2
NO_SIGNATURE = 3
MISMATCH = 4
MALFORMED_SIGNATURE = 5

# A timestamp longer than this cannot be a plausible Unix time in seconds; the bound
# also keeps int() away from huge digit strings.
_MAX_TIMESTAMP_DIGITS = 12

# The digests verify_hmac accepts, each with its size in bytes.
_DIGEST_SIZES = {
    name: hashlib.new(name).digest_size for name in ("sha256", "sha512", "sha1")
}

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

_GITHUB_PREFIX = b"sha256="


def _require_bytes(value: object, name: str) -> None:
    # _native hands these buffers to OpenSSL without the GIL, which is safe only for
    # immutable bytes, so it rejects bytearray and memoryview. Rejecting them here too
    # keeps a caller's type error from surfacing only where the extension is built.
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")


def _require_secret(secret: object, index: int) -> None:
    if not isinstance(secret, bytes):
        raise TypeError(f"secrets[{index}] must be bytes, got {type(secret).__name__}")


def _require_bytes_items(values: Iterable[bytes], name: str) -> tuple[bytes, ...]:
    # A tuple, because the MAC reads the chunks once per secret and an iterator
    # would be empty after the first.
    items = tuple(values)
    for index, item in enumerate(items):
        if not isinstance(item, bytes):
            raise TypeError(f"{name}[{index}] must be bytes, got {type(item).__name__}")
    return items


def _parse_timestamp(timestamp: bytes) -> int | None:
    if not 0 < len(timestamp) <= _MAX_TIMESTAMP_DIGITS:
        return None
    if not timestamp.isdigit():
        return None
    return int(timestamp)


def _check_timestamp(timestamp: bytes, now: int, tolerance: int) -> int:
    """Return OK, BAD_TIMESTAMP or STALE for a timestamp header value."""
    sent_at = _parse_timestamp(timestamp)
    if sent_at is None:
        return BAD_TIMESTAMP
    if abs(now - sent_at) > tolerance:
        return STALE
    return OK


def _decode_hex(text: bytes, size: int) -> bytes | None:
    """Decode ``size`` bytes from hex digits of either case, or return None."""
    # unhexlify alone would accept any even length, so the length is checked first.
    if len(text) != 2 * size:
        return None
    try:
        return binascii.unhexlify(text)
    except binascii.Error:
        return None


def _is_base64_digest(text: bytes, size: int) -> bool:
    """Check that ``text`` has the shape of the padded base64 of ``size`` bytes."""
    padding = -size % 3
    if len(text) != 4 * ((size + 2) // 3):
        return False
    if not text.endswith(b"=" * padding):
        return False
    return not text[: len(text) - padding].translate(None, _BASE64_ALPHABET)


def _match_secrets(
    secrets: Iterable[bytes],
    algorithm: str,
    chunks: Sequence[bytes],
    candidates: Sequence[bytes],
    encoding: str,
) -> int:
    """Return OK when the MAC of ``chunks`` under a secret equals a candidate.

    Candidates are raw digests for hex, because hex decodes to one digest whatever
    its case, and the base64 text itself for base64. Returns MISMATCH otherwise.
    """
    for index, secret in enumerate(secrets):
        _require_secret(secret, index)
        mac = hmac.new(secret, digestmod=algorithm)
        for chunk in chunks:
            mac.update(chunk)
        expected = mac.digest()
        if encoding == "base64":
            expected = base64.b64encode(expected)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return OK
    return MISMATCH


def verify_standard(
    secrets: Sequence[bytes],
    msg_id: bytes,
    timestamp: bytes,
    body: bytes,
    signatures: bytes,
    now: int,
    tolerance: int,
) -> int:
    """Verify a Standard Webhooks signature header; see ``hookgate.fastpath``.

    Raises TypeError when ``msg_id``, ``timestamp``, ``body``, ``signatures`` or a
    secret is not bytes.
    """
    _require_bytes(msg_id, "msg_id")
    _require_bytes(timestamp, "timestamp")
    _require_bytes(body, "body")
    _require_bytes(signatures, "signatures")

    verdict = _check_timestamp(timestamp, now, tolerance)
    if verdict != OK:
        return verdict

    candidates = [
        token[3:] for token in signatures.split(b" ") if token.startswith(b"v1,")
    ]
    if not candidates:
        return NO_SIGNATURE

    for index, secret in enumerate(secrets):
        _require_secret(secret, index)
        mac = hmac.new(secret, msg_id, hashlib.sha256)
        mac.update(b".")
        mac.update(timestamp)
        mac.update(b".")
        mac.update(body)
        expected = base64.b64encode(mac.digest())
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return OK
    return MISMATCH


def verify_github(secrets: Sequence[bytes], body: bytes, header: bytes) -> int:
    """Verify a GitHub ``X-Hub-Signature-256`` header; see ``hookgate.fastpath``.

    Raises TypeError when ``body``, ``header`` or a secret is not bytes.
    """
    _require_bytes(body, "body")
    _require_bytes(header, "header")

    if not header:
        return NO_SIGNATURE
    if not header.startswith(_GITHUB_PREFIX):
        return MALFORMED_SIGNATURE
    digest = _decode_hex(header[len(_GITHUB_PREFIX) :], _DIGEST_SIZES["sha256"])
    if digest is None:
        return MALFORMED_SIGNATURE

    return _match_secrets(secrets, "sha256", (body,), (digest,), "hex")


def verify_stripe(
    secrets: Sequence[bytes], body: bytes, header: bytes, now: int, tolerance: int
) -> int:
    """Verify a ``Stripe-Signature`` header; see ``hookgate.fastpath``.

    Raises TypeError when ``body``, ``header`` or a secret is not bytes.
    """
    _require_bytes(body, "body")
    _require_bytes(header, "header")

    timestamps = []
    signatures = []
    for field in header.split(b","):
        key, _, value = field.partition(b"=")
        if key == b"t":
            timestamps.append(value)
        elif key == b"v1":
            signatures.append(value)

    # Two t fields would leave the signed timestamp ambiguous, so both are rejected
    # instead of picking one.
    if len(timestamps) != 1:
        return BAD_TIMESTAMP
    timestamp = timestamps[0]
    verdict = _check_timestamp(timestamp, now, tolerance)
    if verdict != OK:
        return verdict

    if not signatures:
        return NO_SIGNATURE
    size = _DIGEST_SIZES["sha256"]
    digests = [
        digest
        for digest in (_decode_hex(signature, size) for signature in signatures)
        if digest is not None
    ]
    if not digests:
        return MALFORMED_SIGNATURE

    return _match_secrets(secrets, "sha256", (timestamp, b".", body), digests, "hex")


def verify_hmac(
    secrets: Sequence[bytes],
    algorithm: str,
    chunks: Sequence[bytes],
    signatures: Sequence[bytes],
    encoding: str,
) -> int:
    """Verify an HMAC over ``chunks`` against candidates; see ``hookgate.fastpath``.

    Raises ValueError for an unknown ``algorithm`` or ``encoding``, and TypeError
    when a chunk, a signature or a secret is not bytes.
    """
    if algorithm not in ("sha256", "sha512", "sha1"):
        raise ValueError(
            f"algorithm must be 'sha256', 'sha512' or 'sha1', got {algorithm!r}"
        )
    if encoding not in ("hex", "base64"):
        raise ValueError(f"encoding must be 'hex' or 'base64', got {encoding!r}")
    chunk_items = _require_bytes_items(chunks, "chunks")
    signature_items = _require_bytes_items(signatures, "signatures")

    if not signature_items:
        return NO_SIGNATURE
    size = _DIGEST_SIZES[algorithm]
    candidates: list[bytes] = []
    for signature in signature_items:
        if encoding == "hex":
            digest = _decode_hex(signature, size)
            if digest is not None:
                candidates.append(digest)
        elif _is_base64_digest(signature, size):
            candidates.append(signature)
    if not candidates:
        return MALFORMED_SIGNATURE

    return _match_secrets(secrets, algorithm, chunk_items, candidates, encoding)
