"""Sentry reporting: start-up from SENTRY_DSN, scrubbing, dead letters, crashes.

The SDK runs in this process with a transport that keeps the envelopes it would
send, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
import structlog
from opentelemetry.sdk.trace import TracerProvider
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.transport import Transport

from hookgate.config import Config, load_config
from hookgate.gateway.app import Gateway
from hookgate.sentry import (
    FILTERED,
    Scrubber,
    init_sentry,
    name_log_breadcrumb,
    report_dead_letter,
    reported_errors,
)
from hookgate.sentry import capture_unhandled as wrap_unhandled
from hookgate.tests.conftest import (
    GMAIL_TOKEN,
    GRAPH_CLIENT_STATE,
    STANDARD_SECRET,
    TEST_ENV,
    write_config,
)

# A DSN of the right shape; the capturing transport replaces the one it would name.
FAKE_DSN = "http://public@127.0.0.1:9/1"


class CapturingTransport(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        found = []
        for envelope in self.envelopes:
            for item in envelope.items:
                event = item.get_event()
                if event is not None:
                    found.append(event)
        return found

    def raw(self) -> str:
        return "\n".join(json.dumps(event, default=str) for event in self.events())


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return load_config(str(write_config(tmp_path)))


@pytest.fixture
def transport(config: Config) -> Iterator[CapturingTransport]:
    """Sentry started in this process with a capturing transport, stopped after."""
    captured = CapturingTransport()
    started = init_sentry(
        config,
        "test",
        dsn=FAKE_DSN,
        transport=captured,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    assert started
    yield captured
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_global_scope().remove_tag("component")


def secret_forms() -> list[str]:
    """Every configured test secret as written, in base64 and in hex."""
    forms = []
    for value in TEST_ENV.values():
        raw = value.encode()
        forms += [value, base64.b64encode(raw).decode(), raw.hex()]
        if value.startswith("whsec_") and not value.startswith("whsec_test_"):
            key = base64.b64decode(value.removeprefix("whsec_"))
            forms += [key.hex()]
    return forms


class TestInitSentry:
    def test_without_dsn_nothing_starts(
        self, config: Config, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without SENTRY_DSN the SDK stays off."""
        monkeypatch.delenv("SENTRY_DSN", raising=False)

        started = init_sentry(config, "test")

        assert not started
        assert not sentry_sdk.is_initialized()

    def test_dsn_from_environment_starts(
        self, config: Config, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SENTRY_DSN alone starts the SDK."""
        monkeypatch.setenv("SENTRY_DSN", FAKE_DSN)
        captured = CapturingTransport()
        try:
            started = init_sentry(
                config,
                "test",
                transport=captured,
                default_integrations=False,
                auto_enabling_integrations=False,
            )

            assert started
            assert sentry_sdk.is_initialized()
        finally:
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)


class TestScrubber:
    def scrub(self, event: dict[str, Any]) -> dict[str, Any]:
        scrubber = Scrubber(["X-Signature"], [GMAIL_TOKEN.encode()])
        return scrubber(event, None)

    def request_event(self) -> dict[str, Any]:
        return {
            "request": {
                "url": f"http://127.0.0.1/hooks/globex-gmail?token={GMAIL_TOKEN}",
                "query_string": f"token={GMAIL_TOKEN}",
                "data": '{"body": "content"}',
                "cookies": {"session": "cookie-value"},
                "env": {"REMOTE_ADDR": "127.0.0.1"},
                "headers": {
                    "Authorization": "Bearer credential",
                    "webhook-signature": "v1,signature",
                    "X-Hub-Signature-256": "sha256=digest",
                    "stripe-signature": "t=1,v1=digest",
                    "Cookie": "session=cookie-value",
                    "x-signature": "configured-header-digest",
                    "x-api-key": "named-like-a-key",
                    "content-type": "application/json",
                },
            }
        }

    @pytest.mark.parametrize(
        "header",
        [
            "Authorization",
            "webhook-signature",
            "X-Hub-Signature-256",
            "stripe-signature",
            "Cookie",
            "x-signature",
            "x-api-key",
        ],
    )
    def test_credential_header_filtered(self, header: str) -> None:
        """Each header that may carry a credential is replaced."""
        scrubbed = self.scrub(self.request_event())

        assert scrubbed["request"]["headers"][header] == FILTERED

    def test_plain_header_kept(self) -> None:
        """Headers without credentials stay for debugging."""
        scrubbed = self.scrub(self.request_event())

        assert scrubbed["request"]["headers"]["content-type"] == "application/json"

    def test_query_string_filtered(self) -> None:
        """The query string, which carries a Gmail token, is replaced."""
        scrubbed = self.scrub(self.request_event())

        assert scrubbed["request"]["query_string"] == FILTERED

    def test_url_loses_query(self) -> None:
        """The URL keeps its path only."""
        scrubbed = self.scrub(self.request_event())

        assert scrubbed["request"]["url"] == "http://127.0.0.1/hooks/globex-gmail"

    @pytest.mark.parametrize("key", ["data", "cookies", "env"])
    def test_request_part_removed(self, key: str) -> None:
        """Bodies, cookies and the environment are dropped."""
        scrubbed = self.scrub(self.request_event())

        assert key not in scrubbed["request"]

    def test_frame_variables_removed(self) -> None:
        """Local variables of stack frames, where bodies and keys live, are dropped."""
        event = {
            "exception": {
                "values": [
                    {
                        "stacktrace": {
                            "frames": [{"function": "verify", "vars": {"key": "k"}}]
                        }
                    }
                ]
            }
        }

        scrubbed = self.scrub(event)

        (frame,) = scrubbed["exception"]["values"][0]["stacktrace"]["frames"]
        assert "vars" not in frame

    def test_secret_in_message_filtered(self) -> None:
        """A string that contains a configured secret is replaced as a whole."""
        event = {"message": f"failed for token {GMAIL_TOKEN}"}

        scrubbed = self.scrub(event)

        assert scrubbed["message"] == FILTERED

    def test_base64_secret_filtered(self) -> None:
        """The base64 form of a secret is found too."""
        encoded = base64.b64encode(GMAIL_TOKEN.encode()).decode()
        event = {"extra": {"value": [f"prefix {encoded}"]}}

        scrubbed = self.scrub(event)

        assert scrubbed["extra"]["value"] == [FILTERED]

    def test_log_event_named_by_event_field(self) -> None:
        """An event from a structlog line is named by its event, with ids as tags."""
        fields = {
            "event": "webhook.unavailable",
            "tenant": "acme",
            "source_id": "acme-mail",
            "error_type": "RedisUnavailable",
            "level": "error",
        }
        record = logging.LogRecord("hookgate", logging.ERROR, "", 0, fields, (), None)
        event = {"logentry": {"message": repr(fields), "params": []}}

        scrubbed = Scrubber([], [])(event, {"log_record": record})

        assert scrubbed["logentry"]["message"] == "webhook.unavailable"
        assert scrubbed["tags"]["tenant"] == "acme"
        assert scrubbed["tags"]["source_id"] == "acme-mail"
        assert scrubbed["extra"]["error_type"] == "RedisUnavailable"
        assert "level" not in scrubbed["extra"]

    def test_log_breadcrumb_named_by_event(self) -> None:
        """A breadcrumb from a structlog line is named by its event."""
        fields = {"event": "gateway.started", "pid": 7, "level": "info"}
        record = logging.LogRecord("hookgate", logging.INFO, "", 0, fields, (), None)

        breadcrumb = name_log_breadcrumb(
            {"message": repr(fields)}, {"log_record": record}
        )

        assert breadcrumb["message"] == "gateway.started"
        assert breadcrumb["data"] == {"pid": "7"}

    def test_breadcrumb_url_loses_query(self) -> None:
        """HTTP breadcrumbs keep the URL's path only."""
        event = {
            "breadcrumbs": {
                "values": [
                    {
                        "category": "httplib",
                        "data": {"url": "http://x/y?token=t", "http.query": "token=t"},
                    }
                ]
            }
        }

        scrubbed = self.scrub(event)

        (breadcrumb,) = scrubbed["breadcrumbs"]["values"]
        assert breadcrumb["data"]["url"] == "http://x/y"
        assert "http.query" not in breadcrumb["data"]


class TestCapturedEvents:
    def test_exception_event_has_no_secret(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """An exception raised beside secrets and a body sends none of them."""

        def verify(secret: str, body: bytes) -> None:
            raise ValueError(f"signature mismatch for {secret}")

        # Built at run time, so the source lines that Sentry sends cannot hold it.
        marker = f"body-{uuid.uuid4().hex}"
        try:
            verify(STANDARD_SECRET, json.dumps({"marker": marker}).encode())
        except ValueError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.flush()

        raw = transport.raw()
        assert len(transport.events()) == 1
        assert marker not in raw
        for form in secret_forms():
            assert form not in raw, form

    def test_component_tag_set(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """Every event names the process kind that sent it."""
        sentry_sdk.capture_message("hello")
        sentry_sdk.flush()

        (event,) = transport.events()
        assert event["tags"]["component"] == "test"

    def test_dead_letter_reported_with_tags(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """A dead letter becomes one event tagged with its tenant and source."""
        fields = {
            b"source": b"acme-mail",
            b"provider": b"standard-webhooks",
            b"event_id": b"evt_1",
            b"body": b"body-content",
        }

        report_dead_letter(
            tenant="acme", fields=fields, error=ValueError("invalid payload")
        )
        sentry_sdk.flush()

        (event,) = transport.events()
        assert event["tags"]["tenant"] == "acme"
        assert event["tags"]["source_id"] == "acme-mail"
        assert event["tags"]["provider"] == "standard-webhooks"
        assert event["tags"]["event_id"] == "evt_1"
        assert event["tags"]["error_type"] == "ValueError"
        assert event["level"] == "warning"
        assert "body-content" not in json.dumps(event, default=str)

    def test_dead_letter_without_sentry_sends_nothing(self, config: Config) -> None:
        """While Sentry is off the report is a no-op and raises nothing."""
        assert not sentry_sdk.is_initialized()

        report_dead_letter(
            tenant="acme", fields={}, error=ValueError("invalid payload")
        )

    def test_trace_id_tagged_in_span(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """An event captured inside an OpenTelemetry span carries its trace id."""
        tracer = TracerProvider().get_tracer("hookgate.tests")

        with tracer.start_as_current_span("handle") as span:
            report_dead_letter(
                tenant="acme", fields={}, error=ValueError("invalid payload")
            )
            trace_id = f"{span.get_span_context().trace_id:032x}"
        sentry_sdk.flush()

        (event,) = transport.events()
        assert event["tags"]["trace_id"] == trace_id

    def test_bound_context_becomes_tags(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """Ids the consumer bound for its entry are tags of events captured then."""
        with structlog.contextvars.bound_contextvars(
            tenant="globex", source_id="globex-gmail", event_id="evt_2"
        ):
            sentry_sdk.capture_message("handler failed")
        sentry_sdk.flush()

        (event,) = transport.events()
        assert event["tags"]["tenant"] == "globex"
        assert event["tags"]["source_id"] == "globex-gmail"
        assert event["tags"]["event_id"] == "evt_2"


class Scope:
    proto = "http"
    method = "POST"

    def __init__(self, path: str) -> None:
        self.path = path


class TestCaptureUnhandled:
    def gateway_raising(self, config: Config) -> Gateway:
        gateway = Gateway(config, "redis://127.0.0.1:9/0")

        async def crash(scope: Any, protocol: Any) -> None:
            raise RuntimeError(f"crashed with {GRAPH_CLIENT_STATE}")

        gateway.__rsgi__ = crash  # type: ignore[method-assign]
        wrap_unhandled(gateway)
        return gateway

    def test_crash_reported_and_reraised(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """An exception escaping the app is sent to Sentry and still raised."""
        gateway = self.gateway_raising(config)

        with pytest.raises(RuntimeError):
            asyncio.run(gateway.__rsgi__(Scope("/hooks/acme-mail"), object()))
        sentry_sdk.flush()

        (event,) = transport.events()
        assert event["exception"]["values"][0]["type"] == "RuntimeError"
        assert event["tags"]["tenant"] == "acme"
        assert event["tags"]["source_id"] == "acme-mail"
        assert event["tags"]["provider"] == "standard-webhooks"
        assert event["tags"]["route"] == "/hooks/{source_id}"

    def test_crash_report_has_no_secret(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """The secret in the exception text is filtered out of the report."""
        gateway = self.gateway_raising(config)

        with pytest.raises(RuntimeError):
            asyncio.run(gateway.__rsgi__(Scope("/hooks/acme-mail"), object()))
        sentry_sdk.flush()

        raw = transport.raw()
        for form in secret_forms():
            assert form not in raw, form

    def test_unknown_source_not_tagged(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """A path that names no source gets the route tag only."""
        gateway = self.gateway_raising(config)

        with pytest.raises(RuntimeError):
            asyncio.run(gateway.__rsgi__(Scope("/hooks/nope"), object()))
        sentry_sdk.flush()

        (event,) = transport.events()
        assert "source_id" not in event["tags"]
        assert event["tags"]["route"] == "/hooks/{source_id}"


class TestReportedErrors:
    def test_error_reported_with_bound_ids(
        self, config: Config, transport: CapturingTransport
    ) -> None:
        """An exception leaving the block is sent with the ids bound around it."""
        with (
            pytest.raises(RuntimeError),
            structlog.contextvars.bound_contextvars(tenant="acme", event_id="evt_3"),
            reported_errors(),
        ):
            raise RuntimeError("handler failed")
        sentry_sdk.flush()

        (event,) = transport.events()
        assert event["tags"]["tenant"] == "acme"
        assert event["tags"]["event_id"] == "evt_3"

    def test_without_sentry_error_reraised(self) -> None:
        """While Sentry is off the block only re-raises."""
        assert not sentry_sdk.is_initialized()

        with pytest.raises(RuntimeError), reported_errors():
            raise RuntimeError("handler failed")

    def test_later_error_log_deduplicated(self, config: Config) -> None:
        """FastStream's ERROR line for the same exception sends no second event."""
        captured = CapturingTransport()
        init_sentry(
            config,
            "test",
            dsn=FAKE_DSN,
            transport=captured,
            default_integrations=False,
            auto_enabling_integrations=False,
            integrations=[DedupeIntegration()],
        )
        try:
            try:
                with reported_errors():
                    raise RuntimeError("handler failed")
            except RuntimeError:
                logging.getLogger("hookgate.faststream").exception("handler failed")
            sentry_sdk.flush()

            assert len(captured.events()) == 1
        finally:
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)
