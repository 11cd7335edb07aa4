"""Shared by the property tests and the atheris targets in fuzz/: a header map like
Granian's, the sources that providers are called with, and the checks on what a
parser returns or raises.

Nothing here depends on hypothesis or atheris, so both kinds of harness check the
same contract: an input ends in a valid outcome or in the defined rejection.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import encodings.aliases
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import httpx
import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from hookgate import entry
from hookgate.config import (
    GatewaySettings,
    GraphSettings,
    HmacSettings,
    OidcSettings,
    Source,
    parse_config,
)
from hookgate.consumers import convert_entry
from hookgate.entry import IngestEntry
from hookgate.events import DownstreamEvent
from hookgate.gateway.errors import Rejection
from hookgate.gateway.jwks import JwksCache
from hookgate.gateway.providers import DirectReply, EventDraft, Incoming
from hookgate.tests.gateway.tokens import (
    GRAPH_APP_ID,
    PUBSUB_AUDIENCE,
    SERVICE_ACCOUNT,
    JwksServer,
    SigningKey,
    signing_key,
)

T = TypeVar("T")


class FakeHeaders:
    """A request header map with the ``get`` and ``get_all`` of Granian's RSGI one.

    Names match without regard to case, and ``get`` returns the first value of a
    repeated header, as Granian's map does.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.pairs = [(name.lower(), value) for name, value in pairs]

    def get(self, key: str, default: str | None = None) -> str | None:
        key = key.lower()
        for name, value in self.pairs:
            if name == key:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [value for name, value in self.pairs if name == key]

    def __repr__(self) -> str:
        return f"FakeHeaders({self.pairs!r})"


TENANT = "fuzz"
SETTINGS = GatewaySettings()

# Raw HMAC keys, as the configuration decodes them from "whsec_" secrets.
STANDARD_KEY = b"fuzz-standard-key-\x00\x8f\xff-0123456789"
STANDARD_KEY_PREVIOUS = b"fuzz-standard-key-previous-abcdef"
GRAPH_CLIENT_STATE = "fuzz-graph-client-state-7c1d"
GMAIL_TOKEN = "fuzz-gmail-push-token-93af"
GITHUB_SECRET = "fuzz-github-secret-4e2b"
STRIPE_SECRET = "whsec_fuzzStripeSecret51c0"
HMAC_SECRET = "fuzz-hmac-secret-b8d3"

STANDARD_SOURCE = Source(
    id="fuzz-standard",
    tenant=TENANT,
    provider="standard-webhooks",
    secrets=(STANDARD_KEY, STANDARD_KEY_PREVIOUS),
)
GRAPH_SOURCE = Source(
    id="fuzz-graph",
    tenant=TENANT,
    provider="graph",
    secrets=(GRAPH_CLIENT_STATE.encode(),),
)
GMAIL_SOURCE = Source(
    id="fuzz-gmail",
    tenant=TENANT,
    provider="gmail-pubsub",
    secrets=(GMAIL_TOKEN.encode(),),
)
GITHUB_SOURCE = Source(
    id="fuzz-github",
    tenant=TENANT,
    provider="github",
    secrets=(GITHUB_SECRET.encode(),),
)
STRIPE_SOURCE = Source(
    id="fuzz-stripe",
    tenant=TENANT,
    provider="stripe",
    secrets=(STRIPE_SECRET.encode(),),
)

# Three generic HMAC schemes that differ in every setting, parsed as an operator's
# configuration would be, so that they pass its validation.
HMAC_CONFIG = """
[[sources]]
id = "fuzz-hmac-hex"
tenant = "fuzz"
provider = "hmac"
secret_env = ["FUZZ_HMAC_SECRET"]
[sources.hmac]
header = "X-Signature"
prefix = "sha256="
separator = ","

[[sources]]
id = "fuzz-hmac-base64"
tenant = "fuzz"
provider = "hmac"
secret_env = ["FUZZ_HMAC_SECRET"]
[sources.hmac]
header = "X-Signature"
algorithm = "sha512"
encoding = "base64"
timestamp_header = "X-Timestamp"
id_header = "X-Event-Id"
signed_content = "v0:{timestamp}:{id}:{body}"

[[sources]]
id = "fuzz-hmac-sha1"
tenant = "fuzz"
provider = "hmac"
secret_env = ["FUZZ_HMAC_SECRET"]
[sources.hmac]
header = "X-Hub-Signature"
algorithm = "sha1"
prefix = "sha1="
separator = " "
id_header = "X-Delivery"
signed_content = "{id}.{body}"
"""
HMAC_SOURCES = parse_config(HMAC_CONFIG, {"FUZZ_HMAC_SECRET": HMAC_SECRET}).sources

SECRETS = (
    STANDARD_KEY,
    STANDARD_KEY_PREVIOUS,
    GRAPH_CLIENT_STATE.encode(),
    GMAIL_TOKEN.encode(),
    GITHUB_SECRET.encode(),
    STRIPE_SECRET.encode(),
    HMAC_SECRET.encode(),
)


