"""Signature verification for the hot path.

Two implementations return identical results: ``_native`` (Cython over OpenSSL's
HMAC, GIL released around the digest) and ``_pure`` (the standard library's ``hmac``).
The compiled one is used when it was built; set ``HOOKGATE_FASTPATH=python`` to force
the pure one. :data:`IMPLEMENTATION` names the one in use.
"""

from __future__ import annotations

import enum
import os
from types import ModuleType


class Verdict(enum.IntEnum):
    """Outcome of one verification. Both implementations return these values."""

    OK = 0
    BAD_TIMESTAMP = 1
    """The timestamp is not a decimal Unix time in seconds."""
    STALE = 2
    """The timestamp is further from this host's clock than the tolerance."""
    NO_SIGNATURE = 3
    """The signature header carries no ``v1,<base64>`` entry."""
    MISMATCH = 4
    """No signature matched any secret."""


def _load() -> tuple[ModuleType, str]:
    # Relative imports, because mypy checks this package from the source tree, where
    # it is named fastpath and hookgate.fastpath does not exist.
    if os.environ.get("HOOKGATE_FASTPATH", "").lower() != "python":
        try:
            from . import _native

            return _native, "native"
        except ImportError:
            pass
    from . import _pure

    return _pure, "python"


_module, IMPLEMENTATION = _load()

verify_standard = _module.verify_standard
"""verify_standard(secrets, msg_id, timestamp, body, signatures, now, tolerance) -> int

Verify a Standard Webhooks signature header. ``secrets`` is a sequence of raw HMAC
keys (bytes, already base64-decoded); ``msg_id``, ``timestamp`` and ``signatures``
are the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` header values
as bytes; ``now`` and ``tolerance`` are in seconds. Returns a :class:`Verdict` value
as a plain ``int``.
"""

__all__ = ["IMPLEMENTATION", "Verdict", "verify_standard"]
