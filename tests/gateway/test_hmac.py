"""Generic HMAC deliveries against a real gateway process and Redis.

The sources are in ``tests/conftest.py``: ``acme-hmac`` signs
``{id}.{timestamp}.{body}`` as ``sha256=<hex>``, ``acme-hmac-plain`` keeps every
default, ``acme-hmac-b64`` sends several ``v1,<base64>`` SHA-512 signatures, and
``acme-hmac-sha1`` signs ``hookgate:{body}`` with SHA-1.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import redis

from hookgate.tests.conftest import HMAC_SECRET, HMAC_SECRET_EXPIRED, HMAC_SECRET_NEXT
from hookgate.tests.gateway.helpers import entry_count, hmac_digest, unix_now

URL = "/hooks/acme-hmac"
BODY = b'{"type":"order.created","data":{"order":"ord_1","total":"12.50"}}'
EVENT_ID = "delivery-0001"


def signed_headers(
    body: bytes = BODY,
    *,
    secret: str = HMAC_SECRET,
    event_id: str = EVENT_ID,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Sign ``body`` as the ``acme-hmac`` source expects."""
    timestamp = unix_now() if timestamp is None else timestamp
    content = f"{event_id}.{timestamp}.".encode() + body
    return {
        "x-signature": "sha256=" + hmac_digest(secret, content),
        "x-timestamp": str(timestamp),
        "x-event-id": event_id,
        "content-type": "application/json",
    }