def graph_rich_source(jwks_url: str) -> Source:
    """Return a Graph source that accepts rich notifications, keys at ``jwks_url``."""
    return Source(
        id="fuzz-graph-rich",
        tenant=TENANT,
        provider="graph",
        secrets=(GRAPH_CLIENT_STATE.encode(),),
        graph=GraphSettings(app_id=GRAPH_APP_ID, jwks_url=jwks_url),
    )


def gmail_oidc_source(jwks_url: str) -> Source:
    """Return a Gmail source that checks Pub/Sub OIDC tokens, keys at ``jwks_url``."""
    return Source(
        id="fuzz-gmail-oidc",
        tenant=TENANT,
        provider="gmail-pubsub",
        secrets=(),
        oidc=OidcSettings(
            audience=PUBSUB_AUDIENCE,
            service_account=SERVICE_ACCOUNT,
            jwks_url=jwks_url,
        ),
    )


GOOGLE_KEY = signing_key("fuzz-google")
MICROSOFT_KEY = signing_key("fuzz-microsoft")


class RefusedPort:
    """A loopback TCP port bound but never listening, so connections to it fail.

    Holding the bound socket keeps another process from taking the port while a
    test fetches from it. Linux rejects a connection to such a port with a reset.
    """

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/keys"

    def close(self) -> None:
        self._socket.close()


