"""Generic HMAC signatures, described per source by its ``[sources.hmac]`` table.

The signed content is built from the source's ``signed_content`` template as a list
of chunks that the MAC reads in order, so the body is never copied into a joined
buffer. When the source names a ``timestamp_header``, its age is checked before the
signature; the configuration guarantees that the template then signs it. The body
is parsed only after the signature matched.

Without an ``id_header`` the provider event id is the SHA-256 hex digest of the
body, so two deliveries with the same body within the dedup window are one event.
"""

from __future__ import annotations

import hashlib
import time

import msgspec

from hookgate import entry
from hookgate.config import GatewaySettings, HmacSettings, Source, split_signed_content
from hookgate.fastpath import Verdict, verify_hmac
from hookgate.gateway.errors import Rejection
from hookgate.gateway.providers import (
    TRACE_HEADERS,
    EventDraft,
    Incoming,
    check_signature_length,
    check_timestamp,
    decode_json,
    event_id_header,
    kept_headers,
    missing_headers,
    single_header,
)

# Any JSON value is accepted: decoding into Raw checks the syntax and builds nothing.
_decode_payload = msgspec.json.Decoder(msgspec.Raw).decode


class Scheme(msgspec.Struct, frozen=True, kw_only=True):
    """A source's ``[sources.hmac]`` table, prepared for the hot path."""

    settings: HmacSettings
    signature_headers: tuple[str, ...]
    """The signature header, then the timestamp header when there is one."""
    kept_headers: tuple[str, ...]
    parts: tuple[bytes | str, ...]
    """The template: literal bytes, or the name of a placeholder."""
    rejections: dict[int, tuple[int, str, str]]
    """Status, code and detail for each failed verdict."""

    @classmethod
    def build(cls, settings: HmacSettings) -> Scheme:
        """Prepare ``settings``, which the configuration has already validated."""
        parts: list[bytes | str] = []
        for literal, field in split_signed_content(settings.signed_content):
            if literal:
                parts.append(literal.encode())
            if field is not None:
                parts.append(field)

        signature_headers: tuple[str, ...] = (settings.header,)
        if settings.timestamp_header is not None:
            signature_headers += (settings.timestamp_header,)
        extra: tuple[str, ...] = ()
        if settings.id_header is not None:
            extra = (settings.id_header,)

        header = settings.header
        digest = f"{settings.algorithm} {settings.encoding}"
        rejections: dict[int, tuple[int, str, str]] = {
            Verdict.BAD_TIMESTAMP: (
                400,
                "invalid_timestamp",
                f"{settings.timestamp_header} is not a Unix time in seconds",
            ),
            Verdict.STALE: (
                401,
                "stale_timestamp",
                f"{settings.timestamp_header} is outside the allowed tolerance",
            ),
            Verdict.NO_SIGNATURE: (
                400,
                "invalid_signature_header",
                f"{header} has no signature"
                + (f" starting with {settings.prefix!r}" if settings.prefix else ""),
            ),
            Verdict.MALFORMED_SIGNATURE: (
                400,
                "invalid_signature_header",
                f"no signature in {header} has the length and alphabet of a {digest}"
                " digest",
            ),
            Verdict.MISMATCH: (401, "invalid_signature", "no signature matched"),
        }
        return cls(
            settings=settings,
            signature_headers=signature_headers,
            kept_headers=signature_headers + extra + TRACE_HEADERS,
            parts=tuple(parts),
            rejections=rejections,
        )

    def candidates(self, header: str) -> list[bytes]:
        """Split a signature header into candidate signatures, prefixes removed.

        Whitespace around a candidate is ignored, so ``a, b`` splits like ``a,b``. A
        candidate without the prefix is not a signature of this scheme and is
        dropped, as are empty ones.
        """
        separator = self.settings.separator
        prefix = self.settings.prefix
        values = header.split(separator) if separator else [header]
        found = []
        for value in values:
            value = value.strip()
            if prefix:
                if not value.startswith(prefix):
                    continue
                value = value[len(prefix) :]
            if value:
                found.append(value.encode())
        return found

    def chunks(
        self, body: bytes, timestamp: str | None, event_id: str | None
    ) -> list[bytes]:
        """Return the signed content as chunks, placeholders filled in."""
        values = {
            "body": body,
            "timestamp": (timestamp or "").encode(),
            "id": (event_id or "").encode(),
        }
        return [
            part if isinstance(part, bytes) else values[part] for part in self.parts
        ]


def accept(
    incoming: Incoming, source: Source, settings: GatewaySettings, *, scheme: Scheme
) -> list[EventDraft]:
    """Verify and check one delivery under ``scheme``; see the module docstring."""
    headers = incoming.headers
    hmac_settings = scheme.settings
    signature = single_header(headers, hmac_settings.header)
    timestamp = None
    if hmac_settings.timestamp_header is not None:
        timestamp = single_header(headers, hmac_settings.timestamp_header)
    if signature is None or (
        hmac_settings.timestamp_header is not None and timestamp is None
    ):
        raise missing_headers(headers, scheme.signature_headers)
    event_id = None
    if hmac_settings.id_header is not None:
        event_id = event_id_header(headers, hmac_settings.id_header)
    check_signature_length(signature, hmac_settings.header)

    now = time.time()
    if timestamp is not None:
        verdict = check_timestamp(timestamp, int(now), settings.timestamp_tolerance_s)
        if verdict:
            raise Rejection(*scheme.rejections[verdict])
    verdict = verify_hmac(
        source.active_secrets(now),
        hmac_settings.algorithm,
        scheme.chunks(incoming.body, timestamp, event_id),
        scheme.candidates(signature),
        hmac_settings.encoding,
    )
    if verdict:
        raise Rejection(*scheme.rejections[verdict])

    decode_json(_decode_payload, incoming, "JSON")

    if event_id is None:
        event_id = hashlib.sha256(incoming.body).hexdigest()
    return [
        EventDraft(
            type=entry.HMAC_EVENT,
            provider_event_id=event_id,
            headers=kept_headers(headers, scheme.kept_headers),
            body=incoming.body,
        )
    ]
