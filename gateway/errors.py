"""Rejections: the defined 4xx and 503 answers of the ingest path.

Every input a provider can send ends in a 2xx or in one :class:`Rejection`. The body
is short JSON with a stable ``error`` code and a plain ``detail``; neither ever
contains a secret or any part of the request body::

    {"error": "invalid_signature", "detail": "no signature matched"}
"""

from __future__ import annotations

import msgspec


class ErrorBody(msgspec.Struct):
    error: str
    detail: str


_encode = msgspec.json.Encoder().encode


class Rejection(Exception):
    """A request the gateway rejects with ``status``, enqueuing nothing for it."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers

    def body(self) -> bytes:
        return _encode(ErrorBody(self.code, self.detail))


def bad_request(code: str, detail: str) -> Rejection:
    return Rejection(400, code, detail)


def unauthorized(code: str, detail: str) -> Rejection:
    return Rejection(401, code, detail)
