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
from collections.abc import Callable, Iterator
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

    async def close(self, reason: str | None = None) -> None:
        """Close (idempotent); a pending ``receive`` returns None. ``reason`` goes to the peer
        where the carrier can say why (a WebSocket close frame), else only to logs."""


DEFAULT_MAX_OUTBOX_BYTES = 16 << 20
"""16 MiB of unsent JSON per connection: hundreds of thousands of changes, far more than any
burst (a worker dying with 5,000 consumers queues about 0.5 MB per session)."""


class Outbox:
    """An ordered send queue with one writer and a hard bound in bytes.

    A peer that reads slower than we produce would otherwise grow memory
    without bound; past ``max_bytes`` of queued messages the outbox refuses
    more, reports ``overflowed`` and calls ``on_overflow`` once; its owner
    drops the connection (the client reconnects and catches up from the
    replay buffer or a snapshot). Messages count until the carrier has taken
    them, so a send stuck on a peer that does not read still counts.

    ``put_lazy`` queues an iterator of messages drawn one at a time when the
    writer reaches it (a large snapshot, page by page): it costs one message
    of memory at a time, and what is queued behind it waits for it.
    """

    def __init__(self, channel: MessageChannel, max_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
                 on_overflow: Callable[[], None] | None = None) -> None:
        self._channel = channel
        self._queue: deque[str | Iterator[str]] = deque()
        self._wakeup = asyncio.Event()
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self._on_overflow = on_overflow
        self._closing = False
        self.overflowed = False

    def put(self, message: str) -> bool:
        if self._closing or self.overflowed:
            return False
        if self.queued_bytes + len(message) > self.max_bytes:
            self.overflowed = True
            self._wakeup.set()
            if self._on_overflow is not None:
                self._on_overflow()
            return False
        self._queue.append(message)
        self.queued_bytes += len(message)
        self._wakeup.set()
        return True

    def put_lazy(self, messages: Iterator[str]) -> bool:
        if self._closing or self.overflowed:
            return False
        self._queue.append(messages)
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
            head = self._queue[0]
            if isinstance(head, str):
                batch: list[str] = []
                while self._queue and isinstance(self._queue[0], str):
                    batch.append(self._queue.popleft())  # type: ignore[arg-type]
                size = sum(map(len, batch))
            else:
                message = next(head, None)
                if message is None:
                    self._queue.popleft()
                    continue
                batch, size = [message], 0
            await self._channel.send_many(batch)
            self.queued_bytes -= size
