"""Character sets of webhook bodies, shared by the gateway and the consumers.

The gateway honours a Content-Type ``charset`` when it checks a body's JSON; the
entry keeps the bytes as sent with the header beside them, so the consumer turns
them into UTF-8 the same way before decoding.
"""

from __future__ import annotations

import codecs

# Codecs that Python can look up but that are not character sets a body can be in:
# they decode escapes or transfer encodings and can yield lone surrogates.
_NOT_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "utf-7", "punycode", "idna", "undefined"}
)


class CharsetError(ValueError):
    """Raised for a charset that is unknown or not a text encoding."""


def parse_charset(content_type: str | None) -> str:
    """Return the normalised ``charset`` of a Content-Type value, or ``utf-8``.

    Raises :class:`CharsetError` for an unknown charset or a codec that is not a
    text encoding (``base64``, ``zlib``, ``unicode-escape`` and the like).
    """
    if not content_type or "charset" not in content_type.lower():
        return "utf-8"
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset":
            continue
        requested = value.strip().strip('"').lower()
        try:
            info = codecs.lookup(requested)
        except (LookupError, ValueError):
            raise CharsetError(f"unknown charset {requested!r}") from None
        # _is_text_encoding is False for bytes-to-bytes codecs such as base64.
        if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
            raise CharsetError(f"{requested!r} is not a text encoding")
        return info.name
    return "utf-8"


def to_utf8(body: bytes, charset: str) -> bytes:
    """Return ``body``, which is text in ``charset``, as UTF-8.

    Raises :class:`UnicodeError` when the body is not valid in ``charset`` or
    decodes to text that has no UTF-8 form.
    """
    if charset == "utf-8":
        body.decode()
        return body
    return body.decode(charset).encode()
