"""Unit tests of the conversion from ingest entries to downstream events."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from hookgate.consumers import (
    ConversionError,
    InvalidBodyError,
    MisroutedEntryError,
    ProviderMismatchError,
    UnknownEventTypeError,
    convert_entry,
    github_event,
    gmail_push_event,
    graph_lifecycle_event,
    graph_notification_event,
    hmac_event,
    mailbox_from_resource,
    standard_webhook_event,
    stripe_event,
)
from hookgate.entry import (
    GITHUB_EVENT,
    GMAIL_PUSH,
    GRAPH_LIFECYCLE,
    GRAPH_NOTIFICATION,
    HMAC_EVENT,
    STANDARD_WEBHOOK,
    STRIPE_EVENT,
    IngestEntry,
)
from hookgate.events import MailboxChanged, SubscriptionLifecycle, WebhookReceived

from .entries import (
    CLIENT_STATE,
    RECEIVED_AT,
    SUBSCRIPTION_ID,
    USER_ID,
    gmail_push_body,
    graph_lifecycle_body,
    graph_notification_body,
    ingest_entry,
    standard_webhook_body,
)

TENANT = "acme"


def gmail_entry(body: bytes) -> IngestEntry:
    return ingest_entry(
        tenant=TENANT,
        type=GMAIL_PUSH,
        provider="gmail-pubsub",
        body=body,
        event_id="evt_gmail",
        source="acme-gmail",
    )


def graph_entry(body: bytes, type: str = GRAPH_NOTIFICATION) -> IngestEntry:
    return ingest_entry(
        tenant=TENANT,
        type=type,
        provider="graph",
        body=body,
        event_id="evt_graph",
        source="acme-graph",
    )


def standard_entry(body: bytes) -> IngestEntry:
    return ingest_entry(
        tenant=TENANT,
        type=STANDARD_WEBHOOK,
        provider="standard-webhooks",
        body=body,
        event_id="evt_std",
        source="acme-billing",
        provider_event_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    )


GITHUB_BODY = b'{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"}}'
STRIPE_BODY = (
    b'{"id":"evt_1QXb2c","object":"event","type":"invoice.paid",'
    b'"data":{"object":{"id":"in_1"}}}'
)


def github_entry(
    body: bytes = GITHUB_BODY, headers: dict[str, str] | None = None
) -> IngestEntry:
    if headers is None:
        headers = {"x-github-event": "push", "x-github-delivery": "d-1"}
    return ingest_entry(
        tenant=TENANT,
        type=GITHUB_EVENT,
        provider="github",
        body=body,
        event_id="evt_gh",
        source="acme-github",
        provider_event_id="d-1",
        headers=headers,
    )


def stripe_entry(body: bytes = STRIPE_BODY) -> IngestEntry:
    return ingest_entry(
        tenant=TENANT,
        type=STRIPE_EVENT,
        provider="stripe",
        body=body,
        event_id="evt_stripe",
        source="acme-stripe",
        provider_event_id="evt_1QXb2c",
    )


def hmac_entry(body: bytes) -> IngestEntry:
    return ingest_entry(
        tenant=TENANT,
        type=HMAC_EVENT,
        provider="hmac",
        body=body,
        event_id="evt_hmac",
        source="acme-hmac",
        provider_event_id="delivery-0001",
    )


class TestMailboxFromResource:
    def test_users_prefix_lowercased(self) -> None:
        """The users/ part is lower-cased and the id is kept as written."""
        resource = f"Users/{USER_ID}/Messages/AAMk="

        assert mailbox_from_resource(resource) == f"users/{USER_ID}"

    def test_leading_slash_dropped(self) -> None:
        """A subscription-style path with a leading slash yields the same mailbox."""
        resource = f"/users/{USER_ID}/mailFolders('Inbox')/messages"

        assert mailbox_from_resource(resource) == f"users/{USER_ID}"

    def test_mixed_case_prefix(self) -> None:
        """Any case of the users/ part matches."""
        assert mailbox_from_resource("USERS/abc/events") == "users/abc"

    def test_bare_user_path(self) -> None:
        """A resource that is only users/{id} is its own mailbox."""
        assert mailbox_from_resource("Users/abc") == "users/abc"

    def test_other_resource_returned_whole(self) -> None:
        """A resource without a users/ prefix is the mailbox as it is."""
        resource = "groups/1b2c/conversations"

        assert mailbox_from_resource(resource) == resource

    def test_empty_user_id_returned_whole(self) -> None:
        """users// names no user, so the whole resource is kept."""
        assert mailbox_from_resource("users//messages") == "users//messages"

    def test_users_not_at_start(self) -> None:
        """A users/ segment later in the path is not a prefix."""
        resource = "teams/1/users/abc"

        assert mailbox_from_resource(resource) == resource


