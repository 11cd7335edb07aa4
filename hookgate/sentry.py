"""Error reporting to Sentry, on only when ``SENTRY_DSN`` is set.

:func:`init_sentry` starts the SDK in a gateway worker, a consumer or a sync
worker. Every event passes a :class:`Scrubber` before it leaves the process, which
removes what could carry a credential or webhook content:

- request headers that carry credentials (``authorization``, ``cookie``, the
  signature headers of every provider, each ``[sources.hmac]`` header) and any
  header whose name contains ``auth``, ``token``, ``secret``, ``signature`` or
  ``key``;
- query strings, which carry a Gmail source's push token, also in URLs;
- request bodies, cookies and environment, and the local variables of stack frames;
- any string that contains a configured secret, its base64 or its hex form.

This module must not be imported on the request path while Sentry is off: it
imports ``sentry_sdk`` only when a DSN is set.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import structlog

from hookgate.config import Config
from hookgate.logs import current_trace_ids

log = structlog.get_logger("hookgate.sentry")

FILTERED = "[Filtered]"

# Headers that carry a credential or a signature in at least one provider's scheme.
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "webhook-signature",
        "x-hub-signature",
        "x-hub-signature-256",
        "stripe-signature",
    }
)
# Parts of header names that suggest a credential, for headers no scheme above names.
CREDENTIAL_WORDS = ("auth", "token", "secret", "signature", "key", "cookie")
# A secret shorter than this is not searched for in strings, because it would
# match ordinary text.
MIN_SECRET_LENGTH = 8
# Context variables that the consumer binds and Sentry gets as tags.
TAGGED_CONTEXT = ("tenant", "source_id", "provider", "event_id")
# Fields of every log line that the Sentry event already carries in its own form.
LOG_METADATA = frozenset({"event", "logger", "level", "timestamp"})
# Ingest entry fields that a dead-letter event gets as tags, with the tag names.
DEAD_LETTER_TAGS = (
    (b"source", "source_id"),
    (b"provider", "provider"),
    (b"event_id", "event_id"),
)


class Scrubber:
    """A ``before_send`` hook that removes credentials and bodies from events.

    ``header_names`` are added to :data:`CREDENTIAL_HEADERS`, in any case. The raw
    ``secrets`` are searched for in every string of the event, as they are and in
    base64 and hex.
    """

    def __init__(self, header_names: Iterable[str], secrets: Iterable[bytes]) -> None:
        self.header_names = CREDENTIAL_HEADERS | {name.lower() for name in header_names}
        self.needles = sorted(_secret_forms(secrets), key=len, reverse=True)

    def __call__(self, event: dict[str, Any], hint: Any) -> dict[str, Any]:
        record = hint.get("log_record") if isinstance(hint, dict) else None
        message = getattr(record, "msg", None)
        if isinstance(message, dict):
            _use_log_fields(event, message)
        request = event.get("request")
        if isinstance(request, dict):
            self._scrub_request(request)
        for frame in _frames(event):
            frame.pop("vars", None)
        for breadcrumb in _breadcrumbs(event):
            data = breadcrumb.get("data")
            if isinstance(data, dict):
                data.pop("http.query", None)
                if isinstance(data.get("url"), str):
                    data["url"] = _without_query(data["url"])
        _add_tags(event)
        if not self.needles:
            return event
        scrubbed: dict[str, Any] = self._scrub_strings(event)
        return scrubbed

    def _scrub_request(self, request: dict[str, Any]) -> None:
        for key in ("data", "cookies", "env"):
            request.pop(key, None)
        if "query_string" in request:
            request["query_string"] = FILTERED
        if isinstance(request.get("url"), str):
            request["url"] = _without_query(request["url"])
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: FILTERED if self._is_credential(name) else value
                for name, value in headers.items()
            }

    def _is_credential(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in self.header_names:
            return True
        return any(word in lowered for word in CREDENTIAL_WORDS)

    def _scrub_strings(self, value: Any) -> Any:
        if isinstance(value, str):
            if any(needle in value for needle in self.needles):
                return FILTERED
            return value
        if isinstance(value, dict):
            return {key: self._scrub_strings(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub_strings(item) for item in value]
        return value


def _secret_forms(secrets: Iterable[bytes]) -> set[str]:
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        forms.add(secret.hex())
        encoded = base64.b64encode(secret).decode()
        forms.add(encoded)
        # Padding is often dropped, and a whsec_ secret is its base64 after a prefix.
        forms.add(encoded.rstrip("="))
        forms.add(base64.urlsafe_b64encode(secret).decode().rstrip("="))
        with contextlib.suppress(UnicodeDecodeError):
            forms.add(secret.decode())
    return forms


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _frames(event: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    exceptions = event.get("exception", {}).get("values") or []
    threads = event.get("threads", {}).get("values") or []
    for holder in [*exceptions, *threads]:
        stacktrace = holder.get("stacktrace") or {}
        yield from stacktrace.get("frames") or []


def _breadcrumbs(event: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):
        breadcrumbs = breadcrumbs.get("values")
    yield from breadcrumbs or []


def _use_log_fields(event: dict[str, Any], fields: Mapping[str, Any]) -> None:
    # structlog hands the logging module its event dict as the record's message,
    # which Sentry would show as the dict's repr. The event name becomes the
    # message, the ids become tags and the other fields go to extra.
    event["logentry"] = {"message": str(fields.get("event", "")), "params": []}
    tags = event.setdefault("tags", {})
    extra = event.setdefault("extra", {})
    for name, value in fields.items():
        if name in TAGGED_CONTEXT:
            tags.setdefault(name, str(value))
        elif name not in LOG_METADATA:
            extra[name] = str(value)


def name_log_breadcrumb(breadcrumb: dict[str, Any], hint: Any) -> dict[str, Any]:
    """Name a breadcrumb made from a structlog line by its event, not the dict repr.

    The ``before_breadcrumb`` hook of :func:`init_sentry`.
    """
    record = hint.get("log_record") if isinstance(hint, dict) else None
    fields = getattr(record, "msg", None)
    if isinstance(fields, dict):
        breadcrumb["message"] = str(fields.get("event", ""))
        breadcrumb["data"] = {
            name: str(value)
            for name, value in fields.items()
            if name not in LOG_METADATA
        }
    return breadcrumb


def _add_tags(event: dict[str, Any]) -> None:
    # before_send runs in the context that captured the event, so the ids the
    # consumer bound for the entry it is handling are still visible here.
    tags = event.setdefault("tags", {})
    bound = structlog.contextvars.get_contextvars()
    for name in TAGGED_CONTEXT:
        if name in bound and name not in tags:
            tags[name] = str(bound[name])
    ids = current_trace_ids()
    if ids is not None and "trace_id" not in tags:
        tags["trace_id"] = ids[0]


def scrubber_for(config: Config) -> Scrubber:
    """Build the :class:`Scrubber` for the sources and secrets in ``config``."""
    headers = [
        source.hmac.header for source in config.sources if source.hmac is not None
    ]
    secrets = {
        secret
        for source in config.sources
        for secret in [*source.secrets, *_scheduled_secrets(source.secret_schedule)]
    }
    return Scrubber(headers, secrets)


def _scheduled_secrets(schedule: Iterable[tuple[float, Iterable[bytes]]]) -> set[bytes]:
    return {secret for _, active in schedule for secret in active}


def init_sentry(
    config: Config, component: str, *, dsn: str | None = None, **options: Any
) -> bool:
    """Start the Sentry SDK if ``dsn`` or ``SENTRY_DSN`` is set; return whether it did.

    ``component`` (``gateway``, ``consumer`` or ``sync-worker``) becomes the
    ``component`` tag.
    ``options`` go to ``sentry_sdk.init``, and its ``integrations`` join the logging
    integration; tests pass ``transport``. Sentry reads
    ``SENTRY_ENVIRONMENT`` and ``SENTRY_RELEASE`` itself.
    """
    dsn = dsn or os.environ.get("SENTRY_DSN")
    if not dsn:
        return False

    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    scrub = scrubber_for(config)
    sentry_sdk.init(
        dsn=dsn,
        # The SDK types events as a TypedDict; the scrubber walks them as dicts.
        before_send=cast(Any, scrub),
        before_breadcrumb=cast(Any, name_log_breadcrumb),
        include_local_variables=False,
        max_request_body_size="never",
        # ERROR records become events, because FastStream logs a handler's
        # exception that way. INFO and WARNING records become breadcrumbs only.
        integrations=[
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            *options.pop("integrations", []),
        ],
        **options,
    )
    sentry_sdk.set_tag("component", component)
    log.info("sentry.started", component=component)
    return True


def report_dead_letter(
    *, tenant: str, fields: Mapping[bytes, bytes], error: Exception
) -> None:
    """Send one Sentry event for a dead-lettered entry; no-op while Sentry is off.

    ``fields`` are the entry's stream fields. Its ``source``, ``provider`` and
    ``event_id`` become tags, because they are read from the fields even when the
    entry as a whole does not decode. The message carries the error's type and
    text, never the body or headers.
    """
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None or not sentry_sdk.is_initialized():
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("tenant", tenant)
        scope.set_tag("error_type", type(error).__name__)
        for field, tag in DEAD_LETTER_TAGS:
            value = fields.get(field)
            if value is not None:
                scope.set_tag(tag, value.decode(errors="replace")[:200])
        scope.fingerprint = ["entry.dead_lettered", tenant, type(error).__name__]
        sentry_sdk.capture_message(
            f"entry dead-lettered: {type(error).__name__}: {error}", level="warning"
        )


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Send an exception escaping the block to Sentry, then re-raise it.

    Use it inside the block that binds the entry's ids, so the event gets them as
    tags. FastStream logs the same exception at ERROR afterwards, and Sentry's
    default dedupe integration drops that second event, because it carries the same
    exception object. A no-op while Sentry is off.
    """
    try:
        yield
    except Exception as exc:
        sentry_sdk = sys.modules.get("sentry_sdk")
        if sentry_sdk is not None and sentry_sdk.is_initialized():
            sentry_sdk.capture_exception(exc)
        raise


