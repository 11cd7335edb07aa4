"""No secret, signature, token or body reaches the logs or /metrics.

One scenario runs a real gateway and a real consumer with JSON logs on a private
Redis. It sends webhooks down the success path and every rejection path, with
marker values in secrets, headers and bodies, makes the consumer dead-letter an
entry, scrapes both processes' /metrics, and finally stops Redis for a 503. The
tests then search everything the processes wrote.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
import redis

from hookgate.entry import ENTRY_VERSION
from hookgate.tests.conftest import (
    GMAIL_TOKEN,
    MAX_BODY,
    STANDARD_SECRET,
    TEST_ENV,
    Process,
    free_port,
    start_gateway,
    start_hookgate,
    start_redis,
    write_config,
)
from hookgate.tests.gateway.helpers import (
    github_headers,
    gmail_push,
    graph_item,
    hmac_digest,
    minutes_ago,
    standard_headers,
    stripe_headers,
    unix_now,
)

# Built at run time, so no source line or traceback that a process prints can
# contain them by accident.
RUN = uuid.uuid4().hex[:12]
BODY_MARKER = f"body-marker-{RUN}"
AUTHORIZATION_MARKER = f"authorization-marker-{RUN}"
HEADER_MARKER = f"header-marker-{RUN}"
WRONG_TOKEN_MARKER = f"wrong-token-marker-{RUN}"
WRONG_STATE_MARKER = f"wrong-client-state-marker-{RUN}"
WRONG_SIGNATURE_MARKER = f"v1,{base64.b64encode(RUN.encode() * 3).decode()}"
DEAD_LETTER_MARKER = f"dead-letter-body-marker-{RUN}"


@dataclass
class Scenario:
    """What the scenario sent and what the processes wrote."""

    statuses: dict[str, int] = field(default_factory=dict)
    signatures: list[str] = field(default_factory=list)
    gateway_log: str = ""
    consumer_log: str = ""
    metrics: str = ""
    consumer_metrics: str = ""


def marked_body(kind: str) -> bytes:
    return json.dumps(
        {"type": f"test.{kind}", "data": {"note": BODY_MARKER, "kind": kind}}
    ).encode()


def send_every_path(http: httpx.Client, scenario: Scenario) -> None:
    """Send one request down each path, recording status and signatures sent."""
    extra = {"authorization": f"Bearer {AUTHORIZATION_MARKER}", "x-note": HEADER_MARKER}

    def post(name: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        for header in ("webhook-signature", "x-hub-signature-256", "stripe-signature"):
            if header in headers:
                scenario.signatures.append(headers[header])
        response = http.post(path, content=body, headers={**headers, **extra})
        scenario.statuses[name] = response.status_code

    body = marked_body("accepted")
    post("standard_accepted", "/hooks/acme-mail", body, standard_headers(body))

    body = marked_body("bad-signature")
    headers = standard_headers(body)
    headers["webhook-signature"] = WRONG_SIGNATURE_MARKER
    post("bad_signature", "/hooks/acme-mail", body, headers)

    body = marked_body("stale")
    headers = standard_headers(body, msg_id="msg_stale", sent_at=minutes_ago(30))
    post("stale", "/hooks/acme-mail", body, headers)

    body = marked_body("missing-headers")
    post("missing_headers", "/hooks/acme-mail", body, {})

    body = f'{{"note": "{BODY_MARKER}", '.encode()
    post("bad_json", "/hooks/acme-mail", body, standard_headers(body, msg_id="m_j"))

    body = marked_body("unknown-source")
    post("unknown_source", f"/hooks/{HEADER_MARKER}", body, standard_headers(body))

    body = marked_body("too-large") + b" " * MAX_BODY
    post("too_large", "/hooks/acme-mail", body, standard_headers(body))

    body = gmail_push(message_id=f"gm-{RUN}")
    post("gmail_accepted", f"/hooks/globex-gmail?token={GMAIL_TOKEN}", body, {})
    post("wrong_token", f"/hooks/globex-gmail?token={WRONG_TOKEN_MARKER}", body, {})

    body = json.dumps({"value": [graph_item()]}).encode()
    post("graph_accepted", "/hooks/acme-outlook", body, {})
    wrong = graph_item(client_state=WRONG_STATE_MARKER, resource_id="other")
    body = json.dumps({"value": [wrong]}).encode()
    post("wrong_client_state", "/hooks/acme-outlook", body, {})

    body = marked_body("github")
    post("github_accepted", "/hooks/acme-github", body, github_headers(body))
    headers = github_headers(body, secret=TEST_ENV["TEST_GITHUB_SECRET_EXPIRED"])
    post("github_expired_secret", "/hooks/acme-github", body, headers)

    body = json.dumps({"id": f"evt_{RUN}", "note": BODY_MARKER}).encode()
    post("stripe_accepted", "/hooks/acme-stripe", body, stripe_headers(body))

    body = marked_body("hmac")
    timestamp = str(unix_now())
    digest = hmac_digest(
        TEST_ENV["TEST_HMAC_SECRET"], f"h-{RUN}.{timestamp}.".encode() + body
    )
    scenario.signatures.append(digest)
    headers = {
        "x-signature": f"sha256={digest}",
        "x-timestamp": timestamp,
        "x-event-id": f"h-{RUN}",
        "content-type": "application/json",
    }
    post("hmac_accepted", "/hooks/acme-hmac", body, headers)


def write_unconvertible_entry(redis_url: str) -> None:
    """Write an ingest entry whose body the consumer cannot convert."""
    client = redis.Redis.from_url(redis_url)
    client.xadd(
        "hg:{acme}:ingest",
        {
            "v": ENTRY_VERSION,
            "event_id": f"evt-dead-{RUN}",
            "type": "mailbox.changed",
            "tenant": "acme",
            "source": "acme-outlook",
            "provider": "graph",
            "received_at": str(int(time.time() * 1000)),
            "provider_event_id": f"dead-{RUN}",
            "headers": json.dumps({"authorization": AUTHORIZATION_MARKER}),
            "body": f"not json {DEAD_LETTER_MARKER}".encode(),
        },
    )
    client.close()


def wait_for_line(process: Process, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log():
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} in the log:\n{process.log()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    directory = tmp_path_factory.mktemp("telemetry")
    redis_server = start_redis(directory / "redis")
    gateway = start_gateway(directory, redis_server.url)
    consumer_metrics_port = free_port()
    consumer = start_hookgate(
        [
            "consume",
            "--config",
            str(write_config(directory)),
            "--name",
            "t",
            "--metrics-port",
            str(consumer_metrics_port),
        ],
        directory,
        redis_server.url,
    )
    result = Scenario()
    try:
        wait_for_line(consumer, "consumer.started")
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            send_every_path(http, result)
            write_unconvertible_entry(redis_server.url)
            wait_for_line(consumer, "entry.dead_lettered")
            response = http.get("/metrics")
            if response.status_code == 200:
                result.metrics = response.text
            url = f"http://127.0.0.1:{consumer_metrics_port}/metrics"
            response = httpx.get(url, timeout=10)
            if response.status_code == 200:
                result.consumer_metrics = response.text

            redis_server.stop()
            body = marked_body("redis-down")
            headers = standard_headers(body, msg_id=f"msg_down_{RUN}")
            headers["authorization"] = f"Bearer {AUTHORIZATION_MARKER}"
            response = http.post("/hooks/acme-mail", content=body, headers=headers)
            result.statuses["redis_down"] = response.status_code
            result.signatures.append(headers["webhook-signature"])
    finally:
        gateway.stop()
        consumer.stop()
        redis_server.stop()
    result.gateway_log = gateway.log()
    result.consumer_log = consumer.log()
    return result


def secret_forms() -> list[str]:
    """Each test secret as configured, and its base64 and hex forms."""
    forms = []
    for value in TEST_ENV.values():
        raw = value.encode()
        forms += [value, base64.b64encode(raw).decode().rstrip("="), raw.hex()]
        if value.startswith("whsec_"):
            # A Standard Webhooks key is the base64 after the prefix.
            encoded = value.removeprefix("whsec_")
            forms.append(encoded)
            padded = encoded + "=" * (-len(encoded) % 4)
            with contextlib.suppress(ValueError):
                forms.append(base64.b64decode(padded).hex())
    return forms


def markers() -> list[str]:
    return [
        BODY_MARKER,
        AUTHORIZATION_MARKER,
        HEADER_MARKER,
        WRONG_TOKEN_MARKER,
        WRONG_STATE_MARKER,
        WRONG_SIGNATURE_MARKER,
        DEAD_LETTER_MARKER,
        GMAIL_TOKEN,
        STANDARD_SECRET,
    ]


EXPECTED_STATUSES = {
    "standard_accepted": 202,
    "bad_signature": 401,
    "stale": 401,
    "missing_headers": 400,
    "bad_json": 400,
    "unknown_source": 404,
    "too_large": 413,
    "gmail_accepted": 202,
    "wrong_token": 401,
    "graph_accepted": 202,
    "wrong_client_state": 401,
    "github_accepted": 202,
    "github_expired_secret": 401,
    "stripe_accepted": 202,
    "hmac_accepted": 202,
    "redis_down": 503,
}


class TestScenario:
    @pytest.mark.parametrize(("name", "status"), EXPECTED_STATUSES.items())
    def test_path_answered_as_expected(
        self, scenario: Scenario, name: str, status: int
    ) -> None:
        """Each request took the path it was built for."""
        assert scenario.statuses[name] == status

    def test_rejections_were_logged(self, scenario: Scenario) -> None:
        """The rejection lines exist, so the search below had lines to search."""
        reasons = {
            line.get("reason")
            for line in map(json.loads, scenario.gateway_log.splitlines())
            if line.get("event") == "webhook.rejected"
        }

        assert "invalid_signature" in reasons
        assert "stale_timestamp" in reasons
        assert "invalid_client_state" in reasons
        assert "invalid_token" in reasons


class TestLogFormat:
    @pytest.mark.parametrize("process", ["gateway", "consumer"])
    def test_every_line_is_json_object(self, scenario: Scenario, process: str) -> None:
        """Granian's, FastStream's and hookgate's lines are all JSON objects."""
        text = getattr(scenario, f"{process}_log")
        lines = text.splitlines()

        assert lines
        for line in lines:
            assert "\x1b[" not in line, line
            assert isinstance(json.loads(line), dict), line

    def test_consumer_line_carries_entry_ids(self, scenario: Scenario) -> None:
        """The dead-letter line carries the ids bound for the entry."""
        lines = [json.loads(line) for line in scenario.consumer_log.splitlines()]
        (dead,) = [line for line in lines if line["event"] == "entry.dead_lettered"]

        assert dead["tenant"] == "acme"
        assert dead["source_id"] == "acme-outlook"
        assert dead["provider"] == "graph"
        assert dead["event_id"] == f"evt-dead-{RUN}"


