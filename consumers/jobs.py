"""Sync jobs: what the coalescer hands to a job handler, and how failures retry.

A :class:`SyncJob` names one mailbox for its handler to sync from ``cursor``. The
coalescer builds one job from every ``mailbox.changed.v1`` event of a mailbox that
arrived within its window. This module owns the job struct, the retry policy and
the exception a handler raises to skip retries. It never touches Redis.

Exceptions a handler may raise::

    Exception
    ├── PermanentJobError   dead-lettered at once, never retried
    └── LeaseExpiredError   recorded for a job whose worker stopped mid-run

Any other exception is retried under the job type's :class:`RetryPolicy`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import msgspec

# The one job type the coalescer builds; retry policies are keyed by job type.
MAILBOX_SYNC = "mailbox.sync"


class PermanentJobError(Exception):
    """Raised by a job handler for a failure that retrying cannot fix.

    Examples: the mailbox was deleted, or the tenant's credentials were revoked.
    The job goes to the tenant's dead-letter stream after this one attempt.
    """


class LeaseExpiredError(Exception):
    """The failure recorded for a job whose lease expired while it ran.

    The coalescer records it, and handlers do not raise it. It counts as an
    attempt, so a job that crashes its worker every time is dead-lettered after
    ``max_attempts``.
    """


class SyncJob(msgspec.Struct, kw_only=True, frozen=True):
    """One sync of one mailbox, covering every event coalesced into it."""

    tenant: str
    provider: str
    mailbox: str
    cursor: str | None
    """Highest Gmail historyId among the coalesced events, compared as an integer;
    ``None`` when no event carried one (Microsoft Graph)."""
    fencing_token: int
    """Token of the mailbox lease this run holds; a later run has a larger one."""
    job_id: str
    event_count: int
    """Number of ``mailbox.changed.v1`` events coalesced into this job."""
    job_type: str = MAILBOX_SYNC
    attempt: int = 1
    """1 on the first run, 2 on the first retry, and so on."""
    last_error: str | None = None
    """``TypeName: message`` of the previous attempt's failure; ``None`` at first."""
    first_failed_at: int | None = None
    """Time of the first failed attempt, Unix milliseconds."""
    last_failed_at: int | None = None
    """Time of the previous failed attempt, Unix milliseconds."""


JobHandler = Callable[[SyncJob], Awaitable[None]]


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """Exponential backoff with full jitter for one job type.

    Before retry ``n`` (``n`` = 1 after the first failure) the job waits a random
    time between 0 and ``min(cap_ms, base_ms * factor ** (n - 1))``. A job that
    failed ``max_attempts`` times is dead-lettered.
    """

    base_ms: float = 1_000.0
    factor: float = 2.0
    cap_ms: float = 300_000.0
    max_attempts: int = 5
    jitter: bool = True
    """False waits the full ceiling every time, for callers that need predictable
    spacing; full jitter is what spreads the retries of a burst of failures."""

    def __post_init__(self) -> None:
        if self.base_ms <= 0 or self.cap_ms <= 0:
            raise ValueError(
                f"base_ms ({self.base_ms}) and cap_ms ({self.cap_ms}) must be positive"
            )
        if self.factor < 1:
            raise ValueError(f"factor is {self.factor}; use 1 or more")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts is {self.max_attempts}; use 1 or more")

    def ceiling_ms(self, failed_attempts: int) -> float:
        """Return the upper bound of the delay after ``failed_attempts`` failures."""
        # The exponent is capped so that a large attempt count cannot overflow.
        exponent = min(failed_attempts - 1, 64)
        return float(min(self.cap_ms, self.base_ms * self.factor**exponent))

    def delay_ms(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Return the delay, in milliseconds, before the next attempt."""
        ceiling = self.ceiling_ms(failed_attempts)
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0.0, ceiling)


def describe_error(error: BaseException) -> str:
    """Return ``TypeName: message``, the form in which ``last_error`` is stored."""
    return f"{type(error).__name__}: {error}"
