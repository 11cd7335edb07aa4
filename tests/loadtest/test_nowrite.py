"""The bench's no-write baseline: hookgate's request handling with writes faked.

Its rate means something only if it does all of ``hookgate serve``'s work up to
the write, so these tests check that it still verifies and decodes, and that it
stores nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from hookgate.tests.conftest import TEST_ENV, RedisServer, free_port, write_config
from hookgate.tests.gateway.helpers import standard_headers

BODY = b'{"type":"invoice.paid","data":{"id":"inv_1"}}'


@pytest.fixture(scope="module")
def nowrite(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("nowrite")
    port = free_port()
    argv = [sys.executable, "-m", "hookgate.loadtest.nowrite", "--port", str(port)]
    argv += ["--config", str(write_config(directory))]
    # Pointed at the tests' Redis, so that a write would show up there.
    env = {**os.environ, **TEST_ENV, "REDIS_URL": redis_server.url}
    log_path = directory / "nowrite.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nowrite did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_accepts_signed_request_without_writing(
    nowrite: str, redis_client: redis.Redis
) -> None:
    response = httpx.post(
        f"{nowrite}/hooks/acme-mail", content=BODY, headers=standard_headers(BODY)
    )

    assert response.status_code == 202
    assert response.json()["event_id"].startswith("evt_")
    assert redis_client.keys("*") == []


def test_still_verifies_signatures(nowrite: str) -> None:
    headers = standard_headers(BODY)
    headers["webhook-signature"] = "v1,bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBib2R5Lg=="

    response = httpx.post(f"{nowrite}/hooks/acme-mail", content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"


def test_still_decodes_the_body(nowrite: str) -> None:
    body = b'{"type": "invoice.paid", '

    response = httpx.post(
        f"{nowrite}/hooks/acme-mail", content=body, headers=standard_headers(body)
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"

    completed = subprocess.run(
        [sys.executable, "-m", "hookgate.loadtest.nowrite", "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stderr.startswith(f"error: {missing}: cannot read config file")
    assert "Traceback" not in completed.stderr
