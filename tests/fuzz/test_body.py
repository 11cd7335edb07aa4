"""Property tests of request body handling: content decoding and character sets.

Every function here either returns or raises Rejection. Decoding a compressed body
never returns more than the limit, however far the data would expand.
"""

from __future__ import annotations

import codecs
import gzip
import zlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hookgate.gateway.body import charset_of, decode_content, utf8_json
from hookgate.gateway.errors import Rejection

from .harness import KNOWN_CHARSETS, TEXT_CHARSETS, check_rejection, result_of
from .strategies import weighted

COMPRESSED = ("gzip", "x-gzip", "deflate")
limits = st.integers(0, 4096)


def compress(data: bytes, coding: str) -> bytes:
    if coding == "deflate":
        return zlib.compress(data)
    return gzip.compress(data)


@st.composite
def compressed_bodies(draw: st.DrawFn) -> tuple[str, bytes, bytes]:
    """Draw a coding, the data, and that data compressed, maybe damaged."""
    coding = draw(st.sampled_from(COMPRESSED))
    data = draw(
        st.binary(max_size=5000)
        | st.integers(0, 200_000).map(lambda size: b"\0" * size)
    )
    body = compress(data, coding)
    damage = draw(
        st.sampled_from(["none", "truncate", "append", "flip", "two-members"])
    )
    if damage == "truncate":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif damage == "append":
        body += draw(st.binary(min_size=1, max_size=20))
    elif damage == "flip":
        index = draw(st.integers(0, len(body) - 1))
        body = body[:index] + bytes([body[index] ^ 0xFF]) + body[index + 1 :]
    elif damage == "two-members":
        body += compress(draw(st.binary(max_size=100)), coding)
    return coding, data, body


codings = weighted(
    (4, st.sampled_from([*COMPRESSED, "identity", "", " GZIP ", "Deflate\t"])),
    (1, st.sampled_from(["br", "zstd", "compress", "gzip, deflate", "gzip;q=1"])),
    (1, st.text(max_size=20)),
)


class TestDecodeContent:
    @settings(max_examples=300, deadline=None)
    @given(
        coding=st.none() | codings,
        body=st.binary(max_size=500),
        limit=limits,
    )
    def test_arbitrary_body_bounded(
        self, coding: str | None, body: bytes, limit: int
    ) -> None:
        decoded = result_of(lambda: decode_content(body, coding, limit))

        if isinstance(decoded, Rejection):
            check_rejection(decoded)
            assert decoded.status in (400, 413, 415), decoded.status
            return

        name = (coding or "").strip().lower()
        if name in ("", "identity"):
            assert decoded == body
        else:
            assert len(decoded) <= limit

    @settings(max_examples=300, deadline=None)
    @given(case=compressed_bodies(), limit=limits)
    def test_compressed_body_bounded(
        self, case: tuple[str, bytes, bytes], limit: int
    ) -> None:
        coding, data, body = case

        decoded = result_of(lambda: decode_content(body, coding, limit))

        if isinstance(decoded, Rejection):
            check_rejection(decoded)
            assert decoded.status in (400, 413), decoded.status
            return

        # A damaged body that still decodes lost only bytes outside the first
        # member, because the CRC-32 or Adler-32 check covers all of its data.
        assert decoded == data

    @settings(max_examples=200, deadline=None)
    @given(
        coding=st.sampled_from(COMPRESSED),
        data=st.binary(max_size=5000),
        limit=limits,
    )
    def test_valid_body_round_trips(self, coding: str, data: bytes, limit: int) -> None:
        body = compress(data, coding)

        if len(data) <= limit:
            assert decode_content(body, coding, limit) == data
        else:
            with pytest.raises(Rejection) as caught:
                decode_content(body, coding, limit)
            assert caught.value.status == 413


# Header values as Granian delivers them, without NUL or lone surrogates, for which
# codecs.lookup raises ValueError or UnicodeEncodeError. Granian 2.8.9 responds 400
# to a NUL in a header value, and its map returns None for a value that is not
# ASCII, so neither reaches charset_of.
header_characters = st.characters(codec="utf-8", exclude_characters="\0")
parameter_names = st.sampled_from(["charset", "Charset", " charset ", "CHARSET"])
charset_values = weighted(
    (3, st.sampled_from(KNOWN_CHARSETS)),
    (1, st.sampled_from(["UTF-8", '"utf-8"', " latin1 ", "utf8", "klingon", ""])),
    (2, st.text(header_characters, max_size=30)),
)


@st.composite
def content_types(draw: st.DrawFn) -> str:
    """Draw a Content-Type value with parameters, one of them perhaps a charset."""
    media = draw(st.sampled_from(["application/json", "text/plain", "", "x"]))
    parameters = draw(
        st.lists(
            st.tuples(parameter_names, charset_values).map("=".join)
            | st.text(header_characters, max_size=20),
            max_size=3,
        )
    )
    return ";".join([media, *parameters])


class TestCharsetOf:
    @settings(max_examples=500, deadline=None)
    @given(content_type=st.none() | content_types())
    def test_result_is_codec_name(self, content_type: str | None) -> None:
        charset = result_of(lambda: charset_of(content_type))

        if isinstance(charset, Rejection):
            check_rejection(charset)
            assert charset.status == 415
            return

        assert codecs.lookup(charset).name == charset

    @settings(max_examples=200, deadline=None)
    @given(content_type=st.text(header_characters))
    def test_no_charset_means_utf8(self, content_type: str) -> None:
        assume("charset" not in content_type.lower())

        assert charset_of(content_type) == "utf-8"


class TestUtf8Json:
    @settings(max_examples=500, deadline=None)
    @given(
        body=st.binary(max_size=300)
        | st.text(max_size=100).map(lambda text: text.encode("utf-16")),
        charset=st.sampled_from(TEXT_CHARSETS),
    )
    def test_result_is_utf8_of_text(self, body: bytes, charset: str) -> None:
        document = result_of(lambda: utf8_json(body, charset))

        if isinstance(document, Rejection):
            check_rejection(document)
            assert document.code in ("empty_body", "invalid_encoding"), document.code
            return

        assert document == body.decode(charset).encode("utf-8")
