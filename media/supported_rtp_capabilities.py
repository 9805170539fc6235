"""The installed worker version's supported RTP capabilities (``supportedRtpCapabilities.js``).

This is the universe the Router picks its codecs from: ``generate_router_rtp_capabilities``
only accepts media codecs that match an entry here, and takes header extensions
from here verbatim. The worker implements exactly these, so the list must stay in
step with the worker version rather than be edited per deployment.

The constant is kept exactly as upstream writes it (not normalised: no default
``parameters``/``rtcpFeedback``/``preferredEncrypt`` filled in). Treat it as
read-only and ``copy.deepcopy`` it before validating or handing it out, since
validation fills defaults in place.

Two versions are served: 3.14.16's table, and 3.27's, which drops H264-SVC, H265
and the framemarking extensions, adds AV1, the dependency descriptor (receive
only) and mediasoup's packet-id extension, and renumbers the preferred ids.
``SUPPORTED_RTP_CAPABILITIES`` is the one of the version `scripts/install-worker`
installed (its VERSION file; the default version's when none is installed).
"""

from __future__ import annotations

from typing import Any, Final

from media.worker_install import version_at_least

CAPABILITIES_3_14: Final[dict[str, Any]] = {
    "codecs": [
        {
            "kind": "audio",
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/multiopus",
            "clockRate": 48000,
            "channels": 4,
            # Quad channel.
            "parameters": {
                "channel_mapping": "0,1,2,3",
                "num_streams": 2,
                "coupled_streams": 2,
            },
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/multiopus",
            "clockRate": 48000,
            "channels": 6,
            # 5.1.
            "parameters": {
                "channel_mapping": "0,4,1,2,3,5",
                "num_streams": 4,
                "coupled_streams": 2,
            },
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/multiopus",
            "clockRate": 48000,
            "channels": 8,
            # 7.1.
            "parameters": {
                "channel_mapping": "0,6,1,2,3,4,5,7",
                "num_streams": 5,
                "coupled_streams": 3,
            },
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/PCMU",
            "preferredPayloadType": 0,
            "clockRate": 8000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/PCMA",
            "preferredPayloadType": 8,
            "clockRate": 8000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/ISAC",
            "clockRate": 32000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/ISAC",
            "clockRate": 16000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/G722",
            "preferredPayloadType": 9,
            "clockRate": 8000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/iLBC",
            "clockRate": 8000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/SILK",
            "clockRate": 24000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/SILK",
            "clockRate": 16000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/SILK",
            "clockRate": 12000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/SILK",
            "clockRate": 8000,
            "rtcpFeedback": [
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "audio",
            "mimeType": "audio/CN",
            "preferredPayloadType": 13,
            "clockRate": 32000,
        },
        {
            "kind": "audio",
            "mimeType": "audio/CN",
            "preferredPayloadType": 13,
            "clockRate": 16000,
        },
        {
            "kind": "audio",
            "mimeType": "audio/CN",
            "preferredPayloadType": 13,
            "clockRate": 8000,
        },
        {
            "kind": "audio",
            "mimeType": "audio/telephone-event",
            "clockRate": 48000,
        },
        {
            "kind": "audio",
            "mimeType": "audio/telephone-event",
            "clockRate": 32000,
        },
        {
            "kind": "audio",
            "mimeType": "audio/telephone-event",
            "clockRate": 16000,
        },
        {
            "kind": "audio",
            "mimeType": "audio/telephone-event",
            "clockRate": 8000,
        },
        {
            "kind": "video",
            "mimeType": "video/VP8",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "video",
            "mimeType": "video/VP9",
            "clockRate": 90000,
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "video",
            "mimeType": "video/H264",
            "clockRate": 90000,
            "parameters": {"level-asymmetry-allowed": 1},
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "video",
            "mimeType": "video/H264-SVC",
            "clockRate": 90000,
            "parameters": {"level-asymmetry-allowed": 1},
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb"},
                {"type": "transport-cc"},
            ],
        },
        {
            "kind": "video",
            "mimeType": "video/H265",
            "clockRate": 90000,
            "parameters": {"level-asymmetry-allowed": 1},
            "rtcpFeedback": [
                {"type": "nack"},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb"},
                {"type": "transport-cc"},
            ],
        },
    ],
    "headerExtensions": [
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
            "preferredId": 1,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "preferredId": 2,
            "preferredEncrypt": False,
            "direction": "recvonly",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            "preferredId": 3,
            "preferredEncrypt": False,
            "direction": "recvonly",
        },
        {
            "kind": "audio",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        # NOTE: For audio we just enable transport-wide-cc-01 when receiving media.
        {
            "kind": "audio",
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "preferredId": 5,
            "preferredEncrypt": False,
            "direction": "recvonly",
        },
        {
            "kind": "video",
            "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "preferredId": 5,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        # NOTE: Remove this once framemarking draft becomes RFC.
        {
            "kind": "video",
            "uri": "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07",
            "preferredId": 6,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:framemarking",
            "preferredId": 7,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "preferredId": 10,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:3gpp:video-orientation",
            "preferredId": 11,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "urn:ietf:params:rtp-hdrext:toffset",
            "preferredId": 12,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
            "preferredId": 13,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
            "preferredId": 13,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "audio",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "preferredId": 14,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "preferredId": 14,
            "preferredEncrypt": False,
            "direction": "sendrecv",
        },
    ],
}

CAPABILITIES_3_27: Final[dict[str, Any]] = {
    "codecs": [
        *(c for c in CAPABILITIES_3_14["codecs"] if c["mimeType"] not in ("video/H264-SVC", "video/H265")),
    {
        "kind": "video",
        "mimeType": "video/AV1",
        "clockRate": 90000,
        "parameters": {},
        "rtcpFeedback": [
            {
                "type": "nack",
            },
            {
                "type": "nack",
                "parameter": "pli",
            },
            {
                "type": "ccm",
                "parameter": "fir",
            },
            {
                "type": "goog-remb",
            },
            {
                "type": "transport-cc",
            },
        ],
    },
    ],
    "headerExtensions": [
    {
        "kind": "audio",
        "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
        "preferredId": 1,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
        "preferredId": 1,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "preferredId": 2,
        "preferredEncrypt": False,
        "direction": "recvonly",
    },
    {
        "kind": "video",
        "uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "preferredId": 3,
        "preferredEncrypt": False,
        "direction": "recvonly",
    },
    {
        "kind": "audio",
        "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "preferredId": 4,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "preferredId": 4,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "audio",
        "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "preferredId": 5,
        "preferredEncrypt": False,
        "direction": "recvonly",
    },
    {
        "kind": "video",
        "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "preferredId": 5,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "audio",
        "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "preferredId": 6,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
        "preferredId": 7,
        "preferredEncrypt": False,
        "direction": "recvonly",
    },
    {
        "kind": "video",
        "uri": "urn:3gpp:video-orientation",
        "preferredId": 8,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "urn:ietf:params:rtp-hdrext:toffset",
        "preferredId": 9,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "audio",
        "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
        "preferredId": 10,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
        "preferredId": 10,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "audio",
        "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        "preferredId": 11,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        "preferredId": 11,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "audio",
        "uri": "urn:mediasoup:params:rtp-hdrext:packet-id",
        "preferredId": 12,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
    {
        "kind": "video",
        "uri": "urn:mediasoup:params:rtp-hdrext:packet-id",
        "preferredId": 12,
        "preferredEncrypt": False,
        "direction": "sendrecv",
    },
],
}


SUPPORTED_RTP_CAPABILITIES: Final[dict[str, Any]] = CAPABILITIES_3_27 if version_at_least(3, 27) else CAPABILITIES_3_14
