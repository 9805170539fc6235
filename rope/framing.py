"""Length-prefixed frames for byte-stream carriers (libp2p streams).

A WebSocket delimits messages itself; a libp2p stream is a plain byte stream,
so each message travels as a 4-byte big-endian length followed by that many
bytes of UTF-8 JSON. The decoder is a pure state machine (bytes in, messages
out) so it can be fuzzed without any I/O.
"""

from __future__ import annotations

import struct

from rope.errors import ErrorCode, FrameError

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 1 << 20
"""1 MiB: far above any control message, small enough that one peer cannot make
the server buffer much."""


def encode_frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    if len(payload) > max_frame:
        raise FrameError(
            f"frame of {len(payload)} bytes exceeds {max_frame}", code=ErrorCode.FRAME_TOO_LARGE, fatal=False
        )
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Accumulates bytes and returns every complete frame's payload.

    An announced length over ``max_frame`` raises a fatal `FrameError` before
    any of the payload is buffered; after that the decoder stays broken (the
    stream has lost its framing), and so does every later `feed`.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._broken: FrameError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        frames: list[bytes] = []
        view = self._buffer
        offset = 0
        while len(view) - offset >= HEADER.size:
            (length,) = HEADER.unpack_from(view, offset)
            if length > self.max_frame:
                self._broken = FrameError(
                    f"frame of {length} bytes exceeds {self.max_frame}", code=ErrorCode.FRAME_TOO_LARGE, fatal=True
                )
                self._buffer.clear()
                raise self._broken
            end = offset + HEADER.size + length
            if end > len(view):
                break
            frames.append(bytes(view[offset + HEADER.size : end]))
            offset = end
        if offset:
            del self._buffer[:offset]
        return frames