class TestNoSecrets:
    @pytest.mark.parametrize("process", ["gateway", "consumer"])
    def test_no_marker_in_log(self, scenario: Scenario, process: str) -> None:
        """No header, body or wrong-credential marker appears in a log line."""
        text = getattr(scenario, f"{process}_log")

        for marker in markers():
            assert marker not in text, marker

    @pytest.mark.parametrize("process", ["gateway", "consumer"])
    def test_no_secret_form_in_log(self, scenario: Scenario, process: str) -> None:
        """No configured secret appears, as written or in base64 or hex."""
        text = getattr(scenario, f"{process}_log")

        for form in secret_forms():
            assert form not in text, form

    @pytest.mark.parametrize("process", ["gateway", "consumer"])
    def test_no_signature_in_log(self, scenario: Scenario, process: str) -> None:
        """No signature header value that was sent appears."""
        text = getattr(scenario, f"{process}_log")

        assert scenario.signatures
        for signature in scenario.signatures:
            assert signature not in text, signature

    @pytest.mark.parametrize("process", ["gateway", "consumer"])
    def test_metrics_scraped(self, scenario: Scenario, process: str) -> None:
        """Both served /metrics, so the next test searched something."""
        text = scenario.metrics if process == "gateway" else scenario.consumer_metrics

        assert "hookgate_" in text

    @pytest.mark.parametrize("process", ["gateway", "consumer"])
    def test_no_marker_in_metrics(self, scenario: Scenario, process: str) -> None:
        """/metrics carries no marker, secret or signature."""
        text = scenario.metrics if process == "gateway" else scenario.consumer_metrics

        for value in [*markers(), *secret_forms(), *scenario.signatures]:
            assert value not in text, value
