"""The TOML configuration file: its shape, validation and secret resolution.

The file is a public interface (later imported by the control plane), so keys are
only ever added. Errors stop start-up with a message that names the source and the
key, so an operator can fix the file without reading code::

    [gateway]                      # optional, every key has a default
    max_body_bytes = 1048576

    [retention]                    # optional, every key has a default
    ingest_processed_s = 600

    [[sources]]
    id = "acme-mail"               # the {source_id} in /hooks/{source_id}
    tenant = "acme"
    provider = "standard-webhooks" # or "graph", "gmail-pubsub", "github", "stripe",
                                   # "hmac" (which also needs a [sources.hmac] table)
    secret_env = ["ACME_MAIL_SECRET"]
    secrets = [                    # the same, with an optional expiry per secret
      { env = "ACME_MAIL_SECRET_OLD", not_after = "2026-12-31T00:00:00Z" },
    ]
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import string
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec

PROVIDERS = ("standard-webhooks", "graph", "gmail-pubsub", "github", "stripe", "hmac")

# Tenant and source ids end up in Redis key names and URLs, so they are kept to a
# character set that needs no escaping in either.
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SOURCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ConfigError(ValueError):
    """Raised when the configuration file is unusable; the message explains why."""


class GatewaySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional ``[gateway]`` table."""

    max_body_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1024 * 1024
    """Largest request body accepted, in bytes; larger bodies get 413."""
    max_pending: Annotated[int, msgspec.Meta(ge=1)] = 4096
    """Entries that may wait for a flush at once; past this, requests get 503."""
    max_batch: Annotated[int, msgspec.Meta(ge=1)] = 512
    """Entries sent in one flush at most."""
    flush_timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """How long one flush may wait for Redis before its entries get 503."""
    # Below 0.1 s the deadline sweep would run almost without pause. Above an hour,
    # a slow client would keep its connection open for no use.
    body_timeout_s: Annotated[float, msgspec.Meta(ge=0.1, le=3600)] = 10.0
    """How long a client may take to send its body; slower ones get 408."""
    retry_after_s: Annotated[int, msgspec.Meta(ge=0)] = 1
    """Value of the Retry-After header on 503 and 429 responses, in seconds."""
    timestamp_tolerance_s: Annotated[int, msgspec.Meta(ge=1)] = 300
    """Allowed distance between a signed timestamp and this host's clock."""
    # Ten years at most: Redis rejects expiry times past about 9e15 seconds.
    dedup_window_s: Annotated[int, msgspec.Meta(ge=1, le=10 * 365 * 86400)] = 72 * 3600
    """How long a provider event id is remembered per source, in seconds; a repeat
    within the window gets the original event id in its response and is not
    enqueued."""
    max_stream_length: Annotated[int, msgspec.Meta(ge=0)] = 1_000_000
    """Entries a tenant's ingest stream may hold before its requests get 429, or 0
    for no limit. Processed entries that retention still keeps count too."""
    batch_io_threads: bool = False
    """Whether every thread of a worker but its Python main thread (Granian's I/O
    threads, exporters) runs under Linux's SCHED_BATCH policy, so that they do not
    preempt the main thread. :mod:`hookgate.gateway.threads` has the measurements."""


class RetentionSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional ``[retention]`` table: how long each stream keeps its entries.

    Every age is in seconds and 0 keeps that stream untrimmed. Ages are measured
    on the Redis server's clock, which also stamps the entry ids.
    """

    ingest_processed_s: Annotated[int, msgspec.Meta(ge=0)] = 600
    """How long an ingest entry that every consumer group acknowledged is kept,
    counted from its arrival. Unacknowledged entries are never trimmed.

    Short by default because processed entries count toward ``max_stream_length``:
    with 10 minutes and a limit of a million, a tenant can sustain about 1,600
    events/s before a backlog-free stream reaches the limit."""
    events_s: Annotated[int, msgspec.Meta(ge=0)] = 7 * 24 * 3600
    """How long a downstream event is kept, whether or not anyone read it."""
    dead_s: Annotated[int, msgspec.Meta(ge=0)] = 14 * 24 * 3600
    """How long a dead-letter entry is kept unless replayed, which deletes it."""
    interval_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    """Time between two trimming passes of a consumer process."""


# Signing keys of Google's OpenID Connect provider, which signs Pub/Sub push tokens:
# the jwks_uri of https://accounts.google.com/.well-known/openid-configuration.
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
# Signing keys of the Microsoft identity platform, which signs Graph's validation
# tokens. Microsoft's Java sample in "Set up change notifications that include
# resource data" reads this URL.
MICROSOFT_JWKS_URL = "https://login.microsoftonline.com/common/discovery/keys"


class OidcSettings(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True
):
    """``[sources.oidc]``: authenticate Pub/Sub pushes by their OIDC token."""

    audience: str
    """The audience the push subscription was configured with."""
    service_account: str
    """Email of the service account the push subscription signs as."""
    jwks_url: str = GOOGLE_JWKS_URL
    leeway_s: int = 60


class GraphSettings(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True
):
    """``[sources.graph]``: accept rich notifications, whose tokens name this app."""

    app_id: str
    """The Azure AD application id that created the subscriptions."""
    tenant_ids: list[str] | None = None
    """Directory (tenant) ids allowed to issue validation tokens; any when unset."""
    jwks_url: str = MICROSOFT_JWKS_URL
    leeway_s: int = 60


HMAC_ALGORITHMS = ("sha256", "sha512", "sha1")
HMAC_ENCODINGS = ("hex", "base64")
# Placeholders of [sources.hmac] signed_content: the raw body, and the values of the
# timestamp_header and id_header headers as sent.
SIGNED_CONTENT_FIELDS = ("body", "timestamp", "id")

# A header field name is an RFC 9110 token.
HEADER_NAME_PATTERN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class HmacSettings(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True
):
    """``[sources.hmac]``: how a generic HMAC provider signs its requests.

    Header names are stored in lower case once the configuration is parsed.
    """

    header: str
    """The header that carries the signature."""
    algorithm: str = "sha256"
    """One of :data:`HMAC_ALGORITHMS`. Use ``sha1`` only for a provider that still
    requires it."""
    encoding: str = "hex"
    """Encoding of the digest: ``hex`` (either case) or ``base64``."""
    prefix: str = ""
    """Text before each signature, such as ``sha256=``; a candidate without it is
    ignored."""
    separator: str | None = None
    """Splits the header into several candidate signatures, such as ``" "``."""
    timestamp_header: str | None = None
    """A header with the Unix time in seconds of signing, checked against the
    ``[gateway]`` timestamp_tolerance_s."""
    signed_content: str = "{body}"
    """What the HMAC covers: literal text and the placeholders ``{body}``,
    ``{timestamp}`` and ``{id}``, with ``{{`` and ``}}`` for literal braces."""
    id_header: str | None = None
    """A header with the provider event id; without it the id is the SHA-256 hex
    digest of the body."""


class SecretSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One item of a source's ``secrets`` list."""

    env: str
    """Name of the environment variable that contains the secret."""
    not_after: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    """The last instant the secret verifies; an RFC 3339 time with an offset."""


class SourceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One ``[[sources]]`` table, before its secrets are resolved."""

    id: str
    tenant: str
    provider: str
    secret_env: list[str] = []
    secrets: list[SecretSettings] = []
    oidc: OidcSettings | None = None
    graph: GraphSettings | None = None
    hmac: HmacSettings | None = None


class Source(msgspec.Struct, kw_only=True, frozen=True):
    """A source with its secrets read from the environment.

    ``secrets`` holds every configured secret, expired or not, in the form the
    provider compares against: the decoded HMAC key for Standard Webhooks, the
    ``clientState`` for Graph, the push token for Gmail, and the secret's UTF-8 bytes
    for GitHub, Stripe (the whole ``whsec_`` string) and generic HMAC. Those of
    ``secret_env`` come first, then those of ``secrets``. Providers verify with
    :meth:`active_secrets`.
    """

    id: str
    tenant: str
    provider: str
    secrets: tuple[bytes, ...]
    secret_schedule: tuple[tuple[float, tuple[bytes, ...]], ...] = ()
    """When secrets expire, in time order: pairs of an instant in Unix seconds and the
    secrets that verify up to and including it. The last instant is infinity. Empty
    when no secret expires."""
    oidc: OidcSettings | None = None
    graph: GraphSettings | None = None
    hmac: HmacSettings | None = None

    def active_secrets(self, now: float) -> tuple[bytes, ...]:
        """Return the secrets that verify at ``now``, Unix time in seconds.

        Every result is a tuple built at start-up, so the hot path builds nothing:
        ``secrets`` itself without expiries, else one step of ``secret_schedule``.
        """
        # NOTE: expiry is judged by this host's clock, so a clock that runs behind
        # keeps an old secret valid for that much longer.
        if not self.secret_schedule:
            return self.secrets
        for until, active in self.secret_schedule:
            if now <= until:
                return active
        return ()


class Config(msgspec.Struct, kw_only=True, frozen=True):
    gateway: GatewaySettings
    sources: tuple[Source, ...]
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)

    @property
    def tenants(self) -> list[str]:
        """Return every tenant that owns a source, sorted and without repeats."""
        return sorted({source.tenant for source in self.sources})


def _decode_standard_secret(
    value: str, *, label: str, variable: str, key: str
) -> bytes:
    # Standard Webhooks secrets are "whsec_" followed by base64 of the key bytes.
    encoded = value.removeprefix("whsec_")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ConfigError(
            f"source {label}: secret in ${variable} is not base64 after the"
            f" 'whsec_' prefix (key {key!r})"
        ) from None
    if not decoded:
        raise ConfigError(f"source {label}: secret in ${variable} is empty")
    return decoded


def _decode_secret(
    provider: str, value: str, *, label: str, variable: str, key: str
) -> bytes:
    if provider == "standard-webhooks":
        return _decode_standard_secret(value, label=label, variable=variable, key=key)
    # Stripe keys the HMAC with the whole signing secret, prefix included. An API
    # key (sk_..., rk_...) in its place would fail every request with 401.
    if provider == "stripe" and not value.startswith("whsec_"):
        raise ConfigError(
            f"source {label}: secret in ${variable} does not start with 'whsec_'"
            f" (key {key!r}); use the webhook endpoint's signing secret, not an API"
            " key"
        )
    return value.encode()


def _secret_schedule(
    secrets: tuple[bytes, ...], expiries: tuple[float | None, ...]
) -> tuple[tuple[float, tuple[bytes, ...]], ...]:
    """Return :attr:`Source.secret_schedule` for secrets with these expiries."""
    instants = sorted({expiry for expiry in expiries if expiry is not None})
    if not instants:
        return ()
    schedule = []
    # Up to and including each instant, exactly the secrets that expire no earlier
    # verify, because every expiry is one of the instants.
    for until in [*instants, math.inf]:
        active = tuple(
            secret
            for secret, expiry in zip(secrets, expiries, strict=True)
            if expiry is None or until <= expiry
        )
        schedule.append((until, active))
    return tuple(schedule)


def _resolve_secrets(
    settings: SourceSettings, label: str, environ: Mapping[str, str]
) -> tuple[tuple[bytes, ...], tuple[float | None, ...]]:
    """Read the secrets of ``secret_env`` and then ``secrets`` from ``environ``.

    Returns the secrets and their expiries in Unix seconds, None for no expiry.
    """
    named: list[tuple[str, datetime | None, str]] = [
        (variable, None, "secret_env") for variable in settings.secret_env
    ]
    named += [(item.env, item.not_after, "secrets") for item in settings.secrets]

    secrets: list[bytes] = []
    expiries: list[float | None] = []
    seen: set[str] = set()
    for variable, not_after, key in named:
        # A variable listed twice would verify under the entry without an expiry,
        # so its not_after would silently never apply.
        if variable in seen:
            raise ConfigError(
                f"source {label}: environment variable ${variable} is named more"
                " than once in 'secret_env' and 'secrets'; name each secret once"
            )
        seen.add(variable)
        value = environ.get(variable)
        if not value:
            raise ConfigError(
                f"source {label}: environment variable ${variable} named in"
                f" {key!r} is not set"
            )
        secrets.append(
            _decode_secret(
                settings.provider, value, label=label, variable=variable, key=key
            )
        )
        expiries.append(None if not_after is None else not_after.timestamp())

    return tuple(secrets), tuple(expiries)


def split_signed_content(template: str) -> list[tuple[str, str | None]]:
    """Split a ``signed_content`` template into its parts, in order.

    Each part is a pair of literal text (``{{`` and ``}}`` already unescaped) and the
    placeholder that follows it, one of :data:`SIGNED_CONTENT_FIELDS`, or None after
    the last literal. Raises ValueError naming an unbalanced brace or an unknown
    placeholder.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc}; write a literal brace as {{{{ or }}}}") from None

    parts: list[tuple[str, str | None]] = []
    pending = ""
    for literal, field, format_spec, conversion in parsed:
        if field is not None and (
            field not in SIGNED_CONTENT_FIELDS or format_spec or conversion
        ):
            placeholder = field
            if conversion:
                placeholder += f"!{conversion}"
            if format_spec:
                placeholder += f":{format_spec}"
            raise ValueError(
                f"unknown placeholder {{{placeholder}}}; use {{body}}, {{timestamp}} or"
                " {id}"
            )
        # The parser ends a literal at each escaped brace, so join the pieces.
        pending += literal
        if field is not None:
            parts.append((pending, field))
            pending = ""
    if pending:
        parts.append((pending, None))
    return parts