def capture_unhandled(app: Any) -> None:
    """Wrap ``app.__rsgi__`` so an exception that escapes it is sent to Sentry.

    The event is tagged with the route's tenant, source and provider. The exception
    is then re-raised, so Granian handles it as it did without Sentry.
    """
    import sentry_sdk

    handle = app.__rsgi__
    routes = app.routes

    async def handle_reporting_errors(scope: Any, protocol: Any) -> None:
        try:
            await handle(scope, protocol)
        except Exception as exc:
            with sentry_sdk.new_scope() as sentry_scope:
                path: str = getattr(scope, "path", "")
                route = routes.get(path.rpartition("/")[2])
                if path.startswith("/hooks/") and route is not None:
                    sentry_scope.set_tag("tenant", route.source.tenant)
                    sentry_scope.set_tag("source_id", route.source.id)
                    sentry_scope.set_tag("provider", route.source.provider)
                sentry_scope.set_tag("route", _route_template(path))
                sentry_sdk.capture_exception(exc)
            raise

    app.__rsgi__ = handle_reporting_errors


def _route_template(path: str) -> str:
    # The path itself may name a source that does not exist; the template never
    # carries anything a client chose.
    if path.startswith("/hooks/"):
        return "/hooks/{source_id}"
    if path in ("/healthz", "/readyz", "/metrics"):
        return path
    return "other"