class TestGmailPush:
    def test_fields_copied(self) -> None:
        """The event carries the entry's ids and times and the Gmail mailbox."""
        event = gmail_push_event(gmail_entry(gmail_push_body("bob@example.com", 42)))

        assert isinstance(event, MailboxChanged)
        assert event.event_id == "evt_gmail"
        assert event.tenant == TENANT
        assert event.source == "acme-gmail"
        assert event.received_at == RECEIVED_AT
        assert event.provider == "gmail-pubsub"
        assert event.mailbox == "bob@example.com"

    def test_numeric_history_id_becomes_cursor(self) -> None:
        """A JSON number historyId becomes a decimal string cursor."""
        event = gmail_push_event(gmail_entry(gmail_push_body(history_id=9876543210)))

        assert event.cursor == "9876543210"

    def test_string_history_id_becomes_cursor(self) -> None:
        """A string historyId is used as the cursor unchanged."""
        event = gmail_push_event(gmail_entry(gmail_push_body(history_id="123456")))

        assert event.cursor == "123456"

    def test_graph_fields_unset(self) -> None:
        """Gmail notifications carry no Graph resource, change type or subscription."""
        event = gmail_push_event(gmail_entry(gmail_push_body()))

        assert event.resource is None
        assert event.change_type is None
        assert event.subscription_id is None

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"not json", id="not-json"),
            pytest.param(b"[]", id="array"),
            pytest.param(b'{"subscription": "s"}', id="no-message"),
            pytest.param(b'{"message": {"messageId": "1"}}', id="no-data"),
            pytest.param(b'{"message": {"data": "%%%"}}', id="data-not-base64"),
            pytest.param(b'{"message": {"data": 5}}', id="data-not-string"),
        ],
    )
    def test_invalid_envelope_rejected(self, body: bytes) -> None:
        """A body that is not a Pub/Sub push envelope is an invalid body."""
        with pytest.raises(InvalidBodyError, match=r"invalid gmail\.push body"):
            gmail_push_event(gmail_entry(body))

    @pytest.mark.parametrize(
        "notification",
        [
            pytest.param(b"not json", id="not-json"),
            pytest.param(b'{"historyId": 1}', id="no-email"),
            pytest.param(b'{"emailAddress": "", "historyId": 1}', id="empty-email"),
            pytest.param(b'{"emailAddress": "a@b.c"}', id="no-history-id"),
            pytest.param(b'{"emailAddress": "a@b.c", "historyId": -1}', id="negative"),
            pytest.param(
                b'{"emailAddress": "a@b.c", "historyId": "12a"}', id="letters"
            ),
            pytest.param(b'{"emailAddress": "a@b.c", "historyId": 1.5}', id="float"),
            pytest.param(b'{"emailAddress": "a@b.c", "historyId": null}', id="null"),
        ],
    )
    def test_invalid_notification_rejected(self, notification: bytes) -> None:
        """Message data that is not a Gmail notification is an invalid body."""
        body = gmail_push_body(notification=notification)

        with pytest.raises(InvalidBodyError, match=r"`\$\.message\.data`"):
            gmail_push_event(gmail_entry(body))

    def test_standard_base64_decoded(self) -> None:
        """Pub/Sub's standard base64, with '+' and padding, decodes."""
        notification = json.dumps(
            {"emailAddress": "??>>@example.com", "historyId": 1}
        ).encode()
        data = base64.b64encode(notification).decode()
        body = json.dumps({"message": {"data": data}}).encode()

        event = gmail_push_event(gmail_entry(body))

        assert "+" in data
        assert data.endswith("=")
        assert event.mailbox == "??>>@example.com"

    def test_error_omits_email(self) -> None:
        """The error names the path, not the mailbox address from the body."""
        notification = b'{"emailAddress": "carol@example.com", "historyId": "x"}'

        with pytest.raises(InvalidBodyError) as info:
            gmail_push_event(gmail_entry(gmail_push_body(notification=notification)))

        assert "carol@example.com" not in str(info.value)


