"""Verification of the JWTs that two providers sign: Pub/Sub push and Graph.

- :func:`verify_pubsub_token` checks the OIDC token in a Pub/Sub push request's
  ``Authorization`` header, signed by Google.
- :func:`verify_graph_validation_tokens` checks the ``validationTokens`` of a
  Microsoft Graph rich notification collection, signed by the Microsoft identity
  platform.

Both accept RS256 only and take the public key from a
:class:`~hookgate.gateway.jwks.JwksCache` by the token's ``kid``. A provider maps
the two exceptions to its response. Each carries ``status``, a stable ``code`` and a
plain ``detail`` that never contains the token::

    Exception
    ├── TokenRejected     401: the token is missing, malformed, forged, expired or
    │                     meant for someone else
    └── JwksUnavailable   503: the signing keys could not be fetched; retry later

This module reads no configuration and logs nothing: the provider names the source
in its own rejection log line.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import jwt

from hookgate.gateway.jwks import JwksCache, JwksUnavailable

__all__ = [
    "GOOGLE_ISSUERS",
    "GRAPH_PUBLISHER_APP_ID",
    "JwksCache",
    "JwksUnavailable",
    "TokenRejected",
    "verify_graph_validation_tokens",
    "verify_pubsub_token",
]

# Google's OpenID Connect reference gives "https://accounts.google.com" as the
# issuer, and "accounts.google.com" for legacy implementations.
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")

# The appid of Microsoft Graph's change notification publisher, which every
# validation token must carry. Source: Microsoft Learn, "Set up change notifications
# that include resource data (rich notifications)", section "How to validate",
# https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data
GRAPH_PUBLISHER_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"

# The issuer of Graph's validation tokens (v1.0 tokens of the Microsoft identity
# platform), per the same page: https://sts.windows.net/{tenant id}/.
_GRAPH_ISSUER = re.compile(
    r"https://sts\.windows\.net/"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/"
)

# Google's documented example token is under 1 KB. This bound leaves wide room for
# larger claim sets and rejects a huge header before any base64 decoding.
MAX_TOKEN_CHARS = 16 * 1024

_PUBSUB_CLAIMS = ("iss", "aud", "exp", "iat", "email", "email_verified")
_GRAPH_CLAIMS = ("iss", "aud", "exp")


class TokenRejected(Exception):
    """Raised when a token does not prove that the provider sent the request.

    ``code`` is one of:

    - ``missing_token``: no ``Authorization`` header, or no validation tokens.
    - ``malformed_token``: not ``Bearer <JWT>``, not a JWT, or no ``kid``.
    - ``unsupported_algorithm``: ``alg`` is not RS256 (``none`` and HS256 too).
    - ``unknown_key``: the issuer publishes no key with the token's ``kid``.
    - ``invalid_signature``: the signature does not match the key.
    - ``expired_token``: ``exp`` is past, beyond the leeway.
    - ``token_not_yet_valid``: ``iat`` or ``nbf`` is in the future, beyond the
      leeway.
    - ``wrong_issuer``, ``wrong_tenant``, ``wrong_audience``: ``iss`` or ``aud``
      is not the expected value.
    - ``wrong_service_account``: Pub/Sub's ``email`` is not the configured service
      account, or ``email_verified`` is not true.
    - ``wrong_publisher``: Graph's ``appid``/``azp`` is not Graph's change
      notification publisher.
    - ``invalid_token``: a required claim is missing or has the wrong type.
    """

    status = 401

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def verify_pubsub_token(
    authorization_header: str | None,
    *,
    audience: str,
    service_account: str,
    jwks: JwksCache,
    leeway_s: int = 60,
) -> dict[str, Any]:
    """Verify the OIDC token of a Pub/Sub push request and return its claims.

    :param authorization_header: the request's ``Authorization`` value, or ``None``.
    :param audience: the push subscription's configured audience (by default
        Pub/Sub uses the push endpoint URL).
    :param service_account: email of the service account the subscription signs
        tokens as.
    :param jwks: Google's signing keys, usually of
        :data:`~hookgate.config.GOOGLE_JWKS_URL`.
    :param leeway_s: allowed clock difference for ``exp``, ``nbf`` and ``iat``, in
        seconds.

    Awaits the key cache, which touches the network only for an unknown ``kid`` or
    old keys. Raises :class:`TokenRejected` or
    :class:`~hookgate.gateway.jwks.JwksUnavailable`.
    """
    token = _bearer_token(authorization_header)

    claims = await _decode(
        token,
        jwks,
        audience=audience,
        issuer=GOOGLE_ISSUERS,
        leeway_s=leeway_s,
        required=_PUBSUB_CLAIMS,
    )

    if claims["email"] != service_account:
        raise TokenRejected(
            "wrong_service_account",
            "token email is not the push subscription's service account",
        )
    if claims["email_verified"] is not True:
        raise TokenRejected("wrong_service_account", "token email is not verified")
    return claims


async def verify_graph_validation_tokens(
    tokens: Sequence[str],
    *,
    app_id: str,
    tenant_ids: Collection[str] | None = None,
    jwks: JwksCache,
    leeway_s: int = 60,
) -> None:
    """Verify every validation token of a Graph rich notification collection.

    Follows "How to validate" in Microsoft's "Set up change notifications that
    include resource data": each token must be signed by a key of the Microsoft
    identity platform, not expired, issued by ``https://sts.windows.net/{tenant}/``,
    meant for ``app_id``, and issued to Graph's change notification publisher
    (:data:`GRAPH_PUBLISHER_APP_ID`).

    :param tokens: the collection's ``validationTokens``; Graph sends one per app
        and tenant with an item in the collection.
    :param app_id: the application (client) id that created the subscription; the
        tokens' ``aud``.
    :param tenant_ids: if given, the only tenants whose tokens are accepted
        (compared without regard to case); otherwise any tenant.
    :param jwks: Microsoft's signing keys, usually of
        :data:`~hookgate.config.MICROSOFT_JWKS_URL`.
    :param leeway_s: allowed clock difference for ``exp``, ``nbf`` and ``iat``, in
        seconds.

    Raises :class:`TokenRejected` for the first token that fails, its index in
    ``detail``, or :class:`~hookgate.gateway.jwks.JwksUnavailable`.

    NOTE: Microsoft's page advises responding 202 even when validation fails and
    dropping the collection afterwards, so a forger cannot probe the checks.
    Whether to respond 401 instead is the provider's choice.
    """
    if not tokens:
        raise TokenRejected(
            "missing_token", "notification collection has no validationTokens"
        )
    allowed_tenants = None
    if tenant_ids is not None:
        allowed_tenants = frozenset(tenant.lower() for tenant in tenant_ids)

    for index, token in enumerate(tokens):
        try:
            await _verify_graph_token(
                token,
                app_id=app_id,
                allowed_tenants=allowed_tenants,
                jwks=jwks,
                leeway_s=leeway_s,
            )
        except TokenRejected as exc:
            raise TokenRejected(
                exc.code, f"validation token {index}: {exc.detail}"
            ) from None


async def _verify_graph_token(
    token: str,
    *,
    app_id: str,
    allowed_tenants: frozenset[str] | None,
    jwks: JwksCache,
    leeway_s: int,
) -> None:
    # The issuer names the tenant, so it is matched here and not by PyJWT.
    claims = await _decode(
        token,
        jwks,
        audience=app_id,
        issuer=None,
        leeway_s=leeway_s,
        required=_GRAPH_CLAIMS,
    )

    issuer = claims["iss"]
    match = _GRAPH_ISSUER.fullmatch(issuer) if isinstance(issuer, str) else None
    if match is None:
        raise TokenRejected(
            "wrong_issuer", "token issuer is not https://sts.windows.net/{tenant id}/"
        )
    if allowed_tenants is not None and match.group(1).lower() not in allowed_tenants:
        raise TokenRejected(
            "wrong_tenant", "token tenant is not among the configured tenant ids"
        )

    # v1.0 tokens name the client in appid and v2.0 tokens in azp. Where both are
    # present, both must be the publisher.
    publishers = [claims[name] for name in ("appid", "azp") if name in claims]
    if not publishers or any(p != GRAPH_PUBLISHER_APP_ID for p in publishers):
        raise TokenRejected(
            "wrong_publisher",
            "token appid/azp is not Microsoft Graph's change notification publisher",
        )


def _bearer_token(header: str | None) -> str:
    if header is None or not header.strip():
        raise TokenRejected(
            "missing_token",
            "no Authorization header; enable authentication on the push subscription",
        )
    # HTTP authentication schemes are case-insensitive.
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise TokenRejected(
            "malformed_token", "Authorization header is not 'Bearer <JWT>'"
        )
    return token


async def _decode(
    token: str,
    jwks: JwksCache,
    *,
    audience: str,
    issuer: Sequence[str] | None,
    leeway_s: int,
    required: Sequence[str],
) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected(
            "malformed_token", f"token is longer than {MAX_TOKEN_CHARS} characters"
        )
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        # PyJWT raises DecodeError for bad encoding and its base class for bad
        # header values such as a non-string kid or an invalid crit.
        raise TokenRejected("malformed_token", "token is not a valid JWT") from None

    # Checked before the key lookup, so that a token with another algorithm never
    # causes a fetch, and "none" or HS256 keyed with the public key never gets near
    # a verifier.
    if header.get("alg") != "RS256":
        raise TokenRejected("unsupported_algorithm", "token algorithm is not RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("malformed_token", "token header has no kid")

    key = await jwks.get_key(kid)
    if key is None:
        raise TokenRejected(
            "unknown_key", "token is signed with a key the issuer does not publish"
        )

    # strict_aud rejects an aud list, because both providers send one string and
    # Pub/Sub's OidcToken reference states that a list is not supported.
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": list(required), "strict_aud": True},
        )
    except jwt.PyJWTError as exc:
        raise _rejection(exc) from None
    return claims


def _rejection(exc: jwt.PyJWTError) -> TokenRejected:
    # Subclasses come before their bases, because InvalidSignatureError is a
    # DecodeError and every error here is an InvalidTokenError.
    if isinstance(exc, jwt.InvalidSignatureError):
        return TokenRejected("invalid_signature", "token signature does not match")
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenRejected("expired_token", "token has expired")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return TokenRejected("token_not_yet_valid", "token is not valid yet")
    if isinstance(exc, jwt.InvalidAudienceError):
        return TokenRejected("wrong_audience", "token audience does not match")
    if isinstance(exc, jwt.InvalidIssuerError):
        return TokenRejected("wrong_issuer", "token issuer is not the expected one")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return TokenRejected("invalid_token", f"token has no {exc.claim!r} claim")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return TokenRejected("unsupported_algorithm", "token algorithm is not RS256")
    if isinstance(exc, jwt.DecodeError):
        return TokenRejected("malformed_token", "token is not a valid JWT")
    return TokenRejected("invalid_token", f"token claims are invalid: {exc}")
