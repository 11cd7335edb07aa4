"""OIDC-authenticated Pub/Sub pushes and Graph rich notifications, end to end.

A thread serves the JWKS on loopback; the gateway process fetches it like it would
fetch Google's or Microsoft's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa

from hookgate.tests.conftest import (
    TEST_CONFIG,
    Process,
    RedisServer,
    free_port,
    start_gateway,
)
from hookgate.tests.gateway.helpers import entry_count, gmail_push, graph_item
from hookgate.tests.gateway.tokens import (
    GRAPH_APP_ID,
    PUBSUB_AUDIENCE,
    SERVICE_ACCOUNT,
    SigningKey,
    graph_claims,
    pubsub_claims,
    signing_key,
    unsigned_token,
)

KEY = signing_key("test-key-1")


class JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"keys": [KEY.jwk]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def token_gateway(
    redis_server: RedisServer, jwks_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    dead_url = f"http://127.0.0.1:{free_port()}/keys"
    config = (
        TEST_CONFIG
        + f"""
[[sources]]
id = "acme-gmail-oidc"
tenant = "acme"
provider = "gmail-pubsub"
[sources.oidc]
audience = "{PUBSUB_AUDIENCE}"
service_account = "{SERVICE_ACCOUNT}"
jwks_url = "{jwks_url}"

[[sources]]
id = "acme-gmail-keys-down"
tenant = "acme"
provider = "gmail-pubsub"
[sources.oidc]
audience = "{PUBSUB_AUDIENCE}"
service_account = "{SERVICE_ACCOUNT}"
jwks_url = "{dead_url}"

[[sources]]
id = "acme-outlook-rich"
tenant = "acme"
provider = "graph"
secret_env = ["TEST_GRAPH_CLIENT_STATE"]
[sources.graph]
app_id = "{GRAPH_APP_ID}"
jwks_url = "{jwks_url}"
"""
    )
    directory: Path = tmp_path_factory.mktemp("token-gateway")
    process = start_gateway(directory, redis_server.url, config=config)
    yield process
    process.stop()


@pytest.fixture
def client(token_gateway: Process) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=token_gateway.url, timeout=10) as http:
        yield http


def bearer(key: SigningKey, **overrides: object) -> dict[str, str]:
    return {"authorization": f"Bearer {key.sign(pubsub_claims(**overrides))}"}


def rich_collection(tokens: list[str]) -> bytes:
    item = graph_item()
    item["encryptedContent"] = {
        "data": "ZW5jcnlwdGVkIHJlc291cmNlIGRhdGE=",
        "dataSignature": "c2lnbmF0dXJl",
        "dataKey": "a2V5",
        "encryptionCertificateId": "cert-1",
        "encryptionCertificateThumbprint": "07293748CC064953A3052FB978C735FB89674B8C",
    }
    return json.dumps({"value": [item], "validationTokens": tokens}).encode()


def test_oidc_push_accepted(client: httpx.Client, redis_client: redis.Redis) -> None:
    response = client.post(
        "/hooks/acme-gmail-oidc", content=gmail_push(), headers=bearer(KEY)
    )

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_oidc_wrong_audience_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = bearer(KEY, aud="https://elsewhere.example/push")

    response = client.post(
        "/hooks/acme-gmail-oidc", content=gmail_push(), headers=headers
    )

    assert response.status_code == 401
    assert response.json()["error"] == "wrong_audience"
    assert entry_count(redis_client) == 0


def test_oidc_missing_token_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    response = client.post("/hooks/acme-gmail-oidc", content=gmail_push())

    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert entry_count(redis_client) == 0


def test_oidc_alg_none_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    token = unsigned_token({"alg": "none", "kid": KEY.kid}, pubsub_claims())

    response = client.post(
        "/hooks/acme-gmail-oidc",
        content=gmail_push(),
        headers={"authorization": f"Bearer {token}"},
    )

    assert response.status_code == 401
    assert entry_count(redis_client) == 0


def test_oidc_query_token_not_accepted(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    response = client.post(
        "/hooks/acme-gmail-oidc", params={"token": "anything"}, content=gmail_push()
    )

    assert response.status_code == 401
    assert entry_count(redis_client) == 0


def test_keys_unreachable_answers_503(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    response = client.post(
        "/hooks/acme-gmail-keys-down", content=gmail_push(), headers=bearer(KEY)
    )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert entry_count(redis_client) == 0


def test_rich_notification_accepted(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    body = rich_collection([KEY.sign(graph_claims())])

    response = client.post("/hooks/acme-outlook-rich", content=body)

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    stored = json.loads(entry[1][b"body"])
    assert stored["encryptedContent"]["data"] == "ZW5jcnlwdGVkIHJlc291cmNlIGRhdGE="


def test_rich_invalid_token_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    # Same kid as the published key, but another private key.
    impostor = SigningKey(
        kid=KEY.kid,
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    forged = impostor.sign(graph_claims())

    response = client.post(
        "/hooks/acme-outlook-rich", content=rich_collection([forged])
    )

    assert response.status_code == 401
    assert entry_count(redis_client) == 0


def test_rich_wrong_app_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    token = KEY.sign(graph_claims(aud="00000000-0000-0000-0000-000000000000"))

    response = client.post("/hooks/acme-outlook-rich", content=rich_collection([token]))

    assert response.status_code == 401
    assert response.json()["error"] == "wrong_audience"
    assert entry_count(redis_client) == 0


def test_rich_without_tokens_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    body = json.loads(rich_collection([]))
    del body["validationTokens"]

    response = client.post("/hooks/acme-outlook-rich", content=json.dumps(body))

    assert response.status_code == 401
    assert response.json()["error"] == "missing_validation_tokens"
    assert entry_count(redis_client) == 0


def test_rich_to_plain_source_rejected(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    body = rich_collection([KEY.sign(graph_claims())])

    response = client.post("/hooks/acme-outlook", content=body)

    assert response.status_code == 401
    assert response.json()["error"] == "rich_notifications_not_configured"
    assert entry_count(redis_client) == 0
