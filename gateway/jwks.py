"""A cache of an issuer's JSON Web Key Set (JWKS): RS256 public keys by ``kid``.

One :class:`JwksCache` serves one JWKS URL in one event loop (one per Granian
worker). Lookups of a cached key touch no network. The cache fetches the document
when a token names an unknown ``kid`` or the keys are older than ``max_age_s``, and
never more than once per ``min_refresh_interval_s``, so tokens with made-up key ids
cannot make the gateway hammer the issuer. Concurrent lookups share one fetch.

A fetch that fails raises :class:`JwksUnavailable`, which the provider maps to a
503 response because the key source is down and the sender should retry. This module
does not judge tokens. :mod:`hookgate.gateway.jwt_auth` does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from hookgate.gateway.stats import counters

log = structlog.get_logger("hookgate.gateway.jwks")

# A JWKS of a few RSA keys is a few kilobytes (an estimate), so a document past this
# bound comes from a wrong URL.
MAX_DOCUMENT_BYTES = 1024 * 1024
# Shorter RSA keys are too weak to be a signature's only proof of origin.
MIN_KEY_BITS = 2048


class JwksUnavailable(Exception):
    """Raised when the signing keys cannot be fetched, so no token can be judged.

    The sender should retry later. The provider responds with ``status`` (503),
    ``code`` and ``detail``, which name no token and no URL.
    """

    status = 503
    code = "jwks_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = "signing keys could not be fetched, retry later"


class _Document(msgspec.Struct):
    keys: list[dict[str, Any]]


_decode_document = msgspec.json.Decoder(_Document).decode


class JwksCache:
    """RS256 public keys of one JWKS URL, fetched lazily and kept by ``kid``.

    :param url: the JWKS document's URL, e.g. :data:`hookgate.config.GOOGLE_JWKS_URL`.
    :param max_age_s: seconds after a fetch at which keys are refreshed. A lookup
        of a known ``kid`` then still returns at once and starts the refresh in the
        background.
    :param stale_grace_s: seconds past ``max_age_s`` during which known keys stay
        usable while refreshes fail. After that, lookups raise
        :class:`JwksUnavailable` until a fetch succeeds.
    :param min_refresh_interval_s: minimum seconds between two fetch attempts,
        whatever triggered them.
    :param timeout_s: bound on one whole fetch (connect, send, read), in seconds.
    :param client: HTTP client to fetch with; by default the cache makes its own and
        :meth:`aclose` closes it.
    :param clock: monotonic clock in seconds; tests pass their own.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age_s: float = 3600.0,
        stale_grace_s: float = 3600.0,
        min_refresh_interval_s: float = 30.0,
        timeout_s: float = 2.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._max_age_s = max_age_s
        self._stale_grace_s = stale_grace_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._clock = clock

        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at = -math.inf
        self._last_attempt_at = -math.inf
        self._last_error: str | None = None
        self._inflight: asyncio.Task[str | None] | None = None

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        """Return the public key with id ``kid``, or ``None`` if the issuer has none.

        Awaits a fetch only when ``kid`` is unknown or the keys are past their
        grace period, and the rate limit allows one (or one is already running).
        Raises :class:`JwksUnavailable` when the keys cannot be trusted: no fetch
        has succeeded yet, the last one failed and ``kid`` is unknown, or the keys
        are past their grace period.
        """
        key = self._keys.get(kid)
        age = self._clock() - self._fetched_at
        if key is not None and age < self._max_age_s:
            return key
        if key is not None and age < self._max_age_s + self._stale_grace_s:
            self._start_fetch()
            return key

        self._start_fetch()
        if self._inflight is not None:
            # A caller that is cancelled (its client went away) must not cancel the
            # fetch that other callers share.
            error = await asyncio.shield(self._inflight)
            if error is not None:
                raise JwksUnavailable(error)

        age = self._clock() - self._fetched_at
        if age >= self._max_age_s + self._stale_grace_s:
            raise JwksUnavailable(self._last_error or "no keys fetched yet")
        key = self._keys.get(kid)
        if key is None and self._last_error is not None:
            # The issuer may have published this key since the failed fetch.
            raise JwksUnavailable(self._last_error)
        return key

    async def refresh(self) -> None:
        """Fetch the document now, ignoring the rate limit and the keys' age.

        Joins a fetch already running. Raises :class:`JwksUnavailable` if it fails,
        and the keys fetched before stay in place.
        """
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch())
        error = await asyncio.shield(self._inflight)
        if error is not None:
            raise JwksUnavailable(error)

    async def aclose(self) -> None:
        """Cancel a running fetch and close the HTTP client if the cache made it."""
        if self._inflight is not None:
            self._inflight.cancel()
        if self._owns_client:
            await self._client.aclose()

    def _start_fetch(self) -> None:
        # Starts a fetch unless one is running or the rate limit forbids it. The
        # caller decides whether to wait for it.
        if self._inflight is not None:
            return
        if self._clock() - self._last_attempt_at < self._min_refresh_interval_s:
            return
        self._inflight = asyncio.create_task(self._fetch())

    async def _fetch(self) -> str | None:
        # Returns None on success or the reason for the failure. Network and
        # document problems are returned, not raised, so that a background fetch
        # leaves no unretrieved exception behind.
        started = self._clock()
        self._last_attempt_at = started
        try:
            keys, skipped = await self._download()
        except (httpx.HTTPError, TimeoutError, _InvalidDocument) as exc:
            reason = _describe(exc, self._timeout_s)
            self._last_error = reason
            counters["jwks.fetch_failed"] += 1
            log.error(
                "jwks.fetch_failed",
                url=self.url,
                reason=reason,
                error_type=type(exc).__name__,
                cached_keys=len(self._keys),
            )
            return reason
        finally:
            self._inflight = None

        self._keys = keys
        self._fetched_at = self._clock()
        self._last_error = None
        counters["jwks.refreshed"] += 1
        log.info(
            "jwks.refreshed",
            url=self.url,
            keys=len(keys),
            skipped_keys=skipped,
            duration_ms=round((self._fetched_at - started) * 1000, 1),
        )
        return None

    async def _download(self) -> tuple[dict[str, RSAPublicKey], int]:
        body = bytearray()
        async with asyncio.timeout(self._timeout_s):
            request = self._client.stream(
                "GET", self.url, headers={"accept": "application/json"}
            )
            async with request as response:
                if response.status_code != 200:
                    raise _InvalidDocument(f"HTTP status {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise _InvalidDocument(
                            f"document larger than {MAX_DOCUMENT_BYTES} bytes"
                        )
        return _parse_document(bytes(body))


