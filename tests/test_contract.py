"""Tests of the downstream contract: the committed AsyncAPI document and its source.

docs/asyncapi.json is generated from hookgate.events by hookgate.asyncapi. The
drift test fails whenever an event changes without the document being regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from faststream._internal._compat import model_parse
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema

from hookgate.asyncapi import (
    ADDRESS,
    CHANNEL,
    EVENT_TYPES,
    UNION_NAME,
    asyncapi_document,
    render,
)
from hookgate.events import DownstreamEvent, MailboxChanged, WebhookReceived

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"
REGENERATE = ".venv/bin/python -m hookgate.asyncapi docs/asyncapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_committed_document_current() -> None:
    """docs/asyncapi.json equals what the current events generate."""
    committed = COMMITTED.read_text(encoding="utf-8")

    assert committed == render(), f"docs/asyncapi.json is stale; run {REGENERATE}"


def test_document_parses_as_asyncapi_3() -> None:
    """FastStream's own AsyncAPI 3.0 model accepts the document."""
    schema = model_parse(ApplicationSchema, render().encode())

    assert schema.asyncapi == "3.0.0"
    assert schema.channels[CHANNEL].address == ADDRESS


class TestChannel:
    def test_address_parameterised_by_tenant(self, document: dict[str, Any]) -> None:
        """The address has one expression, tenant, declared as a parameter."""
        channel = document["channels"][CHANNEL]

        assert channel["address"] == "hg:{tenant}:events"
        assert list(channel["parameters"]) == ["tenant"]

    def test_tenant_example_gives_real_key(self, document: dict[str, Any]) -> None:
        """Substituting the parameter's example yields acme's real stream key."""
        channel = document["channels"][CHANNEL]
        example = channel["parameters"]["tenant"]["examples"][0]

        assert channel["address"].replace("{tenant}", example) == "hg:{acme}:events"

    def test_redis_stream_binding(self, document: dict[str, Any]) -> None:
        """The channel is a Redis stream that hookgate appends to."""
        binding = document["channels"][CHANNEL]["bindings"]["redis"]

        assert binding["method"] == "xadd"
        assert document["operations"][CHANNEL]["action"] == "send"


class TestMessages:
    def test_one_message_per_event(self, document: dict[str, Any]) -> None:
        """The channel and its operation list each event type as a message."""
        names = [struct.__name__ for struct in EVENT_TYPES]
        operation_refs = [
            m["$ref"] for m in document["operations"][CHANNEL]["messages"]
        ]

        assert list(document["channels"][CHANNEL]["messages"]) == names
        assert operation_refs == [
            f"#/channels/{CHANNEL}/messages/{name}" for name in names
        ]

    @pytest.mark.parametrize("struct", EVENT_TYPES, ids=lambda s: s.__name__)
    def test_message_named_by_tag(
        self, document: dict[str, Any], struct: type[msgspec.Struct]
    ) -> None:
        """Each message's name is its event's type tag."""
        message = document["components"]["messages"][struct.__name__]

        assert message["name"] == struct.__struct_config__.tag
        assert message["payload"] == {"$ref": f"#/components/schemas/{struct.__name__}"}

    def test_every_event_type_listed(self) -> None:
        """EVENT_TYPES covers every member of the DownstreamEvent union."""
        assert set(EVENT_TYPES) == set(DownstreamEvent.__args__)


class TestSchemas:
    @pytest.mark.parametrize("struct", EVENT_TYPES, ids=lambda s: s.__name__)
    def test_schema_is_msgspec_schema(
        self, document: dict[str, Any], struct: type[msgspec.Struct]
    ) -> None:
        """Each event's schema has msgspec's properties and required fields."""
        (_,), expected = msgspec.json.schema_components([struct])
        schema = document["components"]["schemas"][struct.__name__]

        assert list(schema["properties"]) == list(
            expected[struct.__name__]["properties"]
        )
        assert schema["required"] == expected[struct.__name__]["required"]

    def test_union_discriminated_by_type(self, document: dict[str, Any]) -> None:
        """The union schema maps every type tag to its struct's schema."""
        union = document["components"]["schemas"][UNION_NAME]

        assert union["discriminator"]["propertyName"] == "type"
        assert union["discriminator"]["mapping"] == {
            struct.__struct_config__.tag: f"#/components/schemas/{struct.__name__}"
            for struct in EVENT_TYPES
        }

    def test_field_docstrings_become_descriptions(
        self, document: dict[str, Any]
    ) -> None:
        """A field's docstring in hookgate.events is its description."""
        properties = document["components"]["schemas"]["MailboxChanged"]["properties"]

        assert properties["received_at"]["description"] == (
            "Arrival time at the gateway, Unix milliseconds."
        )
        assert "description" not in properties["event_id"]

    def test_raw_payload_accepts_any_json(self, document: dict[str, Any]) -> None:
        """WebhookReceived.payload is the delivery's own JSON, of any shape."""
        properties = document["components"]["schemas"]["WebhookReceived"]["properties"]

        assert set(properties["payload"]) == {"description"}

    @pytest.mark.parametrize(
        "event",
        [
            MailboxChanged(
                event_id="evt_1",
                tenant="acme",
                source="acme-gmail",
                provider="gmail-pubsub",
                mailbox="alice@example.com",
                received_at=1,
            ),
            WebhookReceived(
                event_id="evt_2",
                tenant="acme",
                source="acme-mail",
                provider="standard-webhooks",
                provider_event_id="msg_1",
                event_type=None,
                payload=msgspec.Raw(b"[1,2]"),
                received_at=2,
            ),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_encoded_event_has_required_fields(
        self, document: dict[str, Any], event: DownstreamEvent
    ) -> None:
        """An encoded event carries every field its schema requires."""
        schema = document["components"]["schemas"][type(event).__name__]
        encoded = json.loads(msgspec.json.encode(event))

        assert set(schema["required"]) <= set(encoded)