class TestGraphNotification:
    def test_fields_copied(self) -> None:
        """The event carries the entry's ids and the notification's fields."""
        resource = f"Users/{USER_ID}/Messages/AAMk="
        event = graph_notification_event(
            graph_entry(graph_notification_body(resource, "updated"))
        )

        assert isinstance(event, MailboxChanged)
        assert event.event_id == "evt_graph"
        assert event.tenant == TENANT
        assert event.source == "acme-graph"
        assert event.received_at == RECEIVED_AT
        assert event.provider == "graph"
        assert event.mailbox == f"users/{USER_ID}"
        assert event.resource == resource
        assert event.change_type == "updated"
        assert event.subscription_id == SUBSCRIPTION_ID
        assert event.cursor is None

    def test_resource_without_user_is_mailbox(self) -> None:
        """A resource outside users/ becomes the mailbox whole."""
        body = graph_notification_body("groups/1b2c/conversations")

        event = graph_notification_event(graph_entry(body))

        assert event.mailbox == "groups/1b2c/conversations"

    @pytest.mark.parametrize("change_type", ["created", "updated", "deleted"])
    def test_change_types_accepted(self, change_type: str) -> None:
        """Each change type Graph documents is passed through."""
        body = graph_notification_body(change_type=change_type)

        event = graph_notification_event(graph_entry(body))

        assert event.change_type == change_type

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"{", id="truncated"),
            pytest.param(b'{"value": []}', id="collection"),
            pytest.param(b"[]", id="array"),
            pytest.param(graph_notification_body(resource=None), id="null-resource"),
            pytest.param(graph_notification_body(resource=""), id="empty-resource"),
            pytest.param(graph_notification_body(change_type="moved"), id="unknown"),
            pytest.param(
                graph_notification_body(subscriptionId=None), id="no-subscription"
            ),
        ],
    )
    def test_invalid_item_rejected(self, body: bytes) -> None:
        """An item without the fields of a change notification is an invalid body."""
        with pytest.raises(InvalidBodyError, match=r"invalid graph\.notification body"):
            graph_notification_event(graph_entry(body))

    def test_client_state_not_in_event(self) -> None:
        """The clientState secret is not copied into the event."""
        event = graph_notification_event(graph_entry(graph_notification_body()))

        assert CLIENT_STATE.encode() not in msgspec.json.encode(event)


class TestGraphLifecycle:
    def test_fields_copied(self) -> None:
        """The event carries the entry's ids, subscription and lifecycle event."""
        body = graph_lifecycle_body("subscriptionRemoved")

        event = graph_lifecycle_event(graph_entry(body, GRAPH_LIFECYCLE))

        assert isinstance(event, SubscriptionLifecycle)
        assert event.event_id == "evt_graph"
        assert event.tenant == TENANT
        assert event.source == "acme-graph"
        assert event.received_at == RECEIVED_AT
        assert event.subscription_id == SUBSCRIPTION_ID
        assert event.lifecycle_event == "subscriptionRemoved"

    @pytest.mark.parametrize(
        "lifecycle_event", ["reauthorizationRequired", "subscriptionRemoved", "missed"]
    )
    def test_lifecycle_events_accepted(self, lifecycle_event: str) -> None:
        """Each lifecycle event Graph documents is passed through."""
        body = graph_lifecycle_body(lifecycle_event)

        event = graph_lifecycle_event(graph_entry(body, GRAPH_LIFECYCLE))

        assert event.lifecycle_event == lifecycle_event

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"nope", id="not-json"),
            pytest.param(graph_lifecycle_body("renewed"), id="unknown-event"),
            pytest.param(b'{"lifecycleEvent": "missed"}', id="no-subscription"),
            pytest.param(b'{"subscriptionId": "s"}', id="no-lifecycle-event"),
        ],
    )
    def test_invalid_item_rejected(self, body: bytes) -> None:
        """An item without a subscription and a known lifecycle event is rejected."""
        with pytest.raises(InvalidBodyError, match=r"invalid graph\.lifecycle body"):
            graph_lifecycle_event(graph_entry(body, GRAPH_LIFECYCLE))


