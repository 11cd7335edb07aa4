"""Structured inputs for the atheris targets: requests read from the fuzzer's bytes.

libFuzzer mutates bytes, and msgspec's C decoder gives it no comparisons to learn
JSON from, so random bytes alone rarely reach the checks behind the decoder. A
:class:`Draw` reads choices from the bytes instead: which fields a document has,
whether a header is repeated, whether the harness signs the body. Every choice's
first option is the well-formed one, because an exhausted input reads as zeros.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import atheris
import structlog

from hookgate.gateway.providers import Incoming
from hookgate.tests.fuzz.harness import TEXT_CHARSETS, FakeHeaders

T = TypeVar("T")

# Marks a field left out of a drawn JSON object.
ABSENT = object()


def silence_logs() -> None:
    """Drop log lines, which would otherwise print once per input."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
    )


class Draw:
    """Choices read from one fuzzer input, front to back."""

    def __init__(self, data: bytes) -> None:
        self.provider = atheris.FuzzedDataProvider(data)

    def integer(self, low: int, high: int) -> int:
        return int(self.provider.ConsumeIntInRange(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def one_in(self, n: int) -> bool:
        """Return True for one of n values, which an exhausted input never draws."""
        return self.integer(0, n - 1) == n - 1

    def text(self, max_size: int) -> str:
        return str(self.provider.ConsumeUnicodeNoSurrogates(self.integer(0, max_size)))

    def binary(self, max_size: int) -> bytes:
        return bytes(self.provider.ConsumeBytes(self.integer(0, max_size)))

    def rest(self) -> bytes:
        return bytes(self.provider.ConsumeBytes(self.provider.remaining_bytes()))

    def json_value(self, depth: int = 0) -> Any:
        """Return any JSON value, nested at most four levels."""
        kind = self.integer(0, 7 if depth < 4 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return self.one_in(2)
        if kind == 2:
            return self.integer(-(2**70), 2**70)
        if kind == 3:
            return self.provider.ConsumeRegularFloat()
        if kind in (4, 5):
            return self.text(20)
        if kind == 6:
            return [self.json_value(depth + 1) for _ in range(self.integer(0, 3))]
        return {
            self.text(8): self.json_value(depth + 1) for _ in range(self.integer(0, 3))
        }

    def field(self, sensible: Callable[[], Any]) -> Any:
        """Return ``sensible()`` mostly, else ABSENT or any JSON value."""
        kind = self.integer(0, 17)
        if kind == 16:
            return ABSENT
        if kind == 17:
            return self.json_value()
        return sensible()

    def mostly(self, valid: Sequence[Any], invalid: Sequence[Any]) -> Any:
        """Return a ``valid`` value six times in seven, else an ``invalid`` one."""
        if self.one_in(7):
            return self.choice(invalid)
        return self.choice(valid)

    def charset(self) -> str:
        if self.one_in(8):
            return self.choice(TEXT_CHARSETS)
        return "utf-8"

    def body(self, document: Callable[[], Any], charset: str) -> bytes:
        """Return a document as JSON in ``charset``, damaged now and then."""
        kind = self.integer(0, 15)
        if kind == 13:
            return self.binary(400)
        if kind == 14:
            depth = self.choice([100, 1_000, 100_000])
            return b"[" * depth + b"]" * depth
        if kind == 15:
            return b""
        value = document() if kind < 10 else self.json_value()
        if value is ABSENT:
            value = {}
        text = json.dumps(value, ensure_ascii=self.one_in(2))
        try:
            body = text.encode(charset)
        except (UnicodeError, LookupError):
            body = text.encode()
        flaw = self.integer(0, 15)
        if flaw == 13 and body:
            return body[: self.integer(0, len(body) - 1)]
        if flaw == 14:
            return body + self.binary(8)
        if flaw == 15:
            return b"\xef\xbb\xbf" + body
        return body

    def timestamp(self) -> str:
        """Return a Unix time in seconds near now, or a malformed one."""
        kind = self.integer(0, 7)
        if kind == 6:
            return self.choice(["", "0", "-1", " 1", "1e9", "9" * 30, "٣"])
        if kind == 7:
            return self.text(12)
        return str(int(time.time()) + self.integer(-400, 400))

    def event_id(self) -> str:
        kind = self.integer(0, 8)
        if kind == 7:
            return self.text(40)
        if kind == 8:
            return self.choice(["", "m" * 256, "m" * 257])
        return "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

    def headers(self, pairs: list[tuple[str, str]]) -> FakeHeaders:
        """Return the pairs, one perhaps dropped or repeated, plus other headers."""
        kept = [pair for pair in pairs if not self.one_in(20)]
        if pairs and self.one_in(5):
            name, value = self.choice(pairs)
            kept.append((name, value if self.one_in(2) else value + "x"))
        names = ["accept", *[name for name, _ in pairs]]
        for _ in range(self.integer(0, 2)):
            name = self.choice(names) if self.one_in(2) else self.text(12)
            kept.insert(self.integer(0, len(kept)), (name, self.text(40)))
        return FakeHeaders(kept)

    def incoming(
        self,
        body: bytes,
        charset: str,
        pairs: list[tuple[str, str]],
        query_string: str = "",
    ) -> Incoming:
        return Incoming(
            headers=self.headers(pairs),
            query_string=query_string,
            body=body,
            charset=charset,
            received_at_ms=time.time_ns() // 1_000_000,
        )


def json_object(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop the fields drawn as ABSENT."""
    return {name: value for name, value in fields.items() if value is not ABSENT}