def _check_hmac(settings: HmacSettings, label: str) -> HmacSettings:
    """Validate a ``[sources.hmac]`` table; return it with header names lower-cased.

    Raises :class:`ConfigError` naming the source and the key.
    """

    def invalid(key: str, problem: str) -> ConfigError:
        return ConfigError(f"source {label}: {problem} (key 'hmac.{key}')")

    for key in ("header", "timestamp_header", "id_header"):
        name = getattr(settings, key)
        if name is not None and not HEADER_NAME_PATTERN.fullmatch(name):
            raise invalid(key, f"invalid header name {name!r}")
    if settings.algorithm not in HMAC_ALGORITHMS:
        raise invalid(
            "algorithm",
            f"unknown algorithm {settings.algorithm!r}; expected one of"
            f" {', '.join(HMAC_ALGORITHMS)}",
        )
    if settings.encoding not in HMAC_ENCODINGS:
        raise invalid(
            "encoding",
            f"unknown encoding {settings.encoding!r}; expected one of"
            f" {', '.join(HMAC_ENCODINGS)}",
        )
    if settings.separator == "":
        raise invalid(
            "separator", "empty separator; leave the key out to read one signature"
        )
    if settings.separator and settings.separator in settings.prefix:
        raise invalid(
            "prefix",
            f"prefix {settings.prefix!r} contains the separator"
            f" {settings.separator!r}, so splitting the header would cut it",
        )

    try:
        parts = split_signed_content(settings.signed_content)
    except ValueError as exc:
        raise invalid("signed_content", f"invalid signed_content: {exc}") from None
    fields = [field for _, field in parts if field is not None]
    if fields.count("body") != 1:
        raise invalid(
            "signed_content", "signed_content must contain {body} exactly once"
        )
    if "timestamp" in fields and settings.timestamp_header is None:
        raise invalid(
            "signed_content",
            "signed_content uses {timestamp} but 'hmac.timestamp_header' is not set",
        )
    if settings.timestamp_header is not None and "timestamp" not in fields:
        raise invalid(
            "timestamp_header",
            "timestamp_header is set but signed_content has no {timestamp}, so the"
            " timestamp would not be signed and could be replaced",
        )
    if "id" in fields and settings.id_header is None:
        raise invalid(
            "signed_content", "signed_content uses {id} but 'hmac.id_header' is not set"
        )

    return msgspec.structs.replace(
        settings,
        header=settings.header.lower(),
        timestamp_header=(settings.timestamp_header or "").lower() or None,
        id_header=(settings.id_header or "").lower() or None,
    )