class TestStandardWebhook:
    def test_fields_copied(self) -> None:
        """The event carries the entry's ids, the provider's id and the type."""
        event = standard_webhook_event(standard_entry(standard_webhook_body()))

        assert isinstance(event, WebhookReceived)
        assert event.event_id == "evt_std"
        assert event.tenant == TENANT
        assert event.source == "acme-billing"
        assert event.received_at == RECEIVED_AT
        assert event.provider == "standard-webhooks"
        assert event.provider_event_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        assert event.event_type == "invoice.paid"

    def test_payload_is_body_verbatim(self) -> None:
        """The payload embeds the body's bytes without re-encoding them."""
        body = b'{ "type" : "a.b",\n  "data": {"n": 1.50, "s": "caf\xc3\xa9"} }'

        event = standard_webhook_event(standard_entry(body))

        assert bytes(event.payload) == body

    def test_payload_embedded_as_json(self) -> None:
        """The encoded event contains the payload as JSON, not as a string."""
        body = standard_webhook_body()
        event = standard_webhook_event(standard_entry(body))

        encoded = json.loads(msgspec.json.encode(event))

        assert encoded["payload"] == json.loads(body)

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(standard_webhook_body(event_type=7), id="number-type"),
            pytest.param(standard_webhook_body(event_type=None), id="null-type"),
            pytest.param(standard_webhook_body(event_type={"a": 1}), id="object-type"),
            pytest.param(b'{"data": {}}', id="no-type"),
            pytest.param(b'[{"type": "a"}]', id="array-payload"),
            pytest.param(b'"invoice.paid"', id="string-payload"),
            pytest.param(b"12", id="number-payload"),
            pytest.param(b"null", id="null-payload"),
        ],
    )
    def test_event_type_none_without_string_type(self, body: bytes) -> None:
        """Without a string "type" member the event type is None."""
        event = standard_webhook_event(standard_entry(body))

        assert event.event_type is None

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"{", id="truncated"),
            pytest.param(b"type=invoice.paid", id="form-encoded"),
            pytest.param(b'{"a": 1} {"b": 2}', id="two-values"),
            pytest.param(b"\xef\xbb\xbf{}", id="byte-order-mark"),
        ],
    )
    def test_invalid_json_rejected(self, body: bytes) -> None:
        """A body that is not one JSON value is an invalid body."""
        with pytest.raises(InvalidBodyError, match=r"invalid standard-webhooks\.event"):
            standard_webhook_event(standard_entry(body))

    def test_invalid_utf8_rejected(self) -> None:
        """Invalid UTF-8 in a member the decoder skips is still rejected."""
        body = b'{"type": "a", "data": {"note": "\xff\xfe"}}'

        with pytest.raises(InvalidBodyError, match="not valid UTF-8 at byte 32"):
            standard_webhook_event(standard_entry(body))


class TestGithubEvent:
    def test_fields_copied(self) -> None:
        """The event carries the entry's ids, the delivery id and the event name."""
        event = github_event(github_entry())

        assert isinstance(event, WebhookReceived)
        assert event.event_id == "evt_gh"
        assert event.tenant == TENANT
        assert event.source == "acme-github"
        assert event.received_at == RECEIVED_AT
        assert event.provider == "github"
        assert event.provider_event_id == "d-1"
        assert event.event_type == "push"

    def test_payload_is_body_verbatim(self) -> None:
        event = github_event(github_entry())

        assert bytes(event.payload) == GITHUB_BODY

    def test_ping_event_type(self) -> None:
        body = b'{"zen":"Design for failure.","hook_id":1}'
        event = github_event(github_entry(body, {"x-github-event": "ping"}))

        assert event.event_type == "ping"

    def test_body_type_ignored(self) -> None:
        """GitHub names the event in a header; a body "type" is ordinary data."""
        body = b'{"type":"Organization","login":"octo"}'

        event = github_event(github_entry(body, {"x-github-event": "member"}))

        assert event.event_type == "member"

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="missing"),
            pytest.param({"x-github-event": ""}, id="empty"),
        ],
    )
    def test_event_type_none_without_header(self, headers: dict[str, str]) -> None:
        event = github_event(github_entry(headers=headers))

        assert event.event_type is None

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"{", id="truncated"),
            pytest.param(b"payload=%7B%7D", id="form-encoded"),
            pytest.param(b'{"a": "\xff"}', id="invalid-utf8"),
        ],
    )
    def test_invalid_body_rejected(self, body: bytes) -> None:
        with pytest.raises(InvalidBodyError, match=r"invalid github\.event body"):
            github_event(github_entry(body))


class TestStripeEvent:
    def test_fields_copied(self) -> None:
        """The event carries the entry's ids, the Stripe event id and type."""
        event = stripe_event(stripe_entry())

        assert isinstance(event, WebhookReceived)
        assert event.event_id == "evt_stripe"
        assert event.tenant == TENANT
        assert event.source == "acme-stripe"
        assert event.received_at == RECEIVED_AT
        assert event.provider == "stripe"
        assert event.provider_event_id == "evt_1QXb2c"
        assert event.event_type == "invoice.paid"

    def test_payload_is_body_verbatim(self) -> None:
        event = stripe_event(stripe_entry())

        assert bytes(event.payload) == STRIPE_BODY

    def test_event_type_none_without_string_type(self) -> None:
        event = stripe_event(stripe_entry(b'{"id":"evt_1","type":7}'))

        assert event.event_type is None

    def test_invalid_json_rejected(self) -> None:
        with pytest.raises(InvalidBodyError, match=r"invalid stripe\.event body"):
            stripe_event(stripe_entry(b'{"id":'))


