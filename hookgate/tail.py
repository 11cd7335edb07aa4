"""``hookgate tail``: follow one of a tenant's streams and print JSON lines."""

from __future__ import annotations

import base64
import sys
from typing import Any

import msgspec
import redis.asyncio as redis

from hookgate import keys

_encode = msgspec.json.Encoder().encode

BLOCK_MS = 5000


def _printable(value: bytes) -> Any:
    # Downstream events are JSON: print them as nested objects, not as strings.
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}
    if text[:1] in ("{", "["):
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            pass
    return text


async def tail_stream(
    url: str, tenant: str, kind: str, *, from_start: bool, count: int | None
) -> None:
    """Print entries of ``tenant``'s ``kind`` stream until ``count`` were printed."""
    stream = keys.STREAM_KINDS[kind](tenant)
    # The socket timeout must outlast XREAD's block time, or an idle stream would
    # end the command with a timeout.
    client = redis.Redis.from_url(url, socket_timeout=BLOCK_MS / 1000 + 10)
    last_id = "0" if from_start else "$"
    printed = 0
    try:
        while count is None or printed < count:
            reply: Any = await client.xread(
                {stream: last_id}, block=BLOCK_MS, count=100
            )
            for _, entries in reply:
                for entry_id, fields in entries:
                    last_id = entry_id
                    line = {
                        "stream": stream,
                        "id": entry_id.decode(),
                        "fields": {
                            k.decode(): _printable(v) for k, v in fields.items()
                        },
                    }
                    sys.stdout.buffer.write(_encode(line) + b"\n")
                    sys.stdout.flush()
                    printed += 1
                    if count is not None and printed >= count:
                        return
    finally:
        await client.aclose()
