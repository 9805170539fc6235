"""What ROPE needs from a carrier, and the outbound queue both ends use.

The core never sees sockets or streams: a carrier (WebSocket, libp2p) hands
it a `MessageChannel` that moves whole JSON texts. Sending goes through an
`Outbox`: ``put`` is synchronous, so the server can snapshot its state and
queue the answer in the same event-loop step, which is what guarantees that a
client sees every change exactly once and in order. The writer drains
everything queued into one ``send_many`` call, which on libp2p is one trip
across the trio bridge instead of one per message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Peer:
    """Who is on the other end, as far as the carrier can vouch for it."""

    carrier: str
    """``"websocket"`` or ``"libp2p"``."""
    peer_id: str | None = None
    """The libp2p peer id (authenticated by Noise); None on WebSocket."""
    address: str | None = None
    """The remote address, for logs."""


class MessageChannel(Protocol):
    peer: Peer
    max_message: int
    """The largest message (in characters of JSON) this channel carries."""

    async def send_many(self, messages: list[str]) -> None:
        """Send messages in order; raises ConnectionError once the channel is gone."""

    async def receive(self) -> str | None:
        """The next message; None at end of stream. Raises `FrameError` for a bad frame."""

    async def close(self) -> None:
        """Close (idempotent); a pending ``receive`` returns None."""


class Outbox:
    """An ordered send queue with one writer and a hard bound.

    A peer that reads slower than we produce would otherwise grow memory
    without bound; past ``max_pending`` messages the outbox refuses more and
    reports ``overflowed``, and its owner drops the connection (the client
    reconnects and catches up from the replay buffer or a snapshot).
    """

    def __init__(self, channel: MessageChannel, max_pending: int = 10_000) -> None:
        self._channel = channel
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._max_pending = max_pending
        self._closing = False
        self.overflowed = False

    def put(self, message: str) -> bool:
        if self._closing or self.overflowed:
            return False
        if len(self._queue) >= self._max_pending:
            self.overflowed = True
            self._wakeup.set()
            return False
        self._queue.append(message)
        self._wakeup.set()
        return True

    def finish(self) -> None:
        """Stop accepting messages; ``run`` returns once the queue is sent."""
        self._closing = True
        self._wakeup.set()

    async def run(self) -> None:
        """The writer loop. Returns after ``finish`` or on overflow; raises if the channel breaks."""
        while True:
            if self.overflowed:
                return
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = list(self._queue)
            self._queue.clear()
            await self._channel.send_many(batch)
