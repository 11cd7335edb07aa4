"""An address the gateway cannot listen on stops start-up with one line."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookgate.gateway.server import ListenError, check_address
from hookgate.tests.conftest import HOOKGATE

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = """
[[sources]]
id = "acme-mail"
tenant = "acme"
provider = "standard-webhooks"
secret_env = ["HOOKGATE_TEST_LISTEN_SECRET"]
"""


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_check_address_port_in_use(taken_port: int) -> None:
    with pytest.raises(ListenError) as caught:
        check_address("127.0.0.1", taken_port)

    assert f"127.0.0.1:{taken_port}" in str(caught.value)
    assert "Address already in use" in str(caught.value)
    assert "choose another port" in str(caught.value)


def test_check_address_host_name() -> None:
    with pytest.raises(ListenError) as caught:
        check_address("localhost", free_port())

    assert "localhost" in str(caught.value)
    assert "not an IP address" in str(caught.value)
    assert "choose another port" not in str(caught.value)


def test_check_address_unassigned_ip() -> None:
    # 192.0.2.0/24 is reserved for documentation, so no host has it.
    with pytest.raises(ListenError) as caught:
        check_address("192.0.2.1", free_port())

    assert "192.0.2.1" in str(caught.value)


def test_check_address_free_port() -> None:
    port = free_port()

    check_address("127.0.0.1", port)

    # The check released the port again.
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "hookgate.toml"
    config.write_text(CONFIG)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOOKGATE_TEST_LISTEN_SECRET": SECRET,
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(
        [*argv, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )


def test_serve_port_in_use(taken_port: int, tmp_path: Path) -> None:
    result = run([HOOKGATE, "serve", "--port", str(taken_port)], tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{taken_port}: Address already in use;"
        " choose another port or stop the process that uses it"
    ]


def test_serve_port_out_of_range(tmp_path: Path) -> None:
    result = run([HOOKGATE, "serve", "--port", "70000"], tmp_path)

    assert result.returncode == 2
    assert "70000" in result.stderr


def test_serve_zero_workers(tmp_path: Path) -> None:
    result = run([HOOKGATE, "serve", "--workers", "0"], tmp_path)

    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_bare_port_in_use(taken_port: int) -> None:
    argv = [sys.executable, "-m", "hookgate.loadtest.bare", "--port", str(taken_port)]

    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Address already in use" in result.stderr


def test_nowrite_port_in_use(taken_port: int, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "hookgate.loadtest.nowrite"]

    result = run([*argv, "--port", str(taken_port)], tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Address already in use" in result.stderr
