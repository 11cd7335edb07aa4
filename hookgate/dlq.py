"""Dead-letter streams: list, show, replay and purge (``hookgate dlq``).

A dead-letter entry is the ingest entry it came from plus the fields named in
:data:`ADDED_FIELDS`. Replaying writes the ingest fields back to the tenant's
ingest stream, event id included, so the consumer's publish-once key still
prevents a second downstream event for an entry that was published before.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from hookgate.keys import dead_letter_stream, ingest_stream

ADDED_FIELDS = (
    b"error",
    b"error_type",
    b"stream",
    b"entry_id",
    b"failed_at",
    b"trace_id",
)

# Entries read from Redis per XRANGE call while filtering.
PAGE = 500


@dataclass(frozen=True)
class Filter:
    """Selection of the dead-letter entries a command acts on.

    A field left ``None`` (or empty ``ids``) matches every entry."""

    source: str | None = None
    error_type: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    ids: Sequence[str] = ()

    def matches(self, entry_id: str, fields: dict[bytes, bytes]) -> bool:
        if self.ids and entry_id not in self.ids:
            return False
        if self.source is not None and fields.get(b"source") != self.source.encode():
            return False
        if self.error_type is not None and (
            fields.get(b"error_type") != self.error_type.encode()
        ):
            return False
        moment = failed_at(entry_id, fields)
        if self.since_ms is not None and moment < self.since_ms:
            return False
        return not (self.until_ms is not None and moment > self.until_ms)


def failed_at(entry_id: str, fields: dict[bytes, bytes]) -> int:
    """Return when an entry was dead-lettered, in Unix milliseconds."""
    # The entry id's time part serves when the field is missing or invalid.
    raw = fields.get(b"failed_at", b"")
    if raw.isdigit():
        return int(raw)
    return int(entry_id.split("-", 1)[0])


def select(
    client: redis.Redis, tenant: str, chosen: Filter
) -> Iterator[tuple[str, dict[bytes, bytes]]]:
    """Yield the dead-letter entries of ``tenant`` that ``chosen`` matches, oldest
    first."""
    stream = dead_letter_stream(tenant)
    start = "-"
    while True:
        page: Any = client.xrange(stream, min=start, max="+", count=PAGE)
        for raw_id, fields in page:
            entry_id = raw_id.decode()
            if chosen.matches(entry_id, fields):
                yield entry_id, fields
        if len(page) < PAGE:
            return
        start = "(" + page[-1][0].decode()


def is_ingest_entry(fields: dict[bytes, bytes]) -> bool:
    """Return whether a dead letter came from the ingest stream and can be replayed.

    Sync jobs that failed are dead-lettered to the same stream with their own
    fields; writing those to the ingest stream would only dead-letter them again.
    """
    return b"v" in fields and b"event_id" in fields and b"body" in fields


def ingest_fields(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Return the original ingest entry's fields of a dead-letter entry."""
    return {name: value for name, value in fields.items() if name not in ADDED_FIELDS}


def replay(
    client: redis.Redis, tenant: str, entry_id: str, fields: dict[bytes, bytes]
) -> None:
    """Write one dead-letter entry back to the ingest stream and remove it.

    Both steps run in one MULTI, so an entry is never both replayed and kept, nor
    removed without being replayed. The two keys share a hash slot.
    """
    with client.pipeline(transaction=True) as pipe:
        pipe.xadd(ingest_stream(tenant), ingest_fields(fields))  # type: ignore[arg-type]
        pipe.xdel(dead_letter_stream(tenant), entry_id)
        pipe.execute()


def purge(client: redis.Redis, tenant: str, entry_ids: Sequence[str]) -> int:
    """Delete dead-letter entries by id; returns how many were deleted."""
    if not entry_ids:
        return 0
    deleted: int = client.xdel(dead_letter_stream(tenant), *entry_ids)
    return deleted


def printable(fields: dict[bytes, bytes]) -> dict[str, str | dict[str, str]]:
    """Return the fields as text, with values that are not UTF-8 as base64."""
    shown: dict[str, str | dict[str, str]] = {}
    for name, value in fields.items():
        try:
            shown[name.decode()] = value.decode()
        except UnicodeDecodeError:
            shown[name.decode(errors="replace")] = {
                "base64": base64.b64encode(value).decode()
            }
    return shown
