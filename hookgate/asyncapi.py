"""AsyncAPI document of the downstream contract: the events stream and its events.

FastStream builds the document's frame (server, channel, Redis binding, operation)
from :func:`contract_app`, and msgspec supplies the event schemas from
:mod:`hookgate.events`. FastStream (checked on 0.7.8) derives payload schemas
through pydantic, which cannot describe msgspec structs, and it writes no channel
parameters, so :func:`asyncapi_document` fills in both after FastStream is done.

Regenerate the committed copy after changing an event::

    .venv/bin/python -m hookgate.asyncapi docs/asyncapi.json

This module only builds documents; it never connects to Redis.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub
from faststream.specification import AsyncAPI

from hookgate import events
from hookgate.events import (
    DownstreamEvent,
    MailboxChanged,
    SubscriptionLifecycle,
    WebhookReceived,
)
from hookgate.keys import PREFIX

EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    MailboxChanged,
    WebhookReceived,
    SubscriptionLifecycle,
)
UNION_NAME = "DownstreamEvent"
CHANNEL = "events"
# NOTE: Redis Cluster hash tags and AsyncAPI address expressions both use braces,
# and AsyncAPI has no escape for them. The tenant parameter's value therefore
# includes the braces, so that substituting it yields the real key.
ADDRESS = f"{PREFIX}:{{tenant}}:events"
TENANT_PARAMETER = {
    "description": (
        "The tenant inside the braces of its Redis Cluster hash tag: tenant acme"
        " reads the stream hg:{acme}:events, so the value is {acme}."
    ),
    "examples": ["{acme}"],
}
SERVER_URL = "redis://127.0.0.1:6379/0"


def contract_app() -> FastStream:
    """Build the FastStream app that describes hookgate's downstream publishing.

    The app is a description only: its broker is never started.
    """
    broker = RedisBroker(
        SERVER_URL,
        description="The Redis server that REDIS_URL names.",
    )
    broker.publisher(
        stream=StreamSub(ADDRESS),
        title=CHANNEL,
        description=(
            "Each tenant's downstream events. An entry has one field, __data__,"
            " containing the JSON of one event; its type member names the event"
            " and its version. Delivery is at least once, so subscribers use"
            " event_id as the idempotency key."
        ),
    )
    return FastStream(
        broker,
        specification=AsyncAPI(
            title="hookgate downstream events",
            version="1",
            description=(
                "Events that hookgate's consumers publish for downstream teams."
                " A change that would break a subscriber gets a new type tag,"
                " published beside the old one."
            ),
        ),
    )


def _field_descriptions(struct: type[msgspec.Struct]) -> dict[str, str]:
    # msgspec takes a schema's description from the class docstring only, so the
    # docstrings under the fields in hookgate.events are read from its source.
    tree = ast.parse(inspect.getsource(events))
    descriptions: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name == struct.__name__):
            continue
        for statement, following in zip(node.body, node.body[1:], strict=False):
            if not (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                continue
            text = inspect.cleandoc(following.value.value)
            descriptions[statement.target.id] = " ".join(text.split())
    return descriptions


def event_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON schemas of every event struct and of their union, by name.

    References point into ``#/components/schemas``.
    """
    (union,), schemas = msgspec.json.schema_components(
        [DownstreamEvent], ref_template="#/components/schemas/{name}"
    )
    for struct in EVENT_TYPES:
        properties = schemas[struct.__name__]["properties"]
        for name, description in _field_descriptions(struct).items():
            properties[name]["description"] = description
    union_schema = {
        "title": UNION_NAME,
        "description": "Any downstream event, told apart by its type member.",
        **union,
    }
    return {**schemas, UNION_NAME: union_schema}


def _summary(struct: type[msgspec.Struct]) -> str:
    return inspect.cleandoc(struct.__doc__ or "").split("\n", 1)[0]


def asyncapi_document() -> dict[str, Any]:
    """Return the AsyncAPI 3.0 document of the downstream contract as JSON data."""
    document: dict[str, Any] = contract_app().schema.to_specification().to_jsonable()
    components = document["components"]
    channel = document["channels"][CHANNEL]
    operation = document["operations"][CHANNEL]

    # FastStream wrote one message with an empty payload; one message per event
    # type replaces it, so AsyncAPI tools list each event with its schema.
    components["schemas"] = event_schemas()
    components["messages"] = {}
    channel["messages"] = {}
    operation["messages"] = []
    for struct in EVENT_TYPES:
        name = struct.__name__
        components["messages"][name] = {
            "name": struct.__struct_config__.tag,
            "title": name,
            "summary": _summary(struct),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        operation["messages"].append({"$ref": f"#/channels/{CHANNEL}/messages/{name}"})

    channel["parameters"] = {"tenant": TENANT_PARAMETER}
    return document


def render() -> str:
    """Return :func:`asyncapi_document` as the JSON text that is committed."""
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hookgate.asyncapi OUTPUT.json", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
