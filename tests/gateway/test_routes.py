"""Routing, methods and health endpoints of a real gateway process."""

from __future__ import annotations

import httpx
import redis

from hookgate.tests.gateway.helpers import entry_count


def test_unknown_source_not_found(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    response = http.post("/hooks/nobody", content=b"{}")

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_source"
    assert entry_count(redis_client) == 0


def test_traversal_source_not_found(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    for path in (
        "/hooks/../hooks/acme-mail",
        "/hooks/acme-mail/",
        "/hooks/acme%2Dmail",
    ):
        response = http.post(path, content=b"{}")

        assert response.status_code in (404, 400), path
    assert entry_count(redis_client) == 0


def test_unknown_route_not_found(http: httpx.Client) -> None:
    response = http.get("/admin")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_get_on_hook_not_allowed(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.get("/hooks/acme-mail")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert entry_count(redis_client) == 0


def test_post_on_healthz_not_allowed(http: httpx.Client) -> None:
    response = http.post("/healthz")

    assert response.status_code == 405


def test_healthz_ok(http: httpx.Client) -> None:
    response = http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ready(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
