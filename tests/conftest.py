"""Shared fixtures: private Redis servers and gateway processes on loopback.

Every test session starts its own ``redis-server`` on a free port, so the suite
neither needs nor touches a Redis that is already running. Tests that stop or pause
Redis start one more server of their own (:func:`start_redis`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

REPO = Path(__file__).resolve().parent.parent
HOOKGATE = str(Path(sys.executable).with_name("hookgate"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A redis-server process that this test session started and owns."""

    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def start_redis(directory: Path, port: int | None = None) -> RedisServer:
    """Start a private redis-server and wait until it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; run scripts/bootstrap")
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port=port, process=process, directory=directory)
    client = server.client()
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                server.stop()
                pytest.fail(f"redis-server on port {port} did not start")
            time.sleep(0.05)
    client.close()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _redis_url_for_consumer_tests(redis_server: RedisServer) -> None:
    # Consumer tests keep to database 9 and build their clients from this variable.
    os.environ["HOOKGATE_TEST_REDIS_URL"] = f"redis://127.0.0.1:{redis_server.port}/9"


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's Redis, emptied before each test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


# Secrets of the test sources; the Standard Webhooks one is the scheme's own example.
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_SECRET_NEXT = "whsec_dGVzdC1zZWNyZXQtZm9yLXJvdGF0aW9uLTAx"
GRAPH_CLIENT_STATE = "graph-client-state-for-tests"
GRAPH_CLIENT_STATE_NEXT = "graph-client-state-for-rotation"
GMAIL_TOKEN = "gmail-push-token-for-tests"
GMAIL_TOKEN_NEXT = "gmail-push-token-for-rotation"
# The secret of the example in GitHub's "Validating webhook deliveries".
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SECRET_NEXT = "github-secret-for-rotation"
STRIPE_SECRET = "whsec_test_c2VjcmV0LWZvci1zdHJpcGUtdGVzdHM"
STRIPE_SECRET_NEXT = "whsec_test_c2VjcmV0LWZvci1zdHJpcGUtcm9sbA"
HMAC_SECRET = "hmac-secret-for-tests"
HMAC_SECRET_NEXT = "hmac-secret-for-rotation"
# Each *_EXPIRED secret is listed with a not_after in the past, so it must not verify.
GITHUB_SECRET_EXPIRED = "github-secret-that-expired"
STRIPE_SECRET_EXPIRED = "whsec_test_ZXhwaXJlZC1zdHJpcGUtc2VjcmV0"
HMAC_SECRET_EXPIRED = "hmac-secret-that-expired"
EXPIRED_AT = "2001-01-01T00:00:00Z"
MAX_BODY = 64 * 1024

TEST_CONFIG = f"""
[gateway]
max_body_bytes = {MAX_BODY}
flush_timeout_ms = 500

[[sources]]
id = "acme-mail"
tenant = "acme"
provider = "standard-webhooks"
secret_env = ["TEST_STANDARD_SECRET", "TEST_STANDARD_SECRET_NEXT"]

[[sources]]
id = "acme-outlook"
tenant = "acme"
provider = "graph"
secret_env = ["TEST_GRAPH_CLIENT_STATE"]

[[sources]]
id = "globex-gmail"
tenant = "globex"
provider = "gmail-pubsub"
secret_env = ["TEST_GMAIL_TOKEN"]

[[sources]]
id = "acme-github"
tenant = "acme"
provider = "github"
secret_env = ["TEST_GITHUB_SECRET"]
secrets = [
  {{ env = "TEST_GITHUB_SECRET_NEXT", not_after = "2999-12-31T23:59:59+02:00" }},
  {{ env = "TEST_GITHUB_SECRET_EXPIRED", not_after = "{EXPIRED_AT}" }},
]

[[sources]]
id = "acme-stripe"
tenant = "acme"
provider = "stripe"
secret_env = ["TEST_STRIPE_SECRET"]
secrets = [
  {{ env = "TEST_STRIPE_SECRET_NEXT" }},
  {{ env = "TEST_STRIPE_SECRET_EXPIRED", not_after = {EXPIRED_AT} }},
]

# Signs "{{id}}.{{timestamp}}.{{body}}" with every option that takes a header.
[[sources]]
id = "acme-hmac"
tenant = "acme"
provider = "hmac"
secret_env = ["TEST_HMAC_SECRET"]
secrets = [
  {{ env = "TEST_HMAC_SECRET_NEXT" }},
  {{ env = "TEST_HMAC_SECRET_EXPIRED", not_after = "{EXPIRED_AT}" }},
]
[sources.hmac]
header = "X-Signature"
prefix = "sha256="
timestamp_header = "X-Timestamp"
id_header = "X-Event-Id"
signed_content = "{{id}}.{{timestamp}}.{{body}}"

