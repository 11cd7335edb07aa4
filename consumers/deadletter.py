"""Dead-letter records: ingest entries that the consumer cannot convert.

A dead-letter entry keeps every field of the ingest entry byte for byte, so it can
be inspected and replayed, and adds:

==============  ============================================================
``error``       why the entry was rejected, in plain words
``error_type``  class name of the error, e.g. ``EntryError``, ``InvalidBodyError``
``stream``      the ingest stream the entry was read from
``entry_id``    the entry's id in that stream
``failed_at``   time of rejection, Unix milliseconds
``trace_id``    hex trace id of the entry's trace, empty when it has none
==============  ============================================================

An added field replaces an ingest field of the same name, because a corrupt
entry may carry any field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from hookgate.keys import dead_letter_stream

# Field names that dead_letter_fields adds to an ingest entry's fields.
ADDED_FIELDS = ("error", "error_type", "stream", "entry_id", "failed_at", "trace_id")


def dead_letter_fields(
    fields: Mapping[bytes, bytes],
    *,
    error: Exception,
    stream: str,
    entry_id: bytes,
    failed_at: int,
    trace_id: str = "",
) -> dict[bytes, bytes]:
    """Return the fields of the dead-letter entry for an ingest entry.

    ``failed_at`` is in Unix milliseconds.
    """
    record = dict(fields)
    record[b"error"] = str(error).encode()
    record[b"error_type"] = type(error).__name__.encode()
    record[b"stream"] = stream.encode()
    record[b"entry_id"] = entry_id
    record[b"failed_at"] = str(failed_at).encode()
    record[b"trace_id"] = trace_id.encode()
    return record


async def write_dead_letter(
    redis: Redis,
    tenant: str,
    fields: Mapping[bytes, bytes],
    *,
    error: Exception,
    stream: str,
    entry_id: bytes,
    failed_at: int,
    trace_id: str = "",
) -> None:
    """Append a dead-letter entry to ``tenant``'s dead-letter stream.

    Awaits one XADD. Raises :class:`redis.exceptions.RedisError` when it fails.
    """
    # redis-py types the field mapping with invariant key and value types, which a
    # dict[bytes, bytes] does not match although it accepts one.
    record: dict[Any, Any] = dead_letter_fields(
        fields,
        error=error,
        stream=stream,
        entry_id=entry_id,
        failed_at=failed_at,
        trace_id=trace_id,
    )
    await redis.xadd(dead_letter_stream(tenant), record)
