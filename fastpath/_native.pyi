"""Type stub for the compiled verifier built from ``_native.pyx``."""

from collections.abc import Sequence

def verify_standard(
    secrets: Sequence[bytes],
    msg_id: bytes,
    timestamp: bytes,
    body: bytes,
    signatures: bytes,
    now: int,
    tolerance: int,
) -> int: ...
def verify_github(secrets: Sequence[bytes], body: bytes, header: bytes) -> int: ...
def verify_stripe(
    secrets: Sequence[bytes],
    body: bytes,
    header: bytes,
    now: int,
    tolerance: int,
) -> int: ...
def verify_hmac(
    secrets: Sequence[bytes],
    algorithm: str,
    chunks: Sequence[bytes],
    signatures: Sequence[bytes],
    encoding: str,
) -> int: ...