# Every [sources.hmac] default: hex SHA-256 of the body, the event id its digest.
[[sources]]
id = "acme-hmac-plain"
tenant = "acme"
provider = "hmac"
secret_env = ["TEST_HMAC_SECRET"]
[sources.hmac]
header = "X-Plain-Signature"

[[sources]]
id = "acme-hmac-b64"
tenant = "acme"
provider = "hmac"
secret_env = ["TEST_HMAC_SECRET"]
[sources.hmac]
header = "X-Signatures"
algorithm = "sha512"
encoding = "base64"
prefix = "v1,"
separator = " "

[[sources]]
id = "acme-hmac-sha1"
tenant = "acme"
provider = "hmac"
secret_env = ["TEST_HMAC_SECRET"]
[sources.hmac]
header = "X-Hub-Signature"
algorithm = "sha1"
prefix = "sha1="
signed_content = "hookgate:{{body}}"

# The first secrets of the sources above, expired here; the next ones still valid.
[[sources]]
id = "acme-mail-rotated"
tenant = "acme"
provider = "standard-webhooks"
secrets = [
  {{ env = "TEST_STANDARD_SECRET", not_after = "{EXPIRED_AT}" }},
  {{ env = "TEST_STANDARD_SECRET_NEXT" }},
]

[[sources]]
id = "acme-outlook-rotated"
tenant = "acme"
provider = "graph"
secrets = [
  {{ env = "TEST_GRAPH_CLIENT_STATE", not_after = "{EXPIRED_AT}" }},
  {{ env = "TEST_GRAPH_CLIENT_STATE_NEXT" }},
]

[[sources]]
id = "globex-gmail-rotated"
tenant = "globex"
provider = "gmail-pubsub"
secrets = [
  {{ env = "TEST_GMAIL_TOKEN", not_after = "{EXPIRED_AT}" }},
  {{ env = "TEST_GMAIL_TOKEN_NEXT" }},
]
"""

TEST_ENV = {
    "TEST_STANDARD_SECRET": STANDARD_SECRET,
    "TEST_STANDARD_SECRET_NEXT": STANDARD_SECRET_NEXT,
    "TEST_GRAPH_CLIENT_STATE": GRAPH_CLIENT_STATE,
    "TEST_GRAPH_CLIENT_STATE_NEXT": GRAPH_CLIENT_STATE_NEXT,
    "TEST_GMAIL_TOKEN": GMAIL_TOKEN,
    "TEST_GMAIL_TOKEN_NEXT": GMAIL_TOKEN_NEXT,
    "TEST_GITHUB_SECRET": GITHUB_SECRET,
    "TEST_GITHUB_SECRET_NEXT": GITHUB_SECRET_NEXT,
    "TEST_GITHUB_SECRET_EXPIRED": GITHUB_SECRET_EXPIRED,
    "TEST_STRIPE_SECRET": STRIPE_SECRET,
    "TEST_STRIPE_SECRET_NEXT": STRIPE_SECRET_NEXT,
    "TEST_STRIPE_SECRET_EXPIRED": STRIPE_SECRET_EXPIRED,
    "TEST_HMAC_SECRET": HMAC_SECRET,
    "TEST_HMAC_SECRET_NEXT": HMAC_SECRET_NEXT,
    "TEST_HMAC_SECRET_EXPIRED": HMAC_SECRET_EXPIRED,
}


@dataclass
class Process:
    """A hookgate command running in the background, with its captured output."""

    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def write_config(directory: Path, text: str = TEST_CONFIG) -> Path:
    path = directory / "hookgate.toml"
    path.write_text(text)
    return path


def start_hookgate(
    args: list[str], directory: Path, redis_url: str, env: dict[str, str] | None = None
) -> Process:
    log_path = directory / f"{args[0]}-{time.monotonic_ns()}.log"
    environment = {
        **os.environ,
        **TEST_ENV,
        "REDIS_URL": redis_url,
        "HOOKGATE_LOG_FORMAT": "json",
        **(env or {}),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [HOOKGATE, *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=directory,
        )
    return Process(process=process, log_path=log_path)


def start_gateway(
    directory: Path,
    redis_url: str,
    config: str = TEST_CONFIG,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Process:
    """Start ``hookgate serve`` and wait until ``/healthz`` answers."""
    config_path = write_config(directory, config)
    port = free_port()
    gateway = start_hookgate(
        [
            "serve",
            "--config",
            str(config_path),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        directory,
        redis_url,
        env,
    )
    gateway.url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{gateway.url}/healthz", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        if gateway.process.poll() is not None or time.monotonic() > deadline:
            gateway.stop()
            pytest.fail(f"gateway did not start:\n{gateway.log()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def gateway(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    """A gateway process on the session's Redis, shared by one test module."""
    process = start_gateway(tmp_path_factory.mktemp("gateway"), redis_server.url)
    yield process
    process.stop()


@pytest.fixture
def http(gateway: Process) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client
