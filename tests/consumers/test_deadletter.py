"""Unit tests of the dead-letter record built from an ingest entry."""

from __future__ import annotations

from hookgate.consumers import ADDED_FIELDS, InvalidBodyError, dead_letter_fields

FIELDS = {b"v": b"1", b"type": b"graph.notification", b"body": b"\xff{"}


def build(fields: dict[bytes, bytes] = FIELDS) -> dict[bytes, bytes]:
    return dead_letter_fields(
        fields,
        error=InvalidBodyError("invalid graph.notification body: truncated"),
        stream="hg:{acme}:ingest",
        entry_id=b"1733300000123-0",
        failed_at=1_733_300_000_456,
    )


class TestDeadLetterFields:
    def test_original_fields_kept(self) -> None:
        """Every ingest field is copied byte for byte."""
        record = build()

        for name, value in FIELDS.items():
            assert record[name] == value

    def test_added_fields(self) -> None:
        """Exactly the documented fields are added."""
        record = build()

        assert set(record) - set(FIELDS) == {name.encode() for name in ADDED_FIELDS}

    def test_added_values(self) -> None:
        """The added fields carry the reason, error class, origin and time."""
        record = build()

        assert record[b"error"] == b"invalid graph.notification body: truncated"
        assert record[b"error_type"] == b"InvalidBodyError"
        assert record[b"stream"] == b"hg:{acme}:ingest"
        assert record[b"entry_id"] == b"1733300000123-0"
        assert record[b"failed_at"] == b"1733300000456"

    def test_added_field_replaces_same_name(self) -> None:
        """An ingest field named like an added field is replaced."""
        record = build({b"error": b"forged", b"v": b"1"})

        assert record[b"error"] == b"invalid graph.notification body: truncated"
        assert record[b"v"] == b"1"

    def test_input_not_modified(self) -> None:
        """The caller's field mapping is left unchanged."""
        fields = dict(FIELDS)

        build(fields)

        assert fields == FIELDS
