"""GitHub deliveries against a real gateway process and Redis."""

from __future__ import annotations

import json

import httpx
import redis

from hookgate.tests.conftest import GITHUB_SECRET_EXPIRED, GITHUB_SECRET_NEXT
from hookgate.tests.gateway.helpers import entry_count, github_headers

URL = "/hooks/acme-github"
BODY = (
    b'{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246",'
    b'"repository":{"id":1296269,"full_name":"octocat/Hello-World"}}'
)
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def test_signed_delivery_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post(URL, content=BODY, headers=github_headers(BODY))

    assert response.status_code == 202
    event_id = response.json()["event_id"]
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    fields = entry[1]
    assert fields[b"event_id"] == event_id.encode()
    assert fields[b"type"] == b"github.event"
    assert fields[b"provider"] == b"github"
    assert fields[b"source"] == b"acme-github"
    assert fields[b"provider_event_id"] == DELIVERY.encode()
    assert fields[b"body"] == BODY
    headers = json.loads(fields[b"headers"])
    assert headers["x-github-event"] == "push"
    assert headers["x-github-delivery"] == DELIVERY
    assert headers["x-github-hook-id"] == "292430182"
    assert entry_count(redis_client) == 1


def test_ping_event_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = b'{"zen":"Design for failure.","hook_id":292430182}'
    headers = github_headers(body, event="ping", delivery="ping-1")

    response = http.post(URL, content=body, headers=headers)

    assert response.status_code == 202
    (entry,) = redis_client.xrange("hg:{acme}:ingest")
    assert json.loads(entry[1][b"headers"])["x-github-event"] == "ping"


class TestPublishedVector:
    # From GitHub's "Validating webhook deliveries" page, section "Testing the
    # webhook payload validation"; the source's first secret is the page's secret.
    # The body is not JSON, so a request whose signature verifies ends in 400
    # invalid_json, while one that does not verify ends in 401.
    BODY = b"Hello, World!"
    HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    def test_published_vector_verifies(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = {**github_headers(self.BODY), "x-hub-signature-256": self.HEADER}

        response = http.post(URL, content=self.BODY, headers=headers)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_json"
        assert entry_count(redis_client) == 0

    def test_altered_vector_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        header = self.HEADER[:-1] + "6"
        headers = {**github_headers(self.BODY), "x-hub-signature-256": header}

        response = http.post(URL, content=self.BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0


def test_tampered_body_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = github_headers(BODY)

    response = http.post(URL, content=BODY.replace(b"main", b"evil"), headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_signature",
        "detail": "no signature matched",
    }
    assert entry_count(redis_client) == 0


def test_unknown_secret_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = github_headers(BODY, secret="not-a-secret-of-this-source")

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert entry_count(redis_client) == 0


def test_rotated_secret_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = github_headers(BODY, secret=GITHUB_SECRET_NEXT)

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202
    assert entry_count(redis_client) == 1


def test_expired_secret_rejected(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = github_headers(BODY, secret=GITHUB_SECRET_EXPIRED)

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert entry_count(redis_client) == 0


def test_uppercase_hex_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    headers = github_headers(BODY)
    digest = headers["x-hub-signature-256"].removeprefix("sha256=")
    headers["x-hub-signature-256"] = "sha256=" + digest.upper()

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 202


def test_repeat_delivery_written_once(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = github_headers(BODY, delivery="repeat-1")

    first = http.post(URL, content=BODY, headers=headers)
    second = http.post(URL, content=BODY, headers=headers)

    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json()["event_id"] == first.json()["event_id"]
    assert entry_count(redis_client) == 1


def test_missing_signature_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = github_headers(BODY)
    del headers["x-hub-signature-256"]

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "missing_signature_headers"
    assert "x-hub-signature-256" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_missing_delivery_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = github_headers(BODY)
    del headers["x-github-delivery"]

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "missing_event_id"
    assert "x-github-delivery" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_overlong_delivery_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = github_headers(BODY, delivery="d" * 257)

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_event_id"
    assert entry_count(redis_client) == 0


def test_empty_signature_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {**github_headers(BODY), "x-hub-signature-256": ""}

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature_header"
    assert entry_count(redis_client) == 0


def test_malformed_signatures_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    digest = github_headers(BODY)["x-hub-signature-256"].removeprefix("sha256=")
    for header in (
        "sha1=" + digest[:40],
        digest,
        "sha256=" + digest[:-2],
        "sha256=" + digest[:-1] + "g",
        "sha256= " + digest,
    ):
        headers = {**github_headers(BODY), "x-hub-signature-256": header}

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 400, header
        assert response.json()["error"] == "invalid_signature_header", header
    assert entry_count(redis_client) == 0


def test_oversized_signature_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = {**github_headers(BODY), "x-hub-signature-256": "sha256=" + "a" * 5000}

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_signature_header"
    assert "4096" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_conflicting_signatures_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    signed = github_headers(BODY)
    wrong = github_headers(BODY, secret="another")["x-hub-signature-256"]
    headers = [(name, value) for name, value in signed.items()]
    headers.append(("x-hub-signature-256", wrong))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "conflicting_headers"
    assert entry_count(redis_client) == 0


def test_conflicting_event_names_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    headers = list(github_headers(BODY).items())
    headers.append(("x-github-event", "delete"))

    response = http.post(URL, content=BODY, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "conflicting_headers"
    assert entry_count(redis_client) == 0


def test_form_encoded_payload_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%7D"
    headers = {
        **github_headers(body),
        "content-type": "application/x-www-form-urlencoded",
    }

    response = http.post(URL, content=body, headers=headers)

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_content_type"
    assert "application/json" in response.json()["detail"]
    assert entry_count(redis_client) == 0


def test_non_object_payload_rejected(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = b'["not", "an", "event"]'

    response = http.post(URL, content=body, headers=github_headers(body))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert entry_count(redis_client) == 0
