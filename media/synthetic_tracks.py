"""Synthetic media for test clients: real encoded RTP without cameras or files.

The video's brightness steps with every frame, so the encoder sends real,
changing pictures (not one key frame and then empty deltas), and the audio is
a tone rather than silence, so audio-level observers see a level.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from array import array

import av
from aiortc.mediastreams import MediaStreamTrack

VIDEO_CLOCK_RATE = 90_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020


class SyntheticVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._frame_index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._frame_index / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        luma = bytes([(self._frame_index * 7) % 200 + 16]) * (frame.planes[0].line_size * self.height)
        frame.planes[0].update(luma)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = int(self._frame_index * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._frame_index += 1
        return frame


class SyntheticAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self._samples_per_frame = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)
        peak = int(32767 * amplitude)
        # One period-aligned buffer repeated: cheap, and the tone stays continuous.
        period = [int(peak * math.sin(2 * math.pi * frequency * i / AUDIO_SAMPLE_RATE))
                  for i in range(self._samples_per_frame)]
        self._pcm = array("h", period).tobytes()
        self._timestamp = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._timestamp / AUDIO_SAMPLE_RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples_per_frame)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self._timestamp += self._samples_per_frame
        return frame
