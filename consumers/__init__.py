"""hookgate's consumers: FastStream apps that process the ingest streams.

The ingest consumer (:func:`create_app`, :func:`run_consumer`) converts each ingest
entry into one downstream event (:mod:`hookgate.events`) and dead-letters the
entries it cannot convert. Downstream subscribers decode the events with
:func:`decode_downstream_event`.
"""

from .app import create_app, run_consumer
from .canonical import (
    ConversionError,
    InvalidBodyError,
    MisroutedEntryError,
    ProviderMismatchError,
    UnknownEventTypeError,
    convert_entry,
    github_event,
    gmail_push_event,
    graph_lifecycle_event,
    graph_notification_event,
    hmac_event,
    mailbox_from_resource,
    standard_webhook_event,
    stripe_event,
)
from .deadletter import ADDED_FIELDS, dead_letter_fields, write_dead_letter
from .downstream import EVENT_FIELD, decode_downstream_event, event_fields

__all__ = [
    "ADDED_FIELDS",
    "EVENT_FIELD",
    "ConversionError",
    "InvalidBodyError",
    "MisroutedEntryError",
    "ProviderMismatchError",
    "UnknownEventTypeError",
    "convert_entry",
    "create_app",
    "dead_letter_fields",
    "decode_downstream_event",
    "event_fields",
    "github_event",
    "gmail_push_event",
    "graph_lifecycle_event",
    "graph_notification_event",
    "hmac_event",
    "mailbox_from_resource",
    "run_consumer",
    "standard_webhook_event",
    "stripe_event",
    "write_dead_letter",
]
