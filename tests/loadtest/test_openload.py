"""The open-model generator against the bare baseline app, and its parser."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from hookgate.loadtest._providers import Standard
from hookgate.loadtest._requests import new_secret
from hookgate.loadtest.openload import _parse_response, run_offer
from hookgate.tests.conftest import free_port

RATE = 2000
DURATION_S = 1.0


@pytest.fixture(scope="module")
def bare_port() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hookgate.loadtest.bare", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("bare app did not start")
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.slow
def test_offer_completes_schedule(bare_port: int) -> None:
    builder = Standard("bench", new_secret())
    count = round(RATE * DURATION_S)
    requests = [builder.build().raw(f"127.0.0.1:{bare_port}") for _ in range(count)]

    result = run_offer(
        "127.0.0.1",
        bare_port,
        requests,
        rate=RATE,
        duration_s=DURATION_S,
        connections=8,
    )

    assert result.scheduled == count
    assert result.completed == count
    assert result.statuses == {202: count}
    assert result.unfinished == 0
    assert result.connection_errors == 0
    assert len(result.latencies_us) == count
    assert len(result.accepted_ids) == count
    assert result.percentile_ms(50) <= result.percentile_ms(99)


def test_offer_needs_enough_requests(bare_port: int) -> None:
    with pytest.raises(ValueError, match="10 requests given, 2000 needed"):
        run_offer(
            "127.0.0.1", bare_port, [b""] * 10, rate=RATE, duration_s=1, connections=1
        )


class TestParseResponse:
    RESPONSE = (
        b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
        b'content-length: 14\r\n\r\n{"event_id":1}'
    )

    def test_whole_response(self) -> None:
        parsed = _parse_response(bytearray(self.RESPONSE + b"HTTP/1.1"))

        assert parsed == (202, b'{"event_id":1}', len(self.RESPONSE))

    def test_partial_body_waits(self) -> None:
        assert _parse_response(bytearray(self.RESPONSE[:-1])) is None

    def test_partial_head_waits(self) -> None:
        assert _parse_response(bytearray(self.RESPONSE[:20])) is None
