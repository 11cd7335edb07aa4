"""hookgate's consumers: FastStream apps that process the ingest streams.

The ingest consumer (:func:`create_app`, :func:`run_consumer`) converts each ingest
entry into one downstream event (:mod:`hookgate.events`) and dead-letters the
entries it cannot convert. Downstream subscribers decode the events with
:func:`decode_downstream_event`. The sync worker (:class:`Coalescer`) coalesces
``mailbox.changed.v1`` events into :class:`SyncJob` runs of a caller's handler.
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
from .coalesce import Coalescer, CoalescerSettings, run_sync_worker
from .deadletter import ADDED_FIELDS, dead_letter_fields, write_dead_letter
from .downstream import EVENT_FIELD, decode_downstream_event, event_fields
from .jobs import PermanentJobError, RetryPolicy, SyncJob

__all__ = [
    "ADDED_FIELDS",
    "EVENT_FIELD",
    "Coalescer",
    "CoalescerSettings",
    "ConversionError",
    "InvalidBodyError",
    "MisroutedEntryError",
    "PermanentJobError",
    "ProviderMismatchError",
    "RetryPolicy",
    "SyncJob",
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
    "run_sync_worker",
    "standard_webhook_event",
    "stripe_event",
    "write_dead_letter",
]
