"""Pre-signed Standard Webhooks requests for ``wrk/signed_requests.lua``.

The signing happens here, before a run, so wrk spends no time on cryptography while
the server verifies every request for real. Each request gets its own webhook-id
and a 1 KB JSON body that contains that id. The file layout is described in the Lua
script, which rebuilds each id and body from the request number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from datetime import UTC, datetime
from pathlib import Path

POOL_MARKER = "hookgate-request-pool 1"
BODY_BYTES = 1024


def new_secret() -> str:
    """Return a random Standard Webhooks secret (``whsec_`` and base64 of 24 bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _body_parts(id_length: int) -> tuple[str, str]:
    sent_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    head = f'{{"type":"loadtest.ping","timestamp":"{sent_at}","data":{{"webhook_id":"'
    tail_start = '","padding":"'
    tail_end = '"}}'
    padding = BODY_BYTES - len(head) - id_length - len(tail_start) - len(tail_end)
    return head, tail_start + "x" * padding + tail_end


def write_pool(path: Path, secret: str, count: int) -> int:
    """Write ``count`` requests signed with ``secret`` to ``path``.

    Every request carries the current Unix time as its webhook-timestamp, so the
    run must start within the server's tolerance (300 s by default). Returns the
    timestamp used.
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    # A random tag per pool keeps ids unique across the runs that share one stream.
    id_format = f"msg_{os.urandom(4).hex()}_%010d"
    head, tail = _body_parts(len(id_format % 0))
    timestamp = int(time.time())
    prefix = f".{timestamp}.".encode()
    head_bytes = head.encode()
    tail_bytes = tail.encode()

    lines = [POOL_MARKER, str(timestamp), id_format, head, tail]
    for number in range(1, count + 1):
        webhook_id = (id_format % number).encode()
        signed = webhook_id + prefix + head_bytes + webhook_id + tail_bytes
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        lines.append("v1," + base64.b64encode(digest).decode())
    path.write_text("\n".join(lines) + "\n")
    return timestamp
