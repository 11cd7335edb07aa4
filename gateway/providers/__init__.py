"""One module per provider kind; each turns a verified request into event drafts.

A provider's ``accept`` function receives the :class:`Incoming` request and the
source, and either returns the events to enqueue, returns a :class:`DirectReply`
(a handshake that enqueues nothing), or raises
:class:`~hookgate.gateway.errors.Rejection`. It must authenticate before it trusts
anything in the body.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import msgspec

from hookgate.config import GatewaySettings, Source
from hookgate.fastpath import Verdict
from hookgate.gateway.body import utf8_json
from hookgate.gateway.errors import Rejection, bad_request

if TYPE_CHECKING:
    from hookgate.gateway.jwks import JwksCache

T = TypeVar("T")


class Headers(Protocol):
    """The part of Granian's RSGI header map that providers use."""

    def get(self, key: str, default: str | None = None) -> str | None: ...

    def get_all(self, key: str) -> list[str]: ...


class Incoming(msgspec.Struct, kw_only=True):
    """One request, as far as a provider may look at it.

    ``body`` is after content decoding; ``charset`` is the Content-Type's charset.
    """

    headers: Headers
    query_string: str
    body: bytes
    charset: str
    received_at_ms: int


def single_header(headers: Headers, name: str) -> str | None:
    """Return a header's value, rejecting a header repeated with different values.

    A repeated signature or id header is ambiguous: the gateway and a later reader
    could each pick a different copy.
    """
    values = headers.get_all(name)
    if not values:
        return None
    first: str = values[0]
    for value in values[1:]:
        if value != first:
            raise bad_request(
                "conflicting_headers", f"{name} is repeated with different values"
            )
    return first


def decode_json(decoder: Callable[[bytes], T], incoming: Incoming, what: str) -> T:
    """Decode the body with ``decoder``, mapping every failure to a 400.

    ``what`` names the expected document in the error detail.
    """
    document = utf8_json(incoming.body, incoming.charset)
    try:
        return decoder(document)
    except msgspec.ValidationError as exc:
        raise bad_request("invalid_payload", f"body is not {what}: {exc}") from None
    except msgspec.DecodeError:
        raise bad_request("invalid_json", "body is not valid JSON") from None
    except RecursionError:
        # msgspec gives up on deep nesting with RecursionError, not DecodeError.
        raise bad_request("invalid_json", "body is nested too deeply") from None


class EventDraft(msgspec.Struct, kw_only=True):
    """One event to enqueue; the gateway adds id, tenant, source and time."""

    type: str
    provider_event_id: str
    headers: dict[str, str]
    """Request headers kept in the entry, names in lower case."""
    body: bytes
    dedup: bool = True
    """Whether a repeat of ``provider_event_id`` within the window is one event."""


class DirectReply(msgspec.Struct, kw_only=True):
    """A response sent as is, with nothing enqueued."""

    status: int
    content_type: str
    body: bytes


Outcome = list[EventDraft] | DirectReply
# A provider's check of one request; providers that fetch keys return a coroutine.
Accept = Callable[[Incoming, Source, GatewaySettings], Outcome | Awaitable[Outcome]]
# Returns the JWKS cache for a URL, shared by every source of one worker.
JwksFor = Callable[[str], "JwksCache"]

# Headers worth keeping with every entry: they let a consumer trace the request.
TRACE_HEADERS = ("content-type", "traceparent", "tracestate", "user-agent")


# Largest provider event id kept; it becomes part of a Redis key name.
MAX_EVENT_ID_LENGTH = 256
# Room for dozens of signatures during a rotation; a longer header is not a real
# sender's, and it would be stored with the entry.
MAX_SIGNATURE_HEADER = 4096
# Digits of a Unix time in seconds, as the fastpath verifiers bound them.
MAX_TIMESTAMP_DIGITS = 12


def missing_headers(headers: Headers, names: tuple[str, ...]) -> Rejection:
    """Return the 400 for a request that lacks some of the signature headers."""
    missing = [name for name in names if headers.get(name) is None]
    return bad_request(
        "missing_signature_headers", f"missing headers: {', '.join(missing)}"
    )


def event_id_header(headers: Headers, name: str) -> str:
    """Return the provider event id carried by header ``name``.

    Raises a 400 Rejection when the header is missing, repeated with different
    values, empty, or longer than :data:`MAX_EVENT_ID_LENGTH`.
    """
    value = single_header(headers, name)
    if value is None:
        raise bad_request("missing_event_id", f"missing header: {name}")
    if not value or len(value) > MAX_EVENT_ID_LENGTH:
        raise bad_request(
            "invalid_event_id", f"{name} must be 1 to {MAX_EVENT_ID_LENGTH} characters"
        )
    return value


def check_signature_length(value: str, name: str) -> None:
    """Reject a signature header longer than :data:`MAX_SIGNATURE_HEADER`."""
    if len(value) > MAX_SIGNATURE_HEADER:
        raise bad_request(
            "invalid_signature_header",
            f"{name} is longer than {MAX_SIGNATURE_HEADER} characters",
        )


def check_timestamp(value: str, now: int, tolerance: int) -> Verdict:
    """Check a Unix time in seconds against ``now`` as the fastpath verifiers do.

    Returns BAD_TIMESTAMP unless ``value`` is 1 to 12 ASCII digits, STALE when it is
    more than ``tolerance`` seconds from ``now`` in either direction, else OK.
    """
    if not 0 < len(value) <= MAX_TIMESTAMP_DIGITS:
        return Verdict.BAD_TIMESTAMP
    if not (value.isascii() and value.isdigit()):
        return Verdict.BAD_TIMESTAMP
    if abs(now - int(value)) > tolerance:
        return Verdict.STALE
    return Verdict.OK


def matches_any(offered: bytes, secrets: tuple[bytes, ...]) -> bool:
    """Return whether ``offered`` equals one of ``secrets``, in constant time.

    Every secret is compared, so the timing does not reveal which one matched.
    """
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(offered, secret)
    return matched


def kept_headers(
    headers: Headers, names: tuple[str, ...], known: dict[str, str] | None = None
) -> dict[str, str]:
    """Return the named headers that are present, for the entry's headers field.

    ``known`` contains headers the caller has already read. They come first, and
    each header read here costs a call into the server.
    """
    kept = {} if known is None else known
    for name in names:
        value = headers.get(name)
        if value is not None:
            kept[name] = value
    return kept


def build_accept(source: Source, jwks_for: JwksFor) -> Accept:
    """Return the function that checks requests for ``source``."""
    from hookgate.gateway.providers import (
        generic_hmac,
        github,
        gmail,
        graph,
        standard,
        stripe,
    )

    if source.provider == "standard-webhooks":
        return standard.accept
    if source.provider == "github":
        return github.accept
    if source.provider == "stripe":
        return stripe.accept
    if source.provider == "hmac":
        assert source.hmac is not None
        return functools.partial(
            generic_hmac.accept, scheme=generic_hmac.Scheme.build(source.hmac)
        )
    if source.provider == "graph":
        jwks = jwks_for(source.graph.jwks_url) if source.graph is not None else None
        return functools.partial(graph.accept, jwks=jwks)
    if source.oidc is not None:
        return functools.partial(gmail.accept_oidc, jwks=jwks_for(source.oidc.jwks_url))
    return gmail.accept
