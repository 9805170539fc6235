"""ROPE over libp2p streams (protocol ``/rope/1.0.0``): the swarm's control plane.

A stream is a byte stream, so messages are length-prefixed (`rope.framing`).
The peer id on a stream was authenticated by Noise during the connection
handshake: it is what the authorization hook sees (``Peer.peer_id``), so the
swarm can admit members only. Everything here stays on asyncio: the trio side
belongs to `swarm.bridge`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rope.channel import Peer
from rope.client import Connector, RopeConnection
from rope.errors import ErrorCode, FrameError
from rope.framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from rope.server import RopeServer

PROTOCOL_ID = "/rope/1.0.0"
CARRIER = "libp2p"
READ_SIZE = 65536


class Stream(Protocol):
    """What we use of `swarm.bridge.P2PStream`."""

    remote_peer_id: str

    async def read(self, max_bytes: int = 65536) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class Host(Protocol):
    """What we use of `swarm.bridge.P2PHost`."""

    peer_id: str

    async def connect(self, multiaddr: str) -> str: ...
    async def open_stream(self, peer_id: str, protocol: str) -> Stream: ...
    def set_stream_handler(self, protocol: str, handler: Callable[[Any], Awaitable[None]]) -> None: ...


class StreamChannel:
    def __init__(self, stream: Stream, max_message: int = DEFAULT_MAX_FRAME) -> None:
        self._stream = stream
        self._decoder = FrameDecoder(max_message)
        self._frames: deque[bytes] = deque()
        self._closed = False
        self.peer = Peer(CARRIER, stream.remote_peer_id, None)
        self.max_message = max_message

    async def send_many(self, messages: list[str]) -> None:
        if self._closed:
            raise ConnectionError("stream is closed")
        # One write (one trip across the trio bridge) for everything queued.
        await self._stream.write(b"".join(encode_frame(m.encode(), self.max_message) for m in messages))

    async def receive(self) -> str | None:
        while not self._frames:
            if self._closed:
                return None
            data = await self._stream.read(READ_SIZE)
            if not data or self._closed:
                return None
            self._frames.extend(self._decoder.feed(data))  # raises a fatal FrameError on oversize
        frame = self._frames.popleft()
        try:
            return frame.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FrameError(f"frame is not UTF-8: {error}", code=ErrorCode.PARSE_ERROR, fatal=False) from None

    async def close(self, reason: str | None = None) -> None:
        # A stream has no way to say why: ``reason`` is for the server's log only.
        if not self._closed:
            self._closed = True
            await self._stream.close()


def serve_libp2p(server: RopeServer, host: Host, *, max_message: int = DEFAULT_MAX_FRAME) -> None:
    """Serve ``server`` to every peer that opens a ``/rope/1.0.0`` stream to ``host``.

    Calling it again with another server replaces the handler (a restart).
    """

    async def handler(stream: Stream) -> None:
        await server.serve(StreamChannel(stream, max_message))

    host.set_stream_handler(PROTOCOL_ID, handler)


def libp2p_connector(host: Host, peer_id: str, *, dial: Callable[[], Awaitable[object]] | None = None,
                     max_message: int = DEFAULT_MAX_FRAME) -> Connector:
    """A `Connector` opening a new ``/rope/1.0.0`` stream to ``peer_id`` for every (re)connection.

    ``dial`` is awaited first, each time: what makes sure a connection exists (after the remote
    restarted, or after the connection dropped, the old one is gone and the host may know no
    address), e.g. ``lambda: host.connect(multiaddr)``, or the swarm's membership handshake.
    """

    async def connect() -> StreamChannel:
        if dial is not None:
            await dial()
        stream = await host.open_stream(peer_id, PROTOCOL_ID)
        return StreamChannel(stream, max_message)

    return connect


async def connect_libp2p(host: Host, peer_id: str, *, dial: Callable[[], Awaitable[object]] | None = None,
                         token: str | None = None, **options: Any) -> RopeConnection:
    """Open a `RopeConnection` to ``peer_id`` over ``host``; ``options`` go to `RopeConnection`."""
    connector = libp2p_connector(host, peer_id, dial=dial)
    return await RopeConnection(connector, token=token, **options).open()