class TestFullScheme:
    def test_signed_delivery_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(URL, content=BODY, headers=signed_headers())

        assert response.status_code == 202
        event_id = response.json()["event_id"]
        (entry,) = redis_client.xrange("hg:{acme}:ingest")
        fields = entry[1]
        assert fields[b"event_id"] == event_id.encode()
        assert fields[b"type"] == b"hmac.event"
        assert fields[b"provider"] == b"hmac"
        assert fields[b"source"] == b"acme-hmac"
        assert fields[b"provider_event_id"] == EVENT_ID.encode()
        assert fields[b"body"] == BODY
        headers = json.loads(fields[b"headers"])
        assert headers["x-event-id"] == EVENT_ID
        assert "x-timestamp" in headers
        assert "x-signature" in headers
        assert entry_count(redis_client) == 1

    def test_tampered_body_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(
            URL, content=BODY.replace(b"12.50", b"0.01"), headers=signed_headers()
        )

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0

    def test_tampered_event_id_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = {**signed_headers(), "x-event-id": "delivery-0002"}

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0

    def test_tampered_timestamp_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers()
        headers["x-timestamp"] = str(int(headers["x-timestamp"]) - 1)

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0

    def test_unknown_secret_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers(secret="not-a-secret-of-this-source")

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_signature",
            "detail": "no signature matched",
        }
        assert entry_count(redis_client) == 0

    def test_rotated_secret_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers(secret=HMAC_SECRET_NEXT)

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 202
        assert entry_count(redis_client) == 1

    def test_expired_secret_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers(secret=HMAC_SECRET_EXPIRED)

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0

    def test_old_timestamp_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers(timestamp=unix_now() - 360)

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "stale_timestamp"
        assert entry_count(redis_client) == 0

    def test_future_timestamp_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers(timestamp=unix_now() + 360)

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 401
        assert response.json()["error"] == "stale_timestamp"
        assert entry_count(redis_client) == 0

    def test_timestamp_within_tolerance_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers(timestamp=unix_now() - 240)

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 202
        assert entry_count(redis_client) == 1

    def test_invalid_timestamps_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        for timestamp in ("yesterday", "", "1700000000.5", "-1700000000", "9" * 13):
            headers = {**signed_headers(), "x-timestamp": timestamp}

            response = http.post(URL, content=BODY, headers=headers)

            assert response.status_code == 400, timestamp
            assert response.json()["error"] == "invalid_timestamp", timestamp
            assert "x-timestamp" in response.json()["detail"], timestamp
        assert entry_count(redis_client) == 0

    def test_missing_signature_headers_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        for missing in ("x-signature", "x-timestamp"):
            headers = signed_headers()
            del headers[missing]

            response = http.post(URL, content=BODY, headers=headers)

            assert response.status_code == 400, missing
            assert response.json()["error"] == "missing_signature_headers", missing
            assert missing in response.json()["detail"], missing
        assert entry_count(redis_client) == 0

    def test_missing_event_id_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers()
        del headers["x-event-id"]

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 400
        assert response.json()["error"] == "missing_event_id"
        assert "x-event-id" in response.json()["detail"]
        assert entry_count(redis_client) == 0

    def test_signature_without_prefix_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = signed_headers()
        headers["x-signature"] = headers["x-signature"].removeprefix("sha256=")

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature_header"
        assert "sha256=" in response.json()["detail"]
        assert entry_count(redis_client) == 0

    def test_malformed_signatures_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        digest = signed_headers()["x-signature"].removeprefix("sha256=")
        for signature in (digest[:-2], digest[:-1] + "x", digest + "00"):
            headers = {**signed_headers(), "x-signature": "sha256=" + signature}

            response = http.post(URL, content=BODY, headers=headers)

            assert response.status_code == 400, signature
            assert response.json()["error"] == "invalid_signature_header", signature
        assert entry_count(redis_client) == 0

    def test_oversized_signature_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        headers = {**signed_headers(), "x-signature": "sha256=" + "0" * 5000}

        response = http.post(URL, content=BODY, headers=headers)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature_header"
        assert entry_count(redis_client) == 0

    def test_conflicting_headers_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        for name in ("x-signature", "x-timestamp", "x-event-id"):
            headers = list(signed_headers().items())
            headers.append((name, "1"))

            response = http.post(URL, content=BODY, headers=headers)

            assert response.status_code == 400, name
            assert response.json()["error"] == "conflicting_headers", name
        assert entry_count(redis_client) == 0

    def test_repeat_delivery_written_once(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        first = http.post(URL, content=BODY, headers=signed_headers())
        second = http.post(
            URL, content=BODY, headers=signed_headers(timestamp=unix_now() - 5)
        )

        assert first.status_code == 202
        assert second.status_code == 202
        assert second.json()["event_id"] == first.json()["event_id"]
        assert entry_count(redis_client) == 1


class TestDefaults:
    URL = "/hooks/acme-hmac-plain"

    def headers(self, body: bytes, secret: str = HMAC_SECRET) -> dict[str, str]:
        return {"x-plain-signature": hmac_digest(secret, body)}

    def test_body_digest_is_event_id(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(self.URL, content=BODY, headers=self.headers(BODY))

        assert response.status_code == 202
        (entry,) = redis_client.xrange("hg:{acme}:ingest")
        digest = hashlib.sha256(BODY).hexdigest()
        assert entry[1][b"provider_event_id"] == digest.encode()

    def test_same_body_written_once(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        first = http.post(self.URL, content=BODY, headers=self.headers(BODY))
        second = http.post(self.URL, content=BODY, headers=self.headers(BODY))

        assert second.json()["event_id"] == first.json()["event_id"]
        assert entry_count(redis_client) == 1

    def test_any_json_value_accepted(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        body = b'[{"event":"delivered"},{"event":"opened"}]'

        response = http.post(self.URL, content=body, headers=self.headers(body))

        assert response.status_code == 202
        assert entry_count(redis_client) == 1

    def test_invalid_json_rejected_after_verification(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        body = b"event=delivered"

        signed = http.post(self.URL, content=body, headers=self.headers(body))
        unsigned = http.post(
            self.URL, content=body, headers=self.headers(body, secret="other")
        )

        assert signed.status_code == 400
        assert signed.json()["error"] == "invalid_json"
        assert unsigned.status_code == 401
        assert entry_count(redis_client) == 0

    def test_missing_signature_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(self.URL, content=BODY)

        assert response.status_code == 400
        assert response.json()["error"] == "missing_signature_headers"
        assert entry_count(redis_client) == 0

    def test_empty_signature_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        response = http.post(self.URL, content=BODY, headers={"x-plain-signature": ""})

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature_header"
        assert entry_count(redis_client) == 0


class TestBase64Candidates:
    URL = "/hooks/acme-hmac-b64"

    def signature(self, secret: str, body: bytes = BODY) -> str:
        digest = hmac_digest(secret, body, algorithm="sha512", encoding="base64")
        return f"v1,{digest}"

    def test_any_candidate_may_match(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        header = f"{self.signature('retired')} {self.signature(HMAC_SECRET)}"

        response = http.post(self.URL, content=BODY, headers={"x-signatures": header})

        assert response.status_code == 202
        assert entry_count(redis_client) == 1

    def test_no_candidate_matches(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        header = f"{self.signature('retired')} {self.signature('other')}"

        response = http.post(self.URL, content=BODY, headers={"x-signatures": header})

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert entry_count(redis_client) == 0

    def test_candidates_without_prefix_ignored(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        valid = self.signature(HMAC_SECRET).removeprefix("v1,")
        header = f"v2,{valid} {valid}"

        response = http.post(self.URL, content=BODY, headers={"x-signatures": header})

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature_header"
        assert entry_count(redis_client) == 0

    def test_hex_digest_rejected_as_malformed(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        hex_digest = hmac_digest(HMAC_SECRET, BODY, algorithm="sha512")

        response = http.post(
            self.URL, content=BODY, headers={"x-signatures": f"v1,{hex_digest}"}
        )

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature_header"
        assert "sha512 base64" in response.json()["detail"]
        assert entry_count(redis_client) == 0


class TestSha1Template:
    URL = "/hooks/acme-hmac-sha1"

    def test_literal_text_signed(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        digest = hmac_digest(HMAC_SECRET, b"hookgate:" + BODY, algorithm="sha1")

        response = http.post(
            self.URL, content=BODY, headers={"x-hub-signature": f"sha1={digest}"}
        )

        assert response.status_code == 202
        assert entry_count(redis_client) == 1

    def test_body_alone_rejected(
        self, http: httpx.Client, redis_client: redis.Redis
    ) -> None:
        digest = hmac_digest(HMAC_SECRET, BODY, algorithm="sha1")

        response = http.post(
            self.URL, content=BODY, headers={"x-hub-signature": f"sha1={digest}"}
        )

        assert response.status_code == 401
        assert entry_count(redis_client) == 0
