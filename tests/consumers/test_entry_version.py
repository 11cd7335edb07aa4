"""The entry version field: a missing or unknown one is named in the error."""

from __future__ import annotations

import pytest

from hookgate.entry import EntryError, decode_entry

from .entries import ingest_fields


def fields_of_one_entry() -> dict[bytes, bytes]:
    fields = ingest_fields(
        tenant="acme",
        type="standard-webhooks.event",
        provider="standard-webhooks",
        body=b"{}",
    )
    return {name.encode(): value for name, value in fields.items()}


def test_valid_version_decoded() -> None:
    assert decode_entry(fields_of_one_entry()).tenant == "acme"


def test_missing_version_named() -> None:
    fields = fields_of_one_entry()
    del fields[b"v"]

    with pytest.raises(EntryError) as caught:
        decode_entry(fields)

    assert str(caught.value) == "missing field 'v' (the entry version)"


def test_unknown_version_shown_as_text() -> None:
    fields = fields_of_one_entry()
    fields[b"v"] = b"9"

    with pytest.raises(EntryError) as caught:
        decode_entry(fields)

    assert str(caught.value) == "unsupported entry version '9', expected '1'"