class _InvalidDocument(Exception):
    """The response is not a JWKS document with at least one usable key."""


def _parse_document(body: bytes) -> tuple[dict[str, RSAPublicKey], int]:
    try:
        document = _decode_document(body)
    except msgspec.DecodeError as exc:
        raise _InvalidDocument(f"not a JWKS document: {exc}") from None

    keys: dict[str, RSAPublicKey] = {}
    skipped = 0
    for entry in document.keys:
        key = _rs256_key(entry)
        kid = entry.get("kid")
        # A repeated kid is ambiguous, so only its first key counts.
        if key is None or not isinstance(kid, str) or not kid or kid in keys:
            skipped += 1
            continue
        keys[kid] = key
    if not keys:
        raise _InvalidDocument(
            f"no RSA signing key of at least {MIN_KEY_BITS} bits among"
            f" {len(document.keys)} keys"
        )
    return keys, skipped


def _rs256_key(entry: dict[str, Any]) -> RSAPublicKey | None:
    # Keys for other algorithms or for encryption are skipped without error,
    # because an issuer may publish them beside its RS256 signing keys.
    if entry.get("kty") != "RSA":
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
        return None
    # A JWKS entry with the private exponent is a publishing mistake, so it is
    # never used.
    if "d" in entry:
        return None
    if not isinstance(entry.get("n"), str) or not isinstance(entry.get("e"), str):
        return None
    try:
        key = RSAAlgorithm.from_jwk(entry)
    except (InvalidKeyError, ValueError):
        return None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        return None
    return key


def _describe(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {timeout_s} s"
    if isinstance(exc, httpx.HTTPError):
        return f"request failed: {exc}" if str(exc) else "request failed"
    return str(exc)
