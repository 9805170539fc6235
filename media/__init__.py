"""mediasoup's server-side object model in Python, driving the real C++ worker.

    worker = await media.create_worker()
    router = await worker.create_router(media_codecs=[...])
    transport = await router.create_webrtc_transport(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}])

Names are mediasoup's in snake_case; RTP parameters and capabilities keep
mediasoup's JSON (camelCase) shape so they pass unchanged to clients.
Module-level as in mediasoup: `version`, `observer` ("newworker"),
`get_supported_rtp_capabilities()`, `parse_scalability_mode()`.
"""

from __future__ import annotations

import copy
from typing import Any

from media.scalability_modes import parse_scalability_mode
from media.supported_rtp_capabilities import SUPPORTED_RTP_CAPABILITIES
from media.worker import Worker, create_worker, observer
from media.worker_install import worker_version

__all__ = [
    "Worker", "create_worker", "get_supported_rtp_capabilities", "observer", "parse_scalability_mode", "version",
]


def get_supported_rtp_capabilities() -> dict[str, Any]:
    """A copy of mediasoup's supported RTP capabilities (mutating it changes nothing here)."""
    return copy.deepcopy(SUPPORTED_RTP_CAPABILITIES)


def __getattr__(name: str) -> Any:
    if name == "version":  # the worker's version, read from the install on first use
        return worker_version()
    raise AttributeError(f"module 'media' has no attribute {name!r}")
