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
    delivery gets the same id in its response.
    """
    return seen_prefix(tenant, source) + provider_event_id


def seen_prefix(tenant: str, source: str) -> str:
    """Return what every seen key of one source starts with."""
    return f"{PREFIX}:{{{tenant}}}:seen:{source}:"


def published_key(tenant: str, event_id: str) -> str:
    """Return the key that marks an event as already published downstream.

    A redelivered entry (after a crash or a reclaim) finds it and publishes nothing
    a second time.
    """
    return f"{PREFIX}:{{{tenant}}}:published:{event_id}"


# Consumer group in which the sync coalescer reads each tenant's events stream.
SYNC_GROUP = "hookgate-sync"


def sync_mailbox(provider: str, mailbox: str) -> str:
    """Return the member that names one mailbox in the coalescer's sorted sets."""
    return f"{provider}:{mailbox}"


def sync_pending_key(tenant: str, member: str) -> str:
    """Return the hash of a mailbox's coalescing state.

    Fields: ``provider``, ``mailbox`` and ``cursor``, the highest cursor ever seen,
    which is kept between jobs and absent when no event carried one. While events
    wait for a job, also ``first_seen`` (Unix milliseconds) and ``count``.
    """
    return f"{PREFIX}:{{{tenant}}}:sync:pending:{member}"


def sync_due_key(tenant: str) -> str:
    """Return the sorted set of mailboxes with pending events, scored by due time.

    A mailbox is due when its coalescing window, counted from its first pending
    event, has passed; scores are Unix milliseconds.
    """
    return f"{PREFIX}:{{{tenant}}}:sync:due"


def sync_retry_key(tenant: str) -> str:
    """Return the sorted set of failed sync jobs, as JSON, scored by retry time."""
    return f"{PREFIX}:{{{tenant}}}:sync:retry"


def sync_running_key(tenant: str) -> str:
    """Return the hash of running sync jobs: due-set member to the job as JSON.

    An entry whose mailbox has no lease belongs to a job whose worker stopped, and
    the coalescer files it for a retry.
    """
    return f"{PREFIX}:{{{tenant}}}:sync:running"


def sync_lease_key(tenant: str, member: str) -> str:
    """Return the key whose value is the fencing token of a mailbox's running job."""
    return f"{PREFIX}:{{{tenant}}}:sync:lease:{member}"


def sync_fence_key(tenant: str, member: str) -> str:
    """Return the counter that issues a mailbox's fencing tokens (INCR)."""
    return f"{PREFIX}:{{{tenant}}}:sync:fence:{member}"


def sync_cursor_key(tenant: str, member: str) -> str:
    """Return the key of the cursor that a mailbox's last committed sync reached."""
    return f"{PREFIX}:{{{tenant}}}:sync:cursor:{member}"


STREAM_KINDS = {
    "ingest": ingest_stream,
    "events": events_stream,
    "dead": dead_letter_stream,
}
