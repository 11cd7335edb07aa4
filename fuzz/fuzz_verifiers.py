"""Fuzz target: the four signature verifiers, compiled against pure Python.

The input picks a verifier and its arguments, all bytes drawn from the input, with
the scheme's prefixes and separators mixed in so that the header parsers see their
own syntax. Fails when either implementation raises, returns something other than
a Verdict value, or disagrees with the other.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.fastpath import Verdict, _native, _pure

from _inputs import Draw

VERDICTS = {int(verdict) for verdict in Verdict}
TOKENS = [b"v1,", b"v1=", b"t=", b"sha256=", b",", b" ", b"=", b"1700000000"]


def header(draw: Draw) -> bytes:
    parts = []
    for _ in range(draw.integer(0, 6)):
        if draw.one_in(2):
            parts.append(draw.choice(TOKENS))
        else:
            parts.append(draw.binary(70))
    return b"".join(parts)


def secrets(draw: Draw) -> tuple[bytes, ...]:
    return tuple(draw.binary(80) for _ in range(draw.integer(0, 3)))


def arguments(draw: Draw) -> tuple[str, tuple[object, ...]]:
    name = draw.choice(
        ["verify_standard", "verify_github", "verify_stripe", "verify_hmac"]
    )
    now = draw.integer(-(2**70), 2**70) if draw.one_in(4) else 1_700_000_000
    tolerance = draw.integer(-1, 2**70) if draw.one_in(4) else 300
    if name == "verify_standard":
        return name, (
            secrets(draw),
            draw.binary(40),
            header(draw),
            draw.binary(600),
            header(draw),
            now,
            tolerance,
        )
    if name == "verify_github":
        return name, (secrets(draw), draw.binary(600), header(draw))
    if name == "verify_stripe":
        return name, (secrets(draw), draw.binary(600), header(draw), now, tolerance)
    algorithm = draw.choice(["sha256", "sha512", "sha1"])
    encoding = draw.choice(["hex", "base64"])
    chunks = tuple(draw.binary(300) for _ in range(draw.integer(0, 4)))
    signatures = tuple(header(draw) for _ in range(draw.integer(0, 3)))
    return name, (secrets(draw), algorithm, chunks, signatures, encoding)


def test_one_input(data: bytes) -> None:
    name, call = arguments(Draw(data))
    native = getattr(_native, name)(*call)
    pure = getattr(_pure, name)(*call)
    assert type(native) is int, type(native)
    assert native in VERDICTS, native
    assert native == pure, (name, native, pure)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