class TestHmacEvent:
    def test_fields_copied(self) -> None:
        body = b'{"type":"order.created","data":{"order":"ord_1"}}'

        event = hmac_event(hmac_entry(body))

        assert isinstance(event, WebhookReceived)
        assert event.event_id == "evt_hmac"
        assert event.tenant == TENANT
        assert event.source == "acme-hmac"
        assert event.received_at == RECEIVED_AT
        assert event.provider == "hmac"
        assert event.provider_event_id == "delivery-0001"
        assert event.event_type == "order.created"
        assert bytes(event.payload) == body

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b'{"event":"delivered"}', id="no-type"),
            pytest.param(b'{"type":["a"]}', id="list-type"),
            pytest.param(b'[{"type":"a"},{"type":"b"}]', id="array-payload"),
        ],
    )
    def test_event_type_none_without_string_type(self, body: bytes) -> None:
        event = hmac_event(hmac_entry(body))

        assert event.event_type is None

    def test_invalid_json_rejected(self) -> None:
        with pytest.raises(InvalidBodyError, match=r"invalid hmac\.event body"):
            hmac_event(hmac_entry(b"event=delivered"))


class TestConvertEntry:
    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            (gmail_entry(gmail_push_body()), MailboxChanged),
            (graph_entry(graph_notification_body()), MailboxChanged),
            (
                graph_entry(graph_lifecycle_body(), GRAPH_LIFECYCLE),
                SubscriptionLifecycle,
            ),
            (standard_entry(standard_webhook_body()), WebhookReceived),
            (github_entry(), WebhookReceived),
            (stripe_entry(), WebhookReceived),
            (hmac_entry(b'{"type":"a"}'), WebhookReceived),
        ],
        ids=[
            "gmail",
            "graph-notification",
            "graph-lifecycle",
            "standard-webhooks",
            "github",
            "stripe",
            "hmac",
        ],
    )
    def test_dispatch_by_type(self, entry: IngestEntry, expected: type) -> None:
        """Each event type is converted by its own converter."""
        assert isinstance(convert_entry(entry, TENANT), expected)

    def test_unknown_type_rejected(self) -> None:
        """A type the consumer does not know is rejected with the known types."""
        entry = ingest_entry(
            tenant=TENANT, type="paypal.event", provider="graph", body=b"{}"
        )

        with pytest.raises(UnknownEventTypeError, match=r"'paypal\.event'") as info:
            convert_entry(entry, TENANT)

        assert "gmail.push" in str(info.value)
        assert "stripe.event" in str(info.value)

    def test_provider_mismatch_rejected(self) -> None:
        """A Gmail event type from a Graph source is rejected."""
        entry = ingest_entry(
            tenant=TENANT, type=GMAIL_PUSH, provider="graph", body=gmail_push_body()
        )

        with pytest.raises(ProviderMismatchError, match="'gmail-pubsub'"):
            convert_entry(entry, TENANT)

    @pytest.mark.parametrize(
        ("type", "provider"),
        [
            (GITHUB_EVENT, "stripe"),
            (STRIPE_EVENT, "hmac"),
            (HMAC_EVENT, "standard-webhooks"),
            (STANDARD_WEBHOOK, "github"),
        ],
    )
    def test_signed_provider_mismatch_rejected(self, type: str, provider: str) -> None:
        """Each webhook type is accepted only from the provider that writes it."""
        entry = ingest_entry(tenant=TENANT, type=type, provider=provider, body=b"{}")

        with pytest.raises(ProviderMismatchError, match=f"'{provider}'"):
            convert_entry(entry, TENANT)

    def test_other_tenant_rejected(self) -> None:
        """An entry naming another tenant is not converted for this stream."""
        entry = ingest_entry(
            tenant="globex",
            type=STANDARD_WEBHOOK,
            provider="standard-webhooks",
            body=standard_webhook_body(),
        )

        with pytest.raises(MisroutedEntryError, match="'globex'"):
            convert_entry(entry, TENANT)

    @pytest.mark.parametrize(
        "error",
        [
            MisroutedEntryError,
            UnknownEventTypeError,
            ProviderMismatchError,
            InvalidBodyError,
        ],
    )
    def test_errors_share_base(self, error: type[Exception]) -> None:
        """Every conversion error is a ConversionError and a ValueError."""
        assert issubclass(error, ConversionError)
        assert issubclass(error, ValueError)
