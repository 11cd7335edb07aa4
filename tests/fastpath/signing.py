"""Signers and shared values for the fastpath tests.

``reference_signature`` calls the standardwebhooks package, so a test that verifies
its output checks interoperability. ``raw_signature`` signs the timestamp bytes as
given, which that package cannot do: it formats the timestamp itself, so it never
signs leading zeros or malformed values.

The GitHub, Stripe and generic signers join the signed content into one buffer with
the standard library's ``hmac``, while both verifiers feed it to the MAC in parts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

OK = 0
BAD_TIMESTAMP = 1
STALE = 2
NO_SIGNATURE = 3
MISMATCH = 4
MALFORMED_SIGNATURE = 5

NOW = 1_700_000_000
TOLERANCE = 300

SECRET = b"\x8f\x1d\xc2\x07hookgate-test-key\x00\xff"
OTHER_SECRET = b"another key, used to sign what must not match"
MSG_ID = b"msg_2bXyK1Qp0mRZ6sJ9dTfWvN3h"
BODY = b'{"type": "invoice.paid", "data": {"amount": 4200}}'


def reference_signature(
    secret: bytes, msg_id: bytes, sent_at: int, body: bytes
) -> bytes:
    """Sign with the standardwebhooks package and return the ``v1,<base64>`` entry."""
    when = datetime.fromtimestamp(sent_at, tz=UTC)
    return Webhook(secret).sign(msg_id.decode(), when, body).encode()


def raw_signature(secret: bytes, msg_id: bytes, timestamp: bytes, body: bytes) -> bytes:
    """Sign ``{msg_id}.{timestamp}.{body}`` byte for byte, for any key and timestamp."""
    content = msg_id + b"." + timestamp + b"." + body
    digest = hmac.new(secret, content, hashlib.sha256).digest()
    return b"v1," + base64.b64encode(digest)


def github_signature(secret: bytes, body: bytes) -> bytes:
    """Sign ``body`` as GitHub does and return the ``sha256=<hex>`` header value."""
    return b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()


def stripe_signature(secret: bytes, timestamp: bytes, body: bytes) -> bytes:
    """Sign ``{timestamp}.{body}`` byte for byte and return the ``v1`` hex value."""
    content = timestamp + b"." + body
    return hmac.new(secret, content, hashlib.sha256).hexdigest().encode()


def stripe_header(secret: bytes, timestamp: bytes, body: bytes) -> bytes:
    """Return a ``Stripe-Signature`` value, ``t=<timestamp>,v1=<hex>``."""
    return b"t=" + timestamp + b",v1=" + stripe_signature(secret, timestamp, body)


def hmac_signature(
    secret: bytes, algorithm: str, chunks: Sequence[bytes], encoding: str
) -> bytes:
    """Sign the joined ``chunks`` and encode the digest as lower-case hex or base64."""
    digest = hmac.new(secret, b"".join(chunks), algorithm).digest()
    if encoding == "hex":
        return digest.hex().encode()
    return base64.b64encode(digest)