def _check_tables(settings: SourceSettings, label: str) -> None:
    if settings.oidc is not None and settings.provider != "gmail-pubsub":
        raise ConfigError(
            f"source {label}: [sources.oidc] applies to gmail-pubsub only"
        )
    if settings.graph is not None and settings.provider != "graph":
        raise ConfigError(f"source {label}: [sources.graph] applies to graph only")
    if settings.hmac is not None and settings.provider != "hmac":
        raise ConfigError(f"source {label}: [sources.hmac] applies to hmac only")
    if settings.hmac is None and settings.provider == "hmac":
        raise ConfigError(
            f"source {label}: provider 'hmac' needs a [sources.hmac] table naming at"
            " least the signature 'header'"
        )


def _resolve_source(
    raw: Mapping[str, Any], index: int, environ: Mapping[str, str]
) -> Source:
    label = repr(raw["id"]) if isinstance(raw.get("id"), str) else f"#{index + 1}"
    if isinstance(raw.get("secret_env"), str):
        raw = {**raw, "secret_env": [raw["secret_env"]]}
    try:
        settings = msgspec.convert(raw, SourceSettings)
    except msgspec.ValidationError as exc:
        # msgspec reports the path as `$.key`; keep the key, name the source.
        hint = ""
        if "not_after" in str(exc):
            hint = "; write not_after in RFC 3339 with an offset: 2026-12-31T00:00:00Z"
        raise ConfigError(f"source {label}: {exc}{hint}") from None

    if not SOURCE_PATTERN.fullmatch(settings.id):
        raise ConfigError(
            f"source {label}: invalid id (key 'id'); use letters, digits, '.', '_'"
            " and '-', starting with a letter or digit, at most 128 characters"
        )
    if not TENANT_PATTERN.fullmatch(settings.tenant):
        raise ConfigError(
            f"source {label}: invalid tenant {settings.tenant!r} (key 'tenant'); use"
            " lower-case letters, digits, '_' and '-', at most 63 characters"
        )
    if settings.provider not in PROVIDERS:
        raise ConfigError(
            f"source {label}: unknown provider {settings.provider!r} (key"
            f" 'provider'); expected one of {', '.join(PROVIDERS)}"
        )
    _check_tables(settings, label)
    hmac_settings = None
    if settings.hmac is not None:
        hmac_settings = _check_hmac(settings.hmac, label)
    # A source authenticated by OIDC needs no shared secret.
    if not settings.secret_env and not settings.secrets and settings.oidc is None:
        raise ConfigError(
            f"source {label}: keys 'secret_env' and 'secrets' name no variable"
        )

    secrets, expiries = _resolve_secrets(settings, label, environ)
    return Source(
        id=settings.id,
        tenant=settings.tenant,
        provider=settings.provider,
        secrets=secrets,
        secret_schedule=_secret_schedule(secrets, expiries),
        oidc=settings.oidc,
        graph=settings.graph,
        hmac=hmac_settings,
    )


def parse_config(text: str, environ: Mapping[str, str] | None = None) -> Config:
    """Parse configuration TOML and resolve each source's secrets.

    Raises :class:`ConfigError` on the first problem found.
    """
    environ = os.environ if environ is None else environ
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}") from None

    unknown = set(document) - {"gateway", "sources", "retention"}
    if unknown:
        raise ConfigError(f"unknown top-level keys: {', '.join(sorted(unknown))}")

    try:
        gateway = msgspec.convert(document.get("gateway", {}), GatewaySettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[gateway]: {exc}") from None
    try:
        retention = msgspec.convert(document.get("retention", {}), RetentionSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[retention]: {exc}") from None

    raw_sources = document.get("sources", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError("no [[sources]] defined; add at least one")

    sources: list[Source] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_sources):
        source = _resolve_source(raw, index, environ)
        if source.id in seen:
            raise ConfigError(f"source {source.id!r}: duplicate id (key 'id')")
        seen.add(source.id)
        sources.append(source)

    return Config(gateway=gateway, sources=tuple(sources), retention=retention)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and parse the configuration file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, environ)
