"""Length-prefixed JSON frames: what the membership handshake and the probe protocol speak.

A 4-byte big-endian length, then one JSON object. The reader is strict about the
size: the other end may be a stranger. `FrameReader` takes whatever arrived at
once (several frames, or part of one): every read is a trip to the libp2p thread.
"""

from __future__ import annotations

import json
import struct
from typing import Protocol

__all__ = ["FrameError", "FrameReader", "encode_frame", "write_frame"]


class FrameError(ConnectionError):
    """The stream ended mid-frame, or the frame is too large or not a JSON object."""


class _Stream(Protocol):
    async def read(self, max_bytes: int = 65536) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


def _decode(body: bytes) -> dict[str, object]:
    try:
        message = json.loads(body)
    except ValueError:
        raise FrameError("frame is not JSON") from None
    if not isinstance(message, dict):
        raise FrameError("frame is not a JSON object")
    return message


class FrameReader:
    """Frames off one long-lived stream: a read may bring several frames, or part of one."""

    def __init__(self, stream: _Stream, max_bytes: int) -> None:
        self._stream = stream
        self._max = max_bytes
        self._buffer = b""

    async def read(self) -> dict[str, object] | None:
        """The next frame; None at the end of the stream between frames."""
        while True:
            if len(self._buffer) >= 4:
                (length,) = struct.unpack(">I", self._buffer[:4])
                if length > self._max:
                    raise FrameError(f"frame of {length} bytes is over the {self._max} limit")
                if len(self._buffer) >= 4 + length:
                    body, self._buffer = self._buffer[4 : 4 + length], self._buffer[4 + length :]
                    return _decode(body)
            chunk = await self._stream.read(65536)
            if not chunk:
                if self._buffer:
                    raise FrameError("stream closed mid-frame")
                return None
            self._buffer += chunk


def encode_frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


async def write_frame(stream: _Stream, message: dict[str, object]) -> int:
    """Write one frame; returns its size in bytes."""
    data = encode_frame(message)
    await stream.write(data)
    return len(data)
