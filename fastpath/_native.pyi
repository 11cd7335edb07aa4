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
