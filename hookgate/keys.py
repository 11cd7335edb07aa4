"""Redis key layout, the one place that names keys.

Every key carries the tenant in a Redis Cluster hash tag (``{tenant}``), so all of
one tenant's keys hash to the same slot and multi-key operations on them stay legal
on a cluster. The names are a public interface: operators and downstream tools read
these streams directly.
"""

PREFIX = "hg"

# Consumer group that hookgate's own consumers use on every ingest stream.
INGEST_GROUP = "hookgate"


def ingest_stream(tenant: str) -> str:
    """Return the stream the gateway writes accepted webhooks to."""
    return f"{PREFIX}:{{{tenant}}}:ingest"


def events_stream(tenant: str) -> str:
    """Return the downstream stream of canonical events for ``tenant``."""
    return f"{PREFIX}:{{{tenant}}}:events"


def dead_letter_stream(tenant: str) -> str:
    """Return the stream of entries that could not be processed."""
    return f"{PREFIX}:{{{tenant}}}:dead"


def seen_key(tenant: str, source: str, provider_event_id: str) -> str:
    """Return the key that remembers a provider event id within the dedup window.

    Its value is the hookgate event id the first delivery got, so a repeated
    delivery is answered with the same id.
    """
    return f"{PREFIX}:{{{tenant}}}:seen:{source}:{provider_event_id}"


def published_key(tenant: str, event_id: str) -> str:
    """Return the key that marks an event as already published downstream.

    A redelivered entry (after a crash or a reclaim) finds it and publishes nothing
    a second time.
    """
    return f"{PREFIX}:{{{tenant}}}:published:{event_id}"


STREAM_KINDS = {
    "ingest": ingest_stream,
    "events": events_stream,
    "dead": dead_letter_stream,
}