class LoopbackKeys:
    """An event loop and two JWKS caches on it, for the providers that await keys.

    ``refused`` fetches from a port that refuses connections, so every token that
    names a key ends in 503. ``served`` fetches from a JWKS server that publishes
    GOOGLE_KEY and MICROSOFT_KEY, so tokens signed with them reach the claim checks
    and the body behind them.
    """

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self._port = RefusedPort()
        self._server = JwksServer([GOOGLE_KEY, MICROSOFT_KEY])
        self.runner.run(self._server.start())
        # trust_env=False keeps a proxy set in the environment away from loopback.
        self._client = httpx.AsyncClient(trust_env=False)
        self.refused_url = self._port.url
        self.served_url = self._server.url
        self.refused = JwksCache(self.refused_url, timeout_s=1.0, client=self._client)
        self.served = JwksCache(self.served_url, timeout_s=1.0, client=self._client)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def close(self) -> None:
        self.run(self.refused.aclose())
        self.run(self.served.aclose())
        self.run(self._client.aclose())
        self.run(self._server.close())
        self.runner.close()
        self._port.close()


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rs256_token(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign any claims with RS256, which PyJWT's encode refuses for some types."""
    encoded_header = base64url(json.dumps(header).encode())
    encoded_claims = base64url(json.dumps(claims).encode())
    signing_input = f"{encoded_header}.{encoded_claims}"
    signature = key.private_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{base64url(signature)}"


def _known_charsets() -> list[str]:
    names = set()
    for alias in set(encodings.aliases.aliases.values()):
        try:
            names.add(codecs.lookup(alias).name)
        except LookupError:
            # Aliases of codecs that exist only on Windows, such as mbcs.
            continue
    return sorted(names)


# Codec names Python can look up that are not character sets of a body: they are
# not text codecs, or they decode to text that has no UTF-8 form. charset_of
# rejects them with 415; the strategies draw them beside the real charsets.
NON_TEXT_CHARSETS = frozenset(
    {
        "base64",
        "bz2",
        "hex",
        "punycode",
        "quopri",
        "raw-unicode-escape",
        "rot-13",
        "undefined",
        "unicode-escape",
        "utf-7",
        "uu",
        "zlib",
    }
)
KNOWN_CHARSETS = _known_charsets()
TEXT_CHARSETS = [name for name in KNOWN_CHARSETS if name not in NON_TEXT_CHARSETS]


def standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """Return the ``v1,<base64>`` Standard Webhooks signature of one delivery."""
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def result_of(call: Callable[[], T]) -> T | Rejection:
    """Return what ``call`` returns, or the Rejection it raises."""
    try:
        return call()
    except Rejection as rejection:
        return rejection


def hmac_signature(
    settings: HmacSettings,
    key: bytes,
    body: bytes,
    timestamp: str | None,
    event_id: str | None,
) -> str:
    """Sign a delivery under a generic HMAC scheme, prefix included.

    The templates above have no literal braces, so plain replacement fills them.
    The body goes in last, so that text in it is never taken for a placeholder.
    """
    content = settings.signed_content.encode()
    content = content.replace(b"{timestamp}", (timestamp or "").encode())
    content = content.replace(b"{id}", (event_id or "").encode())
    content = content.replace(b"{body}", body)
    digest = hmac.new(key, content, settings.algorithm).digest()
    if settings.encoding == "base64":
        encoded = base64.b64encode(digest).decode()
    else:
        encoded = digest.hex()
    return settings.prefix + encoded


def header(incoming: Incoming, name: str) -> str:
    return incoming.headers.get(name) or ""


def standard_signed(incoming: Incoming, source: Source) -> bool:
    """Check that one token of webhook-signature is a source key's signature.

    The timestamp must also be fresh, give or take a few seconds that the check
    may run after the provider's.
    """
    msg_id = header(incoming, "webhook-id")
    timestamp = header(incoming, "webhook-timestamp")
    if not timestamp.isdigit():
        return False
    if abs(int(timestamp) - time.time()) > SETTINGS.timestamp_tolerance_s + 5:
        return False
    offered = header(incoming, "webhook-signature").split(" ")
    return any(
        standard_signature(key, msg_id, timestamp, incoming.body) in offered
        for key in source.secrets
    )


def github_signed(incoming: Incoming) -> bool:
    """Check that X-Hub-Signature-256 is the HMAC of the body under GITHUB_SECRET."""
    digest = hmac.new(GITHUB_SECRET.encode(), incoming.body, hashlib.sha256)
    offered = header(incoming, "x-hub-signature-256").lower()
    return offered == "sha256=" + digest.hexdigest()


def stripe_signed(incoming: Incoming) -> bool:
    """Check that one v1 of Stripe-Signature is STRIPE_SECRET's over its t."""
    fields = [
        part.partition("=") for part in header(incoming, "stripe-signature").split(",")
    ]
    (timestamp,) = [value for name, _, value in fields if name == "t"]
    content = timestamp.encode() + b"." + incoming.body
    digest = hmac.new(STRIPE_SECRET.encode(), content, hashlib.sha256).hexdigest()
    return any(name == "v1" and value.lower() == digest for name, _, value in fields)


def hmac_signed(incoming: Incoming, settings: HmacSettings) -> bool:
    """Check that one candidate signature is HMAC_SECRET's under ``settings``."""
    timestamp = event_id = None
    if settings.timestamp_header is not None:
        timestamp = header(incoming, settings.timestamp_header)
    if settings.id_header is not None:
        event_id = header(incoming, settings.id_header)
    expected = hmac_signature(
        settings, HMAC_SECRET.encode(), incoming.body, timestamp, event_id
    )
    offered = header(incoming, settings.header)
    candidates = offered.split(settings.separator) if settings.separator else [offered]
    if settings.encoding == "hex":
        return expected.lower() in [value.strip().lower() for value in candidates]
    return expected in [value.strip() for value in candidates]


def check_rejection(rejection: Rejection, *, keys_fetched: bool = False) -> None:
    """Check that a rejection is a defined response with a well-formed JSON body.

    ``keys_fetched`` allows the 503 ``jwks_unavailable`` of a provider that fetches
    signing keys. Every other rejection must be a 4xx.
    """
    if keys_fetched and rejection.status == 503:
        assert rejection.code == "jwks_unavailable", rejection.code
        assert ("retry-after", str(SETTINGS.retry_after_s)) in rejection.headers
    else:
        assert 400 <= rejection.status < 500, (rejection.status, rejection.code)

    document = msgspec.json.decode(rejection.body())
    assert isinstance(document, dict), document
    assert set(document) == {"error", "detail"}, document
    assert document["error"] == rejection.code, document
    assert isinstance(document["detail"], str), document
    for secret in SECRETS:
        assert secret not in rejection.body(), rejection.body()


def check_outcome(outcome: object, source: Source, *, convertible: bool) -> None:
    """Check what an accept function returned, and that each event converts.

    With ``convertible``, every draft is written as the gateway would write it and
    must become a downstream event, because a consumer dead-letters one that does
    not. Callers pass False for bodies in a charset other than UTF-8.
    """
    if isinstance(outcome, DirectReply):
        assert outcome.status == 200, outcome
        assert outcome.content_type == "text/plain", outcome
        assert outcome.body, outcome
        return

    assert isinstance(outcome, list), outcome
    assert outcome, "an accept function returned no events and no rejection"
    for draft in outcome:
        assert isinstance(draft, EventDraft), draft
        assert draft.type in entry.EVENT_TYPES, draft.type
        assert isinstance(draft.provider_event_id, str), draft
        assert draft.provider_event_id, draft
        for name, value in draft.headers.items():
            assert name == name.lower(), name
            assert isinstance(value, str), value
        if convertible:
            check_converts(draft, source)


def check_converts(draft: EventDraft, source: Source) -> DownstreamEvent:
    """Convert a draft as the consumer would, and check the event's JSON decodes."""
    ingest = IngestEntry(
        event_id="evt_fuzz",
        type=draft.type,
        tenant=source.tenant,
        source=source.id,
        provider=source.provider,
        received_at=1_733_300_000_123,
        provider_event_id=draft.provider_event_id,
        headers=draft.headers,
        body=draft.body,
    )
    event = convert_entry(ingest, source.tenant)
    check_event(event)
    return event


def check_event(event: DownstreamEvent) -> None:
    """Check that an event survives the JSON round trip that publishing makes."""
    encoded = msgspec.json.encode(event)
    decoded = msgspec.json.decode(encoded, type=DownstreamEvent)
    assert type(decoded) is type(event), (decoded, event)
    assert decoded.event_id == event.event_id, decoded
