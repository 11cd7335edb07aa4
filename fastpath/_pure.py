"""Pure-Python twin of ``_native``: the same contract, on the standard library.

Used when the extension is not built, and as the reference the compiled version is
tested against. Keep the two in step: every branch here has its twin there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

OK = 0
BAD_TIMESTAMP = 1
STALE = 2
NO_SIGNATURE = 3
MISMATCH = 4

# A timestamp longer than this cannot be a plausible Unix time in seconds; the bound
# also keeps int() away from huge digit strings.
_MAX_TIMESTAMP_DIGITS = 12


def _require_bytes(value: object, name: str) -> None:
    # _native hands these buffers to OpenSSL without the GIL, which is safe only for
    # immutable bytes, so it rejects bytearray and memoryview. Rejecting them here too
    # keeps a caller's type error from surfacing only where the extension is built.
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")


def _parse_timestamp(timestamp: bytes) -> int | None:
    if not 0 < len(timestamp) <= _MAX_TIMESTAMP_DIGITS:
        return None
    if not timestamp.isdigit():
        return None
    return int(timestamp)


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

    sent_at = _parse_timestamp(timestamp)
    if sent_at is None:
        return BAD_TIMESTAMP
    if abs(now - sent_at) > tolerance:
        return STALE

    candidates = [
        token[3:] for token in signatures.split(b" ") if token.startswith(b"v1,")
    ]
    if not candidates:
        return NO_SIGNATURE

    for index, secret in enumerate(secrets):
        if not isinstance(secret, bytes):
            raise TypeError(
                f"secrets[{index}] must be bytes, got {type(secret).__name__}"
            )
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
