"""Request bodies: content coding, character set and the size limits on both.

Providers verify signatures over the body after content decoding (gzip is a
transport detail) and decode JSON from its UTF-8 form. The entry keeps the decoded
bytes in their declared charset, with the ``content-type`` header beside them.
"""

from __future__ import annotations

import zlib
from typing import Any

# granian.rsgi is the public name; it re-exports without __all__, which mypy flags.
from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]

from hookgate.charset import CharsetError, parse_charset, to_utf8
from hookgate.gateway.errors import Rejection

# zlib window-bits values: 16 + MAX_WBITS reads a gzip header, MAX_WBITS a zlib one.
_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


def incomplete(detail: str) -> Rejection:
    # The connection may be half closed or out of step, so it is not reused.
    return Rejection(400, "incomplete_body", detail, (("connection", "close"),))


async def read_body(protocol: Any, headers: Any, limit: int) -> bytes:
    """Read a request body from Granian's RSGI ``protocol``, at most ``limit`` bytes.

    ``headers`` are the request's. Raises :class:`Rejection`: 400 for an invalid
    length or a body shorter than its Content-Length, 413 over the limit, 501 for
    a transfer coding other than chunked.
    """
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejection(
                400, "invalid_content_length", "Content-Length is not a number"
            )
        if int(declared) > limit:
            raise too_large(limit)
        try:
            body: bytes = await protocol()
        except ProtocolClosed:
            raise incomplete(
                "the connection closed before the body reached its Content-Length"
            ) from None
        return body
    # No declared length (chunked transfer): read up to the limit, then stop.
    codings = ",".join(headers.get_all("transfer-encoding"))
    if codings and [part.strip().lower() for part in codings.split(",")] != ["chunked"]:
        # Granian decodes only the chunked coding and would pass on the rest
        # still encoded, for example the gzip of "gzip, chunked".
        raise Rejection(
            501,
            "unsupported_transfer_encoding",
            "Transfer-Encoding must be chunked alone",
            (("connection", "close"),),
        )
    # NOTE: Granian (2.8) ends a streamed body that broke off (a closed connection,
    # a malformed chunk) as it ends a complete one, so such a body is read as
    # complete. Its JSON and signature checks still apply.
    chunks: list[bytes] = []
    size = 0
    async for chunk in protocol:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


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
    if decompressor.unused_data:
        # Bytes after the end of the stream, also a second gzip member, would be
        # left out of the entry while a signature over the whole body could match.
        raise Rejection(
            400, "invalid_content", f"body continues after the end of the {name} data"
        )
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
