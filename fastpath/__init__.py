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
    """The timestamp is missing, repeated, or not a decimal Unix time in seconds."""
    STALE = 2
    """The timestamp is further from this host's clock than the tolerance."""
    NO_SIGNATURE = 3
    """The request carries no signature of the scheme checked.

    That is no ``v1,`` entry (Standard Webhooks), no ``v1=`` field (Stripe), an empty
    header (GitHub), or an empty sequence (:func:`verify_hmac`).
    """
    MISMATCH = 4
    """No signature matched any secret."""
    MALFORMED_SIGNATURE = 5
    """No signature has the shape of the digest: wrong length, prefix or alphabet.

    ``verify_standard`` never returns it, because it compares base64 text as sent.
    """


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

verify_github = _module.verify_github
"""verify_github(secrets, body, header) -> int

Verify a GitHub ``X-Hub-Signature-256`` header: ``sha256=`` followed by the
HMAC-SHA256 of the raw body as 64 hex digits of either case. ``secrets`` is a
sequence of HMAC keys as bytes. ``body`` and ``header`` are bytes, and the header
must have no surrounding whitespace. Returns a :class:`Verdict` value as a plain
``int``: NO_SIGNATURE for an empty header, MALFORMED_SIGNATURE for another prefix or
a digest that is not 64 hex digits, then OK or MISMATCH. Raises TypeError when
``body``, ``header`` or a secret is not bytes.
"""

verify_stripe = _module.verify_stripe
"""verify_stripe(secrets, body, header, now, tolerance) -> int

Verify a ``Stripe-Signature`` header, ``t=<unix>,v1=<hex>[,v1=<hex>...]``, whose
signed content is ``{t}.{body}`` with t's bytes as sent. The header splits at commas
into fields and each field at its first ``=``, with no whitespace allowed. Fields
other than ``t`` and ``v1`` are ignored. ``secrets`` is a sequence of HMAC keys as
bytes, each the whole ``whsec_...`` secret. ``now`` and ``tolerance`` are in
seconds, and t must lie within the tolerance on either side of ``now``.

Returns a :class:`Verdict` value as a plain ``int``, checked in this order:
BAD_TIMESTAMP when t is missing, repeated or not 1 to 12 ASCII digits, then STALE,
then NO_SIGNATURE without a ``v1`` field, then MALFORMED_SIGNATURE when no ``v1``
value is 64 hex digits of either case, then OK or MISMATCH. Raises TypeError when
``body``, ``header`` or a secret is not bytes.
"""

verify_hmac = _module.verify_hmac
"""verify_hmac(secrets, algorithm, chunks, signatures, encoding) -> int

Verify an HMAC over the concatenation of ``chunks``, a sequence of bytes that the
MAC reads in order without joining them. ``algorithm`` is ``"sha256"``,
``"sha512"`` or ``"sha1"``. ``signatures`` is a sequence of candidate signatures as
bytes, with any prefix already removed. ``encoding`` is ``"hex"``, of either case,
or ``"base64"``, the standard alphabet with ``=`` padding, compared as text. It
checks no timestamp, so a caller whose signed content has one must check its age.

Returns a :class:`Verdict` value as a plain ``int``: NO_SIGNATURE for an empty
``signatures``, MALFORMED_SIGNATURE when no candidate has the encoded digest's
length and alphabet, then OK or MISMATCH. Raises ValueError for another algorithm
or encoding, and TypeError when a chunk, a signature or a secret is not bytes.
"""

__all__ = [
    "IMPLEMENTATION",
    "Verdict",
    "verify_github",
    "verify_hmac",
    "verify_standard",
    "verify_stripe",
]
