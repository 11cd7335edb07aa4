"""RSA signing keys, a loopback JWKS server and token builders for the JWT tests."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

PUBSUB_AUDIENCE = "https://hooks.example.com/hooks/globex-gmail"
SERVICE_ACCOUNT = "gmail-push@globex-mail.iam.gserviceaccount.com"
GRAPH_APP_ID = "8e460676-ae3f-4b1e-8790-ee0fb5d6148f"
GRAPH_TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
OTHER_TENANT = "2f6a1c7e-93b4-4d0a-8c21-5e7f9a0b3d14"
GRAPH_PUBLISHER = "0bf30f3b-4a52-48df-9a82-234910c4a086"


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair published in the JWKS under ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        entry: dict[str, Any] = RSAAlgorithm.to_jwk(
            self.private_key.public_key(), as_dict=True
        )
        return {**entry, "kid": self.kid, "use": "sig", "alg": "RS256"}

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """Sign ``claims`` with RS256, naming ``kid`` (by default this key's)."""
        return jwt.encode(
            claims,
            self.private_key,
            algorithm="RS256",
            headers={"kid": kid or self.kid},
        )


@functools.cache
def signing_key(kid: str, bits: int = 2048) -> SigningKey:
    """Return the test session's key for ``kid``, generated on first use."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return SigningKey(kid=kid, private_key=private_key)


def pubsub_claims(*, without: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    """Claims of a Pub/Sub push token issued now, shaped like Google's example."""
    now = int(time.time())
    claims = {
        "aud": PUBSUB_AUDIENCE,
        "azp": "113774264463038321964",
        "email": SERVICE_ACCOUNT,
        "email_verified": True,
        "exp": now + 3600,
        "iat": now,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
    }
    claims.update(overrides)
    for name in without:
        del claims[name]
    return claims


def graph_claims(
    *,
    tenant: str = GRAPH_TENANT,
    without: tuple[str, ...] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """Claims of a Graph validation token issued now, shaped like Microsoft's."""
    now = int(time.time())
    claims = {
        "aud": GRAPH_APP_ID,
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "appid": GRAPH_PUBLISHER,
        "appidacr": "2",
        "idp": f"https://sts.windows.net/{tenant}/",
        "tid": tenant,
        "ver": "1.0",
    }
    claims.update(overrides)
    for name in without:
        del claims[name]
    return claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
    encoded_header = _b64url(json.dumps(header).encode())
    encoded_claims = _b64url(json.dumps(claims).encode())
    return f"{encoded_header}.{encoded_claims}"


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Build a token with an empty signature, as ``alg: none`` tokens have."""
    return _signing_input(header, claims) + "."


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """Build an HS256 token by hand, since PyJWT refuses a public key as secret."""
    signing_input = _signing_input(header, claims)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


class FakeClock:
    """A monotonic clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """An HTTP/1.1 server on 127.0.0.1 that serves a JWKS document.

    Tests change ``keys`` to rotate them, set ``status``, ``body`` or ``delay_s``
    to make the server fail, and read ``fetches`` to count requests.
    """

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.status = 200
        self.body: bytes | None = None
        self.delay_s = 0.0
        self.fetches = 0
        self._fetched = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/oauth2/v3/certs"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening and drop open connections, so later fetches are refused."""
        if self._server is None:
            return
        self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await self._server.wait_closed()

    async def wait_for_fetches(self, count: int, timeout_s: float = 2.0) -> None:
        """Wait until ``count`` requests have arrived, for fetches in the background."""
        async with asyncio.timeout(timeout_s):
            while self.fetches < count:
                self._fetched.clear()
                await self._fetched.wait()

    def document(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps({"keys": [key.jwk for key in self.keys]}).encode()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.fetches += 1
            self._fetched.set()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            body = self.document()
            head = (
                f"HTTP/1.1 {self.status} Test\r\n"
                "content-type: application/json\r\n"
                f"content-length: {len(body)}\r\n"
                "connection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
