"""Signers and shared values for the fastpath tests.

``reference_signature`` calls the standardwebhooks package, so a test that verifies
its output checks interoperability. ``raw_signature`` signs the timestamp bytes as
given, which that package cannot do: it formats the timestamp itself, so it never
signs leading zeros or malformed values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

OK = 0
BAD_TIMESTAMP = 1
STALE = 2
NO_SIGNATURE = 3
MISMATCH = 4

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
