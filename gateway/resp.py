"""One raw RESP connection to Redis for the hot path, on hiredis.

The batcher writes whole batches of pre-packed commands and reads their replies in
order. redis-py's pipeline object costs more per command than the rest of a request
together, so the hot path speaks the protocol itself: ``hiredis.pack_command`` packs,
``hiredis.Reader`` parses, and an ``asyncio.Protocol`` moves bytes without streams.

Redis replies to the commands of one connection in the order they were sent, which is
what lets several requests share this connection: each caller registers how many
replies it expects, and replies are handed out first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any, cast

import hiredis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url


class RedisUnavailable(ConnectionError):
    """Raised when Redis cannot be reached or the connection broke."""


class _Pending:
    __slots__ = ("future", "remaining", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.remaining = count
        self.replies: list[Any] = []


class RespProtocol(asyncio.Protocol):
    """Transport callbacks for one connection; see :class:`RespConnection`."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._deliver(data)
        except hiredis.ProtocolError as exc:
            self._fail(RedisUnavailable(f"invalid reply from Redis: {exc}"))

    def _deliver(self, data: bytes) -> None:
        self._reader.feed(data)
        pending = self._pending
        while pending:
            reply = self._reader.gets()
            if reply is False:
                return
            head = pending[0]
            head.replies.append(reply)
            head.remaining -= 1
            if head.remaining == 0:
                pending.popleft()
                if not head.future.done():
                    head.future.set_result(head.replies)
        # A reply without a waiting request means the stream is out of step. It
        # cannot be trusted for the next batch, so the connection is dropped.
        if self._reader.gets() is not False:
            self._fail(RedisUnavailable("unexpected reply from Redis"))

    def connection_lost(self, exc: Exception | None) -> None:
        reason = (
            f"connection to Redis lost: {exc}" if exc else "Redis closed the connection"
        )
        self._fail(RedisUnavailable(reason))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        while self._pending:
            head = self._pending.popleft()
            if not head.future.done():
                head.future.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def send(self, payload: bytes, count: int) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if self.closed or self._transport is None:
            future.set_exception(RedisUnavailable("connection to Redis is closed"))
            return future
        self._pending.append(_Pending(future, count))
        self._transport.write(payload)
        return future

    def abort(self) -> None:
        self._fail(RedisUnavailable("connection to Redis aborted"))


class RespConnection:
    """A lazily connected RESP connection configured from a ``redis://`` URL.

    Supports ``redis://``, ``rediss://`` and ``unix://`` URLs with a user name,
    password and database number, as redis-py parses them.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        scripts: tuple[bytes, ...] = (),
    ) -> None:
        options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._host: str = options.get("host", "localhost")
        self._port: int = options.get("port", 6379)
        self._path: str | None = options.get("path")
        if options.get("connection_class") is UnixDomainSocketConnection:
            self._path = self._path or "/tmp/redis.sock"
        self._ssl = options.get("connection_class") is SSLConnection
        self._username: str | None = options.get("username")
        self._password: str | None = options.get("password")
        self._db: int = options.get("db", 0)
        self._connect_timeout = connect_timeout
        # Loaded on every new connection, because a restarted Redis has none loaded.
        self._scripts = scripts
        self._protocol: RespProtocol | None = None
        self._connecting: asyncio.Future[RespProtocol] | None = None

    @property
    def connected(self) -> bool:
        return self._protocol is not None and not self._protocol.closed

    async def _open(self) -> RespProtocol:
        loop = asyncio.get_running_loop()
        if self._path is not None:
            _, protocol = await loop.create_unix_connection(RespProtocol, self._path)
        else:
            context = ssl.create_default_context() if self._ssl else None
            _, protocol = await loop.create_connection(
                RespProtocol, self._host, self._port, ssl=context
            )

        setup: list[tuple[Any, ...]] = []
        if self._password is not None:
            if self._username is not None:
                setup.append(("AUTH", self._username, self._password))
            else:
                setup.append(("AUTH", self._password))
        if self._db:
            setup.append(("SELECT", self._db))
        for script in self._scripts:
            setup.append(("SCRIPT", "LOAD", script))
        if setup:
            payload = b"".join(hiredis.pack_command(command) for command in setup)
            for reply in await protocol.send(payload, len(setup)):
                if isinstance(reply, hiredis.ReplyError):
                    protocol.abort()
                    raise RedisUnavailable(f"Redis rejected connection setup: {reply}")
        return protocol

    async def get(self) -> RespProtocol:
        """Return an open connection, connecting first if needed.

        Raises :class:`RedisUnavailable` when the connection cannot be made within
        the connect timeout.
        """
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        # Concurrent callers share one connection attempt. A finished attempt is
        # never reused, so a failure is reported to the callers that waited for it
        # and the next caller tries again.
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
            # Marks the failure as seen when every waiter timed out before it.
            self._connecting.add_done_callback(_consume_exception)
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> RespProtocol:
        try:
            async with asyncio.timeout(self._connect_timeout):
                self._protocol = await self._open()
        except TimeoutError:
            raise RedisUnavailable("timed out connecting to Redis") from None
        except OSError as exc:
            raise RedisUnavailable(f"cannot connect to Redis: {exc}") from exc
        return self._protocol

    def drop(self) -> None:
        """Abort the current connection, failing every reply still awaited."""
        if self._protocol is not None:
            self._protocol.abort()
            self._protocol = None

    async def execute(self, *command: Any, timeout: float) -> Any:
        """Send one command and return its reply; errors come back as values."""
        protocol = await self.get()
        try:
            async with asyncio.timeout(timeout):
                (reply,) = await protocol.send(hiredis.pack_command(command), 1)
        except TimeoutError:
            self.drop()
            raise RedisUnavailable("timed out waiting for Redis") from None
        return reply


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
