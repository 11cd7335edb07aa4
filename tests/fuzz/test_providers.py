"""Property tests of every provider's accept function on arbitrary requests.

Each request ends in event drafts or a handshake reply, or in a Rejection with a
4xx status and a JSON body of exactly ``error`` and ``detail``. No other exception
escapes. Accepted requests must be authenticated, and drafts of UTF-8 bodies must
convert to downstream events, because a consumer dead-letters a draft that does not.

The async accepts run on one event loop per module. Their token checks meet two key
sources on loopback. A port that refuses connections makes a token with an RS256
header and a kid end in 503 ``jwks_unavailable``. A JWKS server with real keys lets
signed tokens reach the claim checks and the body behind them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hookgate.config import Source
from hookgate.gateway.errors import Rejection
from hookgate.gateway.providers import (
    EventDraft,
    Incoming,
    generic_hmac,
    github,
    gmail,
    graph,
    standard,
    stripe,
)
from hookgate.tests.gateway.tokens import graph_claims, pubsub_claims

from .harness import (
    GITHUB_SOURCE,
    GMAIL_SOURCE,
    GMAIL_TOKEN,
    GOOGLE_KEY,
    GRAPH_CLIENT_STATE,
    GRAPH_SOURCE,
    HMAC_SOURCES,
    MICROSOFT_KEY,
    SETTINGS,
    STANDARD_SOURCE,
    STRIPE_SOURCE,
    FakeHeaders,
    LoopbackKeys,
    check_outcome,
    check_rejection,
    github_signed,
    gmail_oidc_source,
    graph_rich_source,
    hmac_signed,
    standard_signed,
    stripe_signed,
)
from .strategies import (
    bearer_headers,
    charsets,
    github_requests,
    gmail_requests,
    graph_requests,
    header_pairs,
    hmac_requests,
    jwt_tokens,
    signed_standard_requests,
    stripe_requests,
)

# Each example costs a few milliseconds (an RSA signature, a loopback connection),
# so these counts keep every test under about four seconds on 2 cores.
FEW = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
MANY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def keys() -> Iterator[LoopbackKeys]:
    loopback = LoopbackKeys()
    yield loopback
    loopback.close()


def outcome_of(
    call: Callable[[], object], *, keys_fetched: bool = False
) -> object | None:
    """Return what ``call`` returned, or None after checking its Rejection."""
    try:
        outcome = call()
    except Rejection as rejection:
        # Shown by --hypothesis-show-statistics, to see which checks were reached.
        event(f"rejected: {rejection.code}")
        check_rejection(rejection, keys_fetched=keys_fetched)
        return None
    event(f"accepted: {type(outcome).__name__}")
    return outcome


@st.composite
def arbitrary_requests(draw: st.DrawFn) -> Incoming:
    """Draw a request of arbitrary headers, query string and body bytes."""
    return Incoming(
        headers=FakeHeaders(draw(header_pairs)),
        query_string=draw(st.text(max_size=80)),
        body=draw(st.binary(max_size=400)),
        charset=draw(charsets),
        received_at_ms=time.time_ns() // 1_000_000,
    )


class TestStandardAccept:
    @MANY
    @given(incoming=signed_standard_requests())
    def test_signed_request_ends_defined(self, incoming: Incoming) -> None:
        outcome = outcome_of(
            lambda: standard.accept(incoming, STANDARD_SOURCE, SETTINGS)
        )

        if outcome is not None:
            check_outcome(outcome, STANDARD_SOURCE, convertible=True)
            assert standard_signed(incoming, STANDARD_SOURCE)

    @MANY
    @given(incoming=arbitrary_requests())
    def test_arbitrary_request_rejected(self, incoming: Incoming) -> None:
        with pytest.raises(Rejection) as caught:
            standard.accept(incoming, STANDARD_SOURCE, SETTINGS)

        check_rejection(caught.value)


class TestGithubAccept:
    @MANY
    @given(incoming=github_requests())
    def test_signed_request_ends_defined(self, incoming: Incoming) -> None:
        outcome = outcome_of(lambda: github.accept(incoming, GITHUB_SOURCE, SETTINGS))

        if outcome is not None:
            check_outcome(outcome, GITHUB_SOURCE, convertible=True)
            assert github_signed(incoming)

    @FEW
    @given(incoming=arbitrary_requests())
    def test_arbitrary_request_rejected(self, incoming: Incoming) -> None:
        with pytest.raises(Rejection) as caught:
            github.accept(incoming, GITHUB_SOURCE, SETTINGS)

        check_rejection(caught.value)


class TestStripeAccept:
    @MANY
    @given(incoming=stripe_requests())
    def test_signed_request_ends_defined(self, incoming: Incoming) -> None:
        outcome = outcome_of(lambda: stripe.accept(incoming, STRIPE_SOURCE, SETTINGS))

        if outcome is not None:
            check_outcome(outcome, STRIPE_SOURCE, convertible=True)
            assert stripe_signed(incoming)

    @FEW
    @given(incoming=arbitrary_requests())
    def test_arbitrary_request_rejected(self, incoming: Incoming) -> None:
        with pytest.raises(Rejection) as caught:
            stripe.accept(incoming, STRIPE_SOURCE, SETTINGS)

        check_rejection(caught.value)


@pytest.mark.parametrize("source", HMAC_SOURCES, ids=lambda source: source.id)
class TestGenericHmacAccept:
    @MANY
    @given(data=st.data())
    def test_signed_request_ends_defined(
        self, source: Source, data: st.DataObject
    ) -> None:
        assert source.hmac is not None
        scheme = generic_hmac.Scheme.build(source.hmac)
        incoming = data.draw(hmac_requests(source.hmac))

        outcome = outcome_of(
            lambda: generic_hmac.accept(incoming, source, SETTINGS, scheme=scheme)
        )

        if outcome is not None:
            check_outcome(outcome, source, convertible=True)
            assert hmac_signed(incoming, source.hmac)

    @FEW
    @given(incoming=arbitrary_requests())
    def test_arbitrary_request_rejected(
        self, source: Source, incoming: Incoming
    ) -> None:
        assert source.hmac is not None
        scheme = generic_hmac.Scheme.build(source.hmac)

        with pytest.raises(Rejection) as caught:
            generic_hmac.accept(incoming, source, SETTINGS, scheme=scheme)

        check_rejection(caught.value)


def client_states(drafts: list[EventDraft]) -> list[Any]:
    return [msgspec.json.decode(draft.body).get("clientState") for draft in drafts]


class TestGraphAccept:
    @MANY
    @given(incoming=graph_requests())
    def test_request_ends_defined(self, keys: LoopbackKeys, incoming: Incoming) -> None:
        outcome = outcome_of(
            lambda: keys.run(graph.accept(incoming, GRAPH_SOURCE, SETTINGS))
        )

        if isinstance(outcome, list):
            check_outcome(outcome, GRAPH_SOURCE, convertible=True)
            assert set(client_states(outcome)) == {GRAPH_CLIENT_STATE}
        elif outcome is not None:
            check_outcome(outcome, GRAPH_SOURCE, convertible=False)

    @FEW
    @given(
        incoming=graph_requests(
            st.lists(jwt_tokens(MICROSOFT_KEY, graph_claims), max_size=3)
        )
    )
    def test_rich_request_with_keys_refused(
        self, keys: LoopbackKeys, incoming: Incoming
    ) -> None:
        source = graph_rich_source(keys.refused_url)

        outcome = outcome_of(
            lambda: keys.run(
                graph.accept(incoming, source, SETTINGS, jwks=keys.refused)
            ),
            keys_fetched=True,
        )

        if isinstance(outcome, list):
            check_outcome(outcome, source, convertible=True)
            assert set(client_states(outcome)) == {GRAPH_CLIENT_STATE}

    @FEW
    @given(
        incoming=graph_requests(
            st.lists(jwt_tokens(MICROSOFT_KEY, graph_claims), max_size=3)
        )
    )
    def test_rich_request_with_keys_served(
        self, keys: LoopbackKeys, incoming: Incoming
    ) -> None:
        source = graph_rich_source(keys.served_url)

        outcome = outcome_of(
            lambda: keys.run(graph.accept(incoming, source, SETTINGS, jwks=keys.served))
        )

        if isinstance(outcome, list):
            check_outcome(outcome, source, convertible=True)
            assert set(client_states(outcome)) == {GRAPH_CLIENT_STATE}


def carries_token(incoming: Incoming) -> bool:
    tokens = parse_qs(incoming.query_string, keep_blank_values=True).get("token")
    return tokens == [GMAIL_TOKEN]


pubsub_authorizations = bearer_headers(jwt_tokens(GOOGLE_KEY, pubsub_claims))


class TestGmailAccept:
    @MANY
    @given(incoming=gmail_requests())
    def test_token_push_ends_defined(self, incoming: Incoming) -> None:
        outcome = outcome_of(lambda: gmail.accept(incoming, GMAIL_SOURCE, SETTINGS))

        if outcome is not None:
            check_outcome(outcome, GMAIL_SOURCE, convertible=True)
            assert carries_token(incoming)

    @FEW
    @given(incoming=gmail_requests(pubsub_authorizations))
    def test_oidc_push_with_keys_refused(
        self, keys: LoopbackKeys, incoming: Incoming
    ) -> None:
        source = gmail_oidc_source(keys.refused_url)

        outcome = outcome_of(
            lambda: keys.run(
                gmail.accept_oidc(incoming, source, SETTINGS, jwks=keys.refused)
            ),
            keys_fetched=True,
        )

        assert outcome is None, "accepted a push whose signing keys were unreachable"

    @FEW
    @given(incoming=gmail_requests(pubsub_authorizations))
    def test_oidc_push_with_keys_served(
        self, keys: LoopbackKeys, incoming: Incoming
    ) -> None:
        source = gmail_oidc_source(keys.served_url)

        outcome = outcome_of(
            lambda: keys.run(
                gmail.accept_oidc(incoming, source, SETTINGS, jwks=keys.served)
            )
        )

        if outcome is not None:
            check_outcome(outcome, source, convertible=True)
