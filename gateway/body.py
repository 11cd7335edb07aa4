"""Request bodies: content coding, character set and the size limits on both.

Providers verify signatures over the body after content decoding (gzip is a
transport detail) and decode JSON from its UTF-8 form. The entry keeps the decoded
bytes in their declared charset, with the ``content-type`` header beside them.
"""

from __future__ import annotations

import zlib

from hookgate.charset import CharsetError, parse_charset, to_utf8
from hookgate.gateway.errors import Rejection

# zlib window-bits values: 16 + MAX_WBITS reads a gzip header, MAX_WBITS a zlib one.
_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


def too_large(limit: int) -> Rejection:
    # The rest of an oversized body may still be unread on the connection, so the
    # response asks the client not to send its next request there.
    return Rejection(
        413,
        "body_too_large",
        f"body exceeds {limit} bytes",
        (("connection", "close"),),
    )


def decode_content(body: bytes, coding: str | None, limit: int) -> bytes:
    """Undo a ``Content-Encoding`` of gzip or deflate, stopping at ``limit`` bytes.

    Decompression stops as soon as the output would pass ``limit``, so a small
    compressed body that expands enormously costs at most ``limit`` bytes of memory.
    Raises :class:`Rejection`: 413 over the limit, 415 for another coding, 400 for
    corrupt data.
    """
    if coding is None:
        return body
    name = coding.strip().lower()
    if name in ("", "identity"):
        return body
    wbits = _WBITS.get(name)
    if wbits is None:
        raise Rejection(
            415,
            "unsupported_content_encoding",
            "Content-Encoding must be gzip, deflate or identity",
        )

    decompressor = zlib.decompressobj(wbits)
    try:
        decoded = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise Rejection(
            400, "invalid_content", f"body is not valid {name} data"
        ) from None
    if len(decoded) > limit or decompressor.unconsumed_tail:
        raise too_large(limit)
    if not decompressor.eof:
        raise Rejection(400, "invalid_content", f"{name} data is truncated")
    return decoded


def charset_of(content_type: str | None) -> str:
    """Return the normalised ``charset`` parameter of a Content-Type, or utf-8.

    Raises :class:`Rejection` (415) for a charset that is unknown or not a text
    encoding.
    """
    try:
        return parse_charset(content_type)
    except CharsetError as exc:
        raise Rejection(415, "unsupported_charset", str(exc)) from None


def utf8_json(body: bytes, charset: str) -> bytes:
    """Return ``body`` as UTF-8 for the JSON decoder, checking it is valid text.

    Raises :class:`Rejection` (400) when the body is empty or not valid in
    ``charset``.
    """
    if not body:
        raise Rejection(400, "empty_body", "the request has no body")
    try:
        return to_utf8(body, charset)
    except UnicodeError:
        raise Rejection(
            400, "invalid_encoding", f"body is not valid {charset} text"
        ) from None
