"""Fuzz target: content decoding, the Content-Type charset and the UTF-8 check.

The input is split into a Content-Encoding, a Content-Type, a size limit and a
body, which the harness compresses first for some inputs. Fails on any exception
but Rejection, on a rejection outside 400, 413 and 415, on decoded output past the
limit, and on a UTF-8 result that is not the text of the body.
"""

from __future__ import annotations

import codecs
import gzip
import sys
import zlib

import atheris

with atheris.instrument_imports(include=["hookgate"]):
    from hookgate.gateway.body import charset_of, decode_content, utf8_json
    from hookgate.gateway.errors import Rejection

from _inputs import Draw

from hookgate.tests.fuzz.harness import (
    KNOWN_CHARSETS,
    check_rejection,
    result_of,
)

CODINGS = ["gzip", "x-gzip", "deflate", "identity", "", " GZIP ", "br", "gzip, deflate"]


def content_type(draw: Draw) -> str | None:
    kind = draw.integer(0, 3)
    if kind == 0:
        return None
    if kind == 1:
        return "application/json; charset=" + draw.choice(KNOWN_CHARSETS)
    # Granian 2.8.9 responds 400 to a NUL in a header value, and its map returns
    # None for a value that is not ASCII, so charset_of never sees NUL or a lone
    # surrogate, on which codecs.lookup raises.
    return draw.text(60).replace("\0", "")


def test_one_input(data: bytes) -> None:
    draw = Draw(data)
    coding = draw.text(12) if draw.one_in(8) else draw.choice(CODINGS)
    limit = draw.integer(0, 1 << 16)
    header = content_type(draw)
    compress = not draw.one_in(3)
    body = draw.rest()
    # Compressing here lets the fuzzer reach the size limit and the decoded body.
    # The other inputs test corrupt data.
    name = coding.strip().lower()
    if compress and name in ("gzip", "x-gzip"):
        body = gzip.compress(body)
    elif compress and name == "deflate":
        body = zlib.compress(body)

    decoded = result_of(lambda: decode_content(body, coding, limit))
    if isinstance(decoded, Rejection):
        check_rejection(decoded)
        assert decoded.status in (400, 413, 415), decoded.status
        decoded = body
    elif name not in ("", "identity"):
        assert len(decoded) <= limit, (len(decoded), limit)

    charset = result_of(lambda: charset_of(header))
    if isinstance(charset, Rejection):
        check_rejection(charset)
        assert charset.status == 415, charset.status
        return
    assert codecs.lookup(charset).name == charset, charset
    document = result_of(lambda: utf8_json(decoded, charset))
    if isinstance(document, Rejection):
        check_rejection(document)
        assert document.code in ("empty_body", "invalid_encoding"), document.code
        return
    assert document == decoded.decode(charset).encode("utf-8")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
