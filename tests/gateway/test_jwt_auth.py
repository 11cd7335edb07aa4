"""JWT verification of Pub/Sub push and Graph validation tokens, and the JWKS cache.

Keys are generated here and served by a JWKS server on 127.0.0.1, so no test
reaches Google or Microsoft. The cache runs on a fake clock, so its age and rate
limits are tested without waiting.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from hookgate.gateway.jwks import JwksCache, JwksUnavailable
from hookgate.gateway.jwt_auth import (
    TokenRejected,
    verify_graph_validation_tokens,
    verify_pubsub_token,
)
from hookgate.tests.gateway.tokens import (
    GRAPH_APP_ID,
    GRAPH_TENANT,
    OTHER_TENANT,
    PUBSUB_AUDIENCE,
    SERVICE_ACCOUNT,
    FakeClock,
    JwksServer,
    graph_claims,
    hs256_token,
    pubsub_claims,
    signing_key,
    unsigned_token,
)

MAX_AGE_S = 3600.0
GRACE_S = 600.0
INTERVAL_S = 30.0

GOOGLE_KEY = signing_key("google-1")
MICROSOFT_KEY = signing_key("microsoft-1")
# Never published: tokens signed with it must fail however they name their key.
ROGUE_KEY = signing_key("rogue")


@pytest.fixture
async def server() -> AsyncIterator[JwksServer]:
    jwks_server = JwksServer([GOOGLE_KEY, MICROSOFT_KEY])
    await jwks_server.start()
    yield jwks_server
    await jwks_server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def jwks(server: JwksServer, clock: FakeClock) -> AsyncIterator[JwksCache]:
    # trust_env=False keeps a proxy set in the environment away from loopback.
    async with httpx.AsyncClient(trust_env=False) as client:
        cache = JwksCache(
            server.url,
            max_age_s=MAX_AGE_S,
            stale_grace_s=GRACE_S,
            min_refresh_interval_s=INTERVAL_S,
            timeout_s=0.5,
            client=client,
            clock=clock,
        )
        yield cache
        await cache.aclose()


async def verify_pubsub(jwks: JwksCache, token: str) -> dict[str, object]:
    return await verify_pubsub_token(
        f"Bearer {token}",
        audience=PUBSUB_AUDIENCE,
        service_account=SERVICE_ACCOUNT,
        jwks=jwks,
    )


async def pubsub_rejection(jwks: JwksCache, header: str | None) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        await verify_pubsub_token(
            header,
            audience=PUBSUB_AUDIENCE,
            service_account=SERVICE_ACCOUNT,
            jwks=jwks,
        )
    return caught.value


async def graph_rejection(
    jwks: JwksCache, tokens: list[str], tenant_ids: list[str] | None = None
) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        await verify_graph_validation_tokens(
            tokens, app_id=GRAPH_APP_ID, tenant_ids=tenant_ids, jwks=jwks
        )
    return caught.value


class TestPubsubToken:
    async def test_valid_token_returns_claims(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        claims = await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        assert claims["email"] == SERVICE_ACCOUNT
        assert claims["aud"] == PUBSUB_AUDIENCE
        assert server.fetches == 1

    async def test_cached_key_needs_no_fetch(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        assert server.fetches == 1

    async def test_lowercase_bearer_scheme_accepted(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims())

        claims = await verify_pubsub_token(
            f"bearer {token}",
            audience=PUBSUB_AUDIENCE,
            service_account=SERVICE_ACCOUNT,
            jwks=jwks,
        )

        assert claims["email"] == SERVICE_ACCOUNT

    async def test_legacy_issuer_accepted(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(iss="accounts.google.com"))

        claims = await verify_pubsub(jwks, token)

        assert claims["iss"] == "accounts.google.com"

    async def test_wrong_audience_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(aud="https://elsewhere.example.com/"))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "wrong_audience"
        assert rejection.status == 401

    async def test_audience_list_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(aud=[PUBSUB_AUDIENCE, "https://x/"]))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "wrong_audience"

    async def test_expired_token_rejected(self, jwks: JwksCache) -> None:
        now = int(time.time())
        claims = pubsub_claims(iat=now - 7200, exp=now - 120)

        rejection = await pubsub_rejection(jwks, f"Bearer {GOOGLE_KEY.sign(claims)}")

        assert rejection.code == "expired_token"

    async def test_expiry_within_leeway_accepted(self, jwks: JwksCache) -> None:
        now = int(time.time())
        token = GOOGLE_KEY.sign(pubsub_claims(iat=now - 3600, exp=now - 30))

        claims = await verify_pubsub(jwks, token)

        assert claims["exp"] == now - 30

    async def test_future_iat_beyond_leeway_rejected(self, jwks: JwksCache) -> None:
        now = int(time.time())
        claims = pubsub_claims(iat=now + 300, exp=now + 3900)

        rejection = await pubsub_rejection(jwks, f"Bearer {GOOGLE_KEY.sign(claims)}")

        assert rejection.code == "token_not_yet_valid"

    async def test_future_iat_within_leeway_accepted(self, jwks: JwksCache) -> None:
        now = int(time.time())
        token = GOOGLE_KEY.sign(pubsub_claims(iat=now + 30, exp=now + 3630))

        claims = await verify_pubsub(jwks, token)

        assert claims["iat"] == now + 30

    async def test_wrong_issuer_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(iss="https://accounts.example.com"))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "wrong_issuer"

    async def test_wrong_email_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(email="intruder@example.com"))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "wrong_service_account"

    async def test_unverified_email_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(email_verified=False))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "wrong_service_account"

    async def test_string_email_verified_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(email_verified="true"))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "wrong_service_account"

    async def test_missing_email_claim_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(without=("email",)))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "invalid_token"
        assert "'email'" in rejection.detail

    async def test_missing_exp_claim_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(without=("exp",)))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "invalid_token"
        assert "'exp'" in rejection.detail

    async def test_unpublished_kid_rejected(self, jwks: JwksCache) -> None:
        token = ROGUE_KEY.sign(pubsub_claims())

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "unknown_key"

    async def test_published_kid_other_key_rejected(self, jwks: JwksCache) -> None:
        token = ROGUE_KEY.sign(pubsub_claims(), kid=GOOGLE_KEY.kid)

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "invalid_signature"

    async def test_swapped_claims_rejected(self, jwks: JwksCache) -> None:
        header, _, signature = GOOGLE_KEY.sign(pubsub_claims()).split(".")
        other = GOOGLE_KEY.sign(pubsub_claims(email="intruder@example.com"))
        token = f"{header}.{other.split('.')[1]}.{signature}"

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "invalid_signature"

    async def test_alg_none_rejected(self, jwks: JwksCache, server: JwksServer) -> None:
        token = unsigned_token({"alg": "none", "kid": GOOGLE_KEY.kid}, pubsub_claims())

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "unsupported_algorithm"
        assert server.fetches == 0

    async def test_hs256_with_public_key_rejected(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        header = {"alg": "HS256", "typ": "JWT", "kid": GOOGLE_KEY.kid}
        token = hs256_token(header, pubsub_claims(), GOOGLE_KEY.public_pem)

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "unsupported_algorithm"
        assert server.fetches == 0

    async def test_rs512_token_rejected(self, jwks: JwksCache) -> None:
        token = jwt_rs512(pubsub_claims())

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "unsupported_algorithm"

    async def test_missing_header_rejected(self, jwks: JwksCache) -> None:
        rejection = await pubsub_rejection(jwks, None)

        assert rejection.code == "missing_token"

    async def test_blank_header_rejected(self, jwks: JwksCache) -> None:
        rejection = await pubsub_rejection(jwks, "   ")

        assert rejection.code == "missing_token"

    async def test_bare_token_rejected(self, jwks: JwksCache) -> None:
        rejection = await pubsub_rejection(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        assert rejection.code == "malformed_token"

    async def test_basic_scheme_rejected(self, jwks: JwksCache) -> None:
        rejection = await pubsub_rejection(jwks, "Basic dXNlcjpwYXNzd29yZA==")

        assert rejection.code == "malformed_token"

    async def test_bearer_without_token_rejected(self, jwks: JwksCache) -> None:
        rejection = await pubsub_rejection(jwks, "Bearer ")

        assert rejection.code == "malformed_token"

    async def test_garbage_token_rejected(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        rejection = await pubsub_rejection(jwks, "Bearer not-a.jwt.at-all")

        assert rejection.code == "malformed_token"
        assert server.fetches == 0

    async def test_token_with_spaces_rejected(self, jwks: JwksCache) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims())

        rejection = await pubsub_rejection(jwks, f"Bearer {token} {token}")

        assert rejection.code == "malformed_token"

    async def test_token_without_kid_rejected(self, jwks: JwksCache) -> None:
        token = unsigned_token({"alg": "RS256", "typ": "JWT"}, pubsub_claims())

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "malformed_token"

    async def test_oversized_token_rejected(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        token = GOOGLE_KEY.sign(pubsub_claims(padding="x" * 20_000))

        rejection = await pubsub_rejection(jwks, f"Bearer {token}")

        assert rejection.code == "malformed_token"
        assert server.fetches == 0

    async def test_detail_never_contains_token(self, jwks: JwksCache) -> None:
        tokens = [
            GOOGLE_KEY.sign(pubsub_claims(aud="https://elsewhere.example.com/")),
            GOOGLE_KEY.sign(pubsub_claims(email="intruder@example.com")),
            ROGUE_KEY.sign(pubsub_claims(), kid=GOOGLE_KEY.kid),
            unsigned_token({"alg": "none"}, pubsub_claims()),
        ]

        for token in tokens:
            rejection = await pubsub_rejection(jwks, f"Bearer {token}")
            for part in token.split("."):
                assert not part or part not in rejection.detail


def jwt_rs512(claims: dict[str, object]) -> str:
    return jwt.encode(
        claims,
        GOOGLE_KEY.private_key,
        algorithm="RS512",
        headers={"kid": GOOGLE_KEY.kid},
    )


class TestJwksCache:
    async def test_key_rotation_refreshes_once(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))
        new_key = signing_key("google-2")
        server.keys = [new_key]
        clock.advance(INTERVAL_S)

        claims = await verify_pubsub(jwks, new_key.sign(pubsub_claims()))
        await verify_pubsub(jwks, new_key.sign(pubsub_claims()))

        assert claims["email"] == SERVICE_ACCOUNT
        assert server.fetches == 2

    async def test_rotated_out_key_rejected(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))
        new_key = signing_key("google-2")
        server.keys = [new_key]
        clock.advance(INTERVAL_S)
        await verify_pubsub(jwks, new_key.sign(pubsub_claims()))

        old_token = GOOGLE_KEY.sign(pubsub_claims())
        rejection = await pubsub_rejection(jwks, f"Bearer {old_token}")

        assert rejection.code == "unknown_key"
        assert server.fetches == 2

    async def test_unknown_kid_flood_rate_limited(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await jwks.refresh()
        clock.advance(INTERVAL_S)
        headers = [
            f"Bearer {ROGUE_KEY.sign(pubsub_claims(), kid=uuid.uuid4().hex)}"
            for _ in range(50)
        ]

        concurrent = await asyncio.gather(
            *(pubsub_rejection(jwks, header) for header in headers)
        )
        fetches_after_burst = server.fetches
        for header in headers:
            await pubsub_rejection(jwks, header)
        fetches_after_repeat = server.fetches
        clock.advance(INTERVAL_S)
        await pubsub_rejection(jwks, headers[0])

        assert {rejection.code for rejection in concurrent} == {"unknown_key"}
        assert fetches_after_burst == 2
        assert fetches_after_repeat == 2
        assert server.fetches == 3

    async def test_concurrent_lookups_share_fetch(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.delay_s = 0.1
        tokens = [GOOGLE_KEY.sign(pubsub_claims()) for _ in range(20)]

        results = await asyncio.gather(*(verify_pubsub(jwks, t) for t in tokens))

        assert len(results) == 20
        assert server.fetches == 1

    async def test_cancelled_caller_keeps_shared_fetch(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.delay_s = 0.2
        first = asyncio.create_task(jwks.get_key(GOOGLE_KEY.kid))
        second = asyncio.create_task(jwks.get_key(GOOGLE_KEY.kid))
        await asyncio.sleep(0.05)

        first.cancel()
        key = await second

        assert key is not None
        assert first.cancelled()
        assert server.fetches == 1

    async def test_server_down_raises_unavailable(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        await server.close()

        with pytest.raises(JwksUnavailable) as caught:
            await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        assert caught.value.status == 503
        assert caught.value.code == "jwks_unavailable"
        assert "request failed" in caught.value.reason

    async def test_error_status_raises_unavailable(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.status = 500

        with pytest.raises(JwksUnavailable) as caught:
            await jwks.get_key(GOOGLE_KEY.kid)

        assert caught.value.reason == "HTTP status 500"

    async def test_failed_fetch_rate_limited(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        server.status = 500
        for _ in range(10):
            with pytest.raises(JwksUnavailable):
                await jwks.get_key(GOOGLE_KEY.kid)
        fetches_within_interval = server.fetches
        server.status = 200
        clock.advance(INTERVAL_S)

        key = await jwks.get_key(GOOGLE_KEY.kid)

        assert fetches_within_interval == 1
        assert key is not None
        assert server.fetches == 2

    async def test_slow_server_times_out(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.delay_s = 5.0
        started = time.monotonic()

        with pytest.raises(JwksUnavailable) as caught:
            await jwks.get_key(GOOGLE_KEY.kid)

        assert caught.value.reason == "timed out after 0.5 s"
        assert time.monotonic() - started < 2.0

    async def test_non_json_document_raises_unavailable(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.body = b"<html>maintenance</html>"

        with pytest.raises(JwksUnavailable) as caught:
            await jwks.get_key(GOOGLE_KEY.kid)

        assert caught.value.reason.startswith("not a JWKS document")

    async def test_oversized_document_raises_unavailable(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.body = b'{"keys": [], "padding": "' + b"x" * 2_000_000 + b'"}'

        with pytest.raises(JwksUnavailable) as caught:
            await jwks.get_key(GOOGLE_KEY.kid)

        assert "larger than" in caught.value.reason

    async def test_document_without_usable_keys_unavailable(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        server.keys = []

        with pytest.raises(JwksUnavailable) as caught:
            await jwks.get_key(GOOGLE_KEY.kid)

        assert "no RSA signing key" in caught.value.reason

    async def test_unusable_keys_skipped(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        weak = signing_key("weak", bits=1024)
        ec_public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        ec_jwk = {**ECAlgorithm.to_jwk(ec_public_key, as_dict=True), "kid": "ec"}
        encryption = {**signing_key("enc").jwk, "use": "enc"}
        private = {**signing_key("private").jwk, "d": "AQAB"}
        entries = [weak.jwk, ec_jwk, encryption, private, GOOGLE_KEY.jwk]
        server.body = _document(entries)

        found = {kid: await jwks.get_key(kid) for kid in ("weak", "ec", "enc")}
        private_key = await jwks.get_key("private")
        good_key = await jwks.get_key(GOOGLE_KEY.kid)

        assert found == {"weak": None, "ec": None, "enc": None}
        assert private_key is None
        assert good_key is not None

    async def test_stale_keys_refresh_in_background(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await jwks.refresh()
        server.delay_s = 0.2
        clock.advance(MAX_AGE_S)

        started = time.monotonic()
        await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))
        elapsed = time.monotonic() - started
        await server.wait_for_fetches(2)

        assert elapsed < 0.2
        assert server.fetches == 2

    async def test_stale_keys_serve_while_server_down(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await jwks.refresh()
        await server.close()
        clock.advance(MAX_AGE_S + GRACE_S - 1)

        claims = await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        assert claims["email"] == SERVICE_ACCOUNT

    async def test_keys_past_grace_unavailable(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await jwks.refresh()
        server.status = 500
        clock.advance(MAX_AGE_S + GRACE_S)

        with pytest.raises(JwksUnavailable):
            await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

    async def test_unknown_kid_after_failure_unavailable(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await jwks.refresh()
        server.status = 500
        clock.advance(INTERVAL_S)

        with pytest.raises(JwksUnavailable):
            await verify_pubsub(jwks, ROGUE_KEY.sign(pubsub_claims()))

    async def test_known_kid_after_failure_valid(
        self, jwks: JwksCache, server: JwksServer, clock: FakeClock
    ) -> None:
        await jwks.refresh()
        server.status = 500
        clock.advance(INTERVAL_S)
        with pytest.raises(JwksUnavailable):
            await jwks.get_key(ROGUE_KEY.kid)

        claims = await verify_pubsub(jwks, GOOGLE_KEY.sign(pubsub_claims()))

        assert claims["email"] == SERVICE_ACCOUNT

    async def test_forced_refresh_ignores_rate_limit(
        self, jwks: JwksCache, server: JwksServer
    ) -> None:
        await jwks.refresh()

        await jwks.refresh()

        assert server.fetches == 2


def _document(entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"keys": entries}).encode()


class TestGraphValidationTokens:
    async def test_valid_tokens_accepted(self, jwks: JwksCache) -> None:
        tokens = [
            MICROSOFT_KEY.sign(graph_claims()),
            MICROSOFT_KEY.sign(graph_claims(tenant=OTHER_TENANT)),
        ]

        result = await verify_graph_validation_tokens(
            tokens, app_id=GRAPH_APP_ID, jwks=jwks
        )

        assert result is None

    async def test_one_invalid_token_rejects_all(self, jwks: JwksCache) -> None:
        tokens = [
            MICROSOFT_KEY.sign(graph_claims()),
            ROGUE_KEY.sign(graph_claims(), kid=MICROSOFT_KEY.kid),
            MICROSOFT_KEY.sign(graph_claims(tenant=OTHER_TENANT)),
        ]

        rejection = await graph_rejection(jwks, tokens)

        assert rejection.code == "invalid_signature"
        assert rejection.detail.startswith("validation token 1:")

    async def test_wrong_audience_rejected(self, jwks: JwksCache) -> None:
        token = MICROSOFT_KEY.sign(graph_claims(aud=str(uuid.uuid4())))

        rejection = await graph_rejection(jwks, [token])

        assert rejection.code == "wrong_audience"

    async def test_wrong_appid_rejected(self, jwks: JwksCache) -> None:
        token = MICROSOFT_KEY.sign(graph_claims(appid=str(uuid.uuid4())))

        rejection = await graph_rejection(jwks, [token])

        assert rejection.code == "wrong_publisher"

    async def test_wrong_azp_rejected(self, jwks: JwksCache) -> None:
        claims = graph_claims(azp=str(uuid.uuid4()), without=("appid",))

        rejection = await graph_rejection(jwks, [MICROSOFT_KEY.sign(claims)])

        assert rejection.code == "wrong_publisher"

    async def test_conflicting_azp_rejected(self, jwks: JwksCache) -> None:
        claims = graph_claims(azp=str(uuid.uuid4()))

        rejection = await graph_rejection(jwks, [MICROSOFT_KEY.sign(claims)])

        assert rejection.code == "wrong_publisher"

    async def test_publisher_azp_accepted(self, jwks: JwksCache) -> None:
        claims = graph_claims(
            azp="0bf30f3b-4a52-48df-9a82-234910c4a086", without=("appid",)
        )

        result = await verify_graph_validation_tokens(
            [MICROSOFT_KEY.sign(claims)], app_id=GRAPH_APP_ID, jwks=jwks
        )

        assert result is None

    async def test_missing_publisher_claim_rejected(self, jwks: JwksCache) -> None:
        token = MICROSOFT_KEY.sign(graph_claims(without=("appid",)))

        rejection = await graph_rejection(jwks, [token])

        assert rejection.code == "wrong_publisher"

    async def test_expired_token_rejected(self, jwks: JwksCache) -> None:
        now = int(time.time())
        claims = graph_claims(iat=now - 7200, nbf=now - 7200, exp=now - 120)

        rejection = await graph_rejection(jwks, [MICROSOFT_KEY.sign(claims)])

        assert rejection.code == "expired_token"

    async def test_foreign_issuer_rejected(self, jwks: JwksCache) -> None:
        issuer = f"https://login.microsoftonline.com/{GRAPH_TENANT}/v2.0"
        token = MICROSOFT_KEY.sign(graph_claims(iss=issuer))

        rejection = await graph_rejection(jwks, [token])

        assert rejection.code == "wrong_issuer"

    async def test_issuer_without_tenant_rejected(self, jwks: JwksCache) -> None:
        token = MICROSOFT_KEY.sign(graph_claims(iss="https://sts.windows.net/"))

        rejection = await graph_rejection(jwks, [token])

        assert rejection.code == "wrong_issuer"

    async def test_unlisted_tenant_rejected(self, jwks: JwksCache) -> None:
        token = MICROSOFT_KEY.sign(graph_claims(tenant=OTHER_TENANT))

        rejection = await graph_rejection(jwks, [token], tenant_ids=[GRAPH_TENANT])

        assert rejection.code == "wrong_tenant"

    async def test_listed_tenant_ignores_case(self, jwks: JwksCache) -> None:
        token = MICROSOFT_KEY.sign(graph_claims())

        result = await verify_graph_validation_tokens(
            [token], app_id=GRAPH_APP_ID, tenant_ids=[GRAPH_TENANT.upper()], jwks=jwks
        )

        assert result is None

    async def test_empty_token_list_rejected(self, jwks: JwksCache) -> None:
        rejection = await graph_rejection(jwks, [])

        assert rejection.code == "missing_token"

    async def test_garbage_token_rejected(self, jwks: JwksCache) -> None:
        rejection = await graph_rejection(jwks, ["opaque-validation-token"])

        assert rejection.code == "malformed_token"
        assert rejection.detail.startswith("validation token 0:")
