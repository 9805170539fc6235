"""The codecs a room offers by default: what browsers and aiortc both send."""

from __future__ import annotations

from typing import Any

DEFAULT_MEDIA_CODECS: list[dict[str, Any]] = [
    {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000, "parameters": {"x-google-start-bitrate": 1000}},
]
