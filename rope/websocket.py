"""ROPE over WebSocket, for application servers that are not swarm members.

One text frame carries one JSON-RPC message. The websockets library accepts
frames up to four times ROPE's limit so that a frame over the limit (but not
absurdly so) gets a clear ``-32005`` answer and the connection lives on;
beyond that websockets itself closes with 1009 (message too big).
Compression is off: control messages are small and latency matters more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from rope.channel import Peer
from rope.client import Connector, RopeConnection
from rope.errors import ErrorCode, FrameError
from rope.framing import DEFAULT_MAX_FRAME
from rope.reads import read_at_most
from rope.server import RopeServer

CARRIER = "websocket"
POLICY_VIOLATION = 1008
log = logging.getLogger("rope.websocket")


class WebSocketChannel:
    def __init__(self, ws: ServerConnection | ClientConnection, peer: Peer, max_message: int) -> None:
        self._ws = ws
        read_at_most(ws.transport)
        self.peer = peer
        self.max_message = max_message

    async def send_many(self, messages: list[str]) -> None:
        try:
            for message in messages:
                await self._ws.send(message)
        except ConnectionClosed as error:
            raise ConnectionError(f"websocket closed: {error}") from None

    async def receive(self) -> str | None:
        try:
            data = await self._ws.recv()
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code not in (1000, 1001):
                log.warning("%s closed the connection: %s", self.peer.address, closed.rcvd)
            return None
        if len(data) > self.max_message:
            raise FrameError(
                f"message of {len(data)} bytes exceeds {self.max_message}", code=ErrorCode.FRAME_TOO_LARGE, fatal=False
            )
        if isinstance(data, bytes):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise FrameError(
                    f"binary frame is not UTF-8: {error}", code=ErrorCode.PARSE_ERROR, fatal=False
                ) from None
        return data

    async def close(self, reason: str | None = None) -> None:
        # Unread messages from the peer may fill websockets' queue, which then stops reading the
        # socket and would not see the peer's close frame for close_timeout (10 s): discard them
        # while closing. With a reason: 1008 "policy violation" (a close frame holds 123 bytes).
        discard = asyncio.ensure_future(self._discard_incoming())
        try:
            if reason is None:
                await self._ws.close()
            else:
                await self._ws.close(POLICY_VIOLATION, reason.encode()[:123].decode(errors="ignore"))
        finally:
            discard.cancel()

    async def _discard_incoming(self) -> None:
        with contextlib.suppress(ConnectionClosed, RuntimeError):  # RuntimeError: another recv() pending
            while True:
                await self._ws.recv()


class WebSocketListener:
    """Serves a `RopeServer` on ``ws://host:port``; port 0 picks a free one (see ``url``)."""

    def __init__(self, server: RopeServer, host: str = "127.0.0.1", port: int = 0, *,
                 max_message: int = DEFAULT_MAX_FRAME) -> None:
        self.rope_server = server
        self.host = host
        self.port = port
        self.max_message = max_message
        self._ws_server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> WebSocketListener:
        self._ws_server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=4 * self.max_message,
            compression=None,
        )
        self.port = next(iter(self._ws_server.sockets)).getsockname()[1]
        return self

    async def _handle(self, ws: ServerConnection) -> None:
        address = ws.remote_address
        peer = Peer(CARRIER, None, f"{address[0]}:{address[1]}" if address else None)
        await self.rope_server.serve(WebSocketChannel(ws, peer, self.max_message))

    async def close(self) -> None:
        """Stop listening and close its connections (the `RopeServer` stays the caller's)."""
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
            self._ws_server = None

    async def __aenter__(self) -> WebSocketListener:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def websocket_connector(url: str, *, max_message: int = DEFAULT_MAX_FRAME, open_timeout: float = 10.0) -> Connector:
    """A `Connector` that dials ``url`` afresh for every (re)connection."""

    async def connect() -> WebSocketChannel:
        ws = await ws_connect(
            url,
            max_size=4 * max_message,
            compression=None,
            proxy=None,
            open_timeout=open_timeout,
            ping_interval=None,  # ROPE pings at its own level, over both carriers
        )
        return WebSocketChannel(ws, Peer(CARRIER, None, url), max_message)

    return connect


async def connect_websocket(url: str, *, token: str | None = None, **options: Any) -> RopeConnection:
    """Open a `RopeConnection` to ``url``; ``options`` go to `RopeConnection`."""
    return await RopeConnection(websocket_connector(url), token=token, **options).open()
