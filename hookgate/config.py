"""The TOML configuration file: its shape, validation and secret resolution.

The file is a public interface (later imported by the control plane), so keys are
only ever added. Errors stop start-up with a message that names the source and the
key, so an operator can fix the file without reading code::

    [gateway]                      # optional, every key has a default
    max_body_bytes = 1048576

    [[sources]]
    id = "acme-mail"               # the {source_id} in /hooks/{source_id}
    tenant = "acme"
    provider = "standard-webhooks" # or "graph", "gmail-pubsub"
    secret_env = ["ACME_MAIL_SECRET", "ACME_MAIL_SECRET_PREVIOUS"]
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

PROVIDERS = ("standard-webhooks", "graph", "gmail-pubsub")

# Tenant and source ids end up in Redis key names and URLs, so they are kept to a
# character set that needs no escaping in either.
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SOURCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ConfigError(ValueError):
    """Raised when the configuration file is unusable; the message says why."""


class GatewaySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional ``[gateway]`` table."""

    max_body_bytes: int = 1024 * 1024
    """Largest request body accepted, in bytes; larger bodies get 413."""
    max_pending: int = 4096
    """Entries that may wait for a flush at once; past this, requests get 503."""
    max_batch: int = 512
    """Entries sent in one flush at most."""
    flush_timeout_ms: int = 1000
    """How long one flush may wait for Redis before its entries get 503."""
    body_timeout_s: float = 10.0
    """How long a client may take to send its body; slower ones get 408."""
    retry_after_s: int = 1
    """Value of the Retry-After header on 503 answers, in seconds."""
    timestamp_tolerance_s: int = 300
    """Allowed distance between a signed timestamp and this host's clock."""
    dedup_window_s: int = 72 * 3600
    """How long a provider event id is remembered per source, in seconds; a repeat
    within the window is answered with the original event id and not enqueued."""


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


class SourceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One ``[[sources]]`` table, before its secrets are resolved."""

    id: str
    tenant: str
    provider: str
    secret_env: list[str] = []
    oidc: OidcSettings | None = None
    graph: GraphSettings | None = None


class Source(msgspec.Struct, kw_only=True, frozen=True):
    """A source with its secrets read from the environment.

    ``secrets`` are in the form the provider compares against: the decoded HMAC key
    for Standard Webhooks, the ``clientState`` for Graph and the push token for Gmail.
    """

    id: str
    tenant: str
    provider: str
    secrets: tuple[bytes, ...]
    oidc: OidcSettings | None = None
    graph: GraphSettings | None = None


class Config(msgspec.Struct, kw_only=True, frozen=True):
    gateway: GatewaySettings
    sources: tuple[Source, ...]

    @property
    def tenants(self) -> list[str]:
        """Return every tenant that owns a source, sorted and without repeats."""
        return sorted({source.tenant for source in self.sources})


def _decode_standard_secret(value: str, *, source_id: str, variable: str) -> bytes:
    # Standard Webhooks secrets are "whsec_" followed by base64 of the key bytes.
    encoded = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ConfigError(
            f"source {source_id!r}: secret in ${variable} is not base64 after the"
            " 'whsec_' prefix (key 'secret_env')"
        ) from None
    if not key:
        raise ConfigError(f"source {source_id!r}: secret in ${variable} is empty")
    return key


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
        raise ConfigError(f"source {label}: {exc}") from None

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
    if settings.oidc is not None and settings.provider != "gmail-pubsub":
        raise ConfigError(
            f"source {label}: [sources.oidc] applies to gmail-pubsub only"
        )
    if settings.graph is not None and settings.provider != "graph":
        raise ConfigError(f"source {label}: [sources.graph] applies to graph only")
    # A source authenticated by OIDC needs no shared secret.
    if not settings.secret_env and settings.oidc is None:
        raise ConfigError(f"source {label}: key 'secret_env' names no variable")

    secrets: list[bytes] = []
    for variable in settings.secret_env:
        value = environ.get(variable)
        if not value:
            raise ConfigError(
                f"source {label}: environment variable ${variable} named in"
                " 'secret_env' is not set"
            )
        if settings.provider == "standard-webhooks":
            secrets.append(
                _decode_standard_secret(value, source_id=settings.id, variable=variable)
            )
        else:
            secrets.append(value.encode())

    return Source(
        id=settings.id,
        tenant=settings.tenant,
        provider=settings.provider,
        secrets=tuple(secrets),
        oidc=settings.oidc,
        graph=settings.graph,
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

    unknown = set(document) - {"gateway", "sources"}
    if unknown:
        raise ConfigError(f"unknown top-level keys: {', '.join(sorted(unknown))}")

    try:
        gateway = msgspec.convert(document.get("gateway", {}), GatewaySettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[gateway]: {exc}") from None

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

    return Config(gateway=gateway, sources=tuple(sources))


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and parse the configuration file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, environ)
