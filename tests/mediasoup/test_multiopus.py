"""Port of mediasoup's test-multiopus.js."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from media.errors import UnsupportedError

MULTIOPUS_PARAMETERS = {"channel_mapping": "0,4,1,2,3,5", "num_streams": 4, "coupled_streams": 2}
MEDIA_CODECS: list[dict[str, Any]] = [
    {
        "kind": "audio", "mimeType": "audio/multiopus", "preferredPayloadType": 100, "clockRate": 48000,
        "channels": 6, "parameters": {"useinbandfec": 1, **MULTIOPUS_PARAMETERS},
    }
]
AUDIO_PRODUCER_OPTIONS: dict[str, Any] = {
    "kind": "audio",
    "rtp_parameters": {
        "mid": "AUDIO",
        "codecs": [
            {
                "mimeType": "audio/multiopus", "payloadType": 0, "clockRate": 48000, "channels": 6,
                "parameters": {"useinbandfec": 1, **MULTIOPUS_PARAMETERS},
            }
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
            {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 12},
        ],
    },
}


def device_capabilities(channels: int = 6) -> dict[str, Any]:
    return {
        "codecs": [
            {
                "mimeType": "audio/multiopus", "kind": "audio", "preferredPayloadType": 100, "clockRate": 48000,
                "channels": channels, "parameters": dict(MULTIOPUS_PARAMETERS),
            }
        ],
        "headerExtensions": [
            {
                "kind": "audio", "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "preferredId": 1,
                "preferredEncrypt": False,
            },
            {
                "kind": "audio", "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "preferredId": 4,
                "preferredEncrypt": False,
            },
            {
                "kind": "audio", "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "preferredId": 10,
                "preferredEncrypt": False,
            },
        ],
    }


@pytest.fixture
async def ctx(backend_worker: Any) -> Any:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    transport = await router.create_webrtc_transport(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}])
    yield router, transport
    await router.close()


def expected_codec(payload_type: int) -> dict[str, Any]:
    return {
        "mimeType": "audio/multiopus", "payloadType": payload_type, "clockRate": 48000, "channels": 6,
        "parameters": {"useinbandfec": 1, **MULTIOPUS_PARAMETERS}, "rtcpFeedback": [],
    }


async def test_produce_and_consume_succeed(ctx: Any) -> None:
    router, transport = ctx
    producer = await transport.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    assert producer.rtp_parameters["codecs"] == [expected_codec(0)]
    assert router.can_consume(producer_id=producer.id, rtp_capabilities=device_capabilities()) is True
    consumer = await transport.consume(producer_id=producer.id, rtp_capabilities=device_capabilities())
    assert consumer.rtp_parameters["codecs"] == [expected_codec(100)]


@pytest.mark.parametrize(
    "parameters",
    [
        {"channel_mapping": "0,4,1,2,3,5", "num_streams": 2, "coupled_streams": 2},
        {"channel_mapping": "0,4,1,2,3,5", "num_streams": 4, "coupled_streams": 1},
    ],
    ids=["num-streams", "coupled-streams"],
)
async def test_produce_with_wrong_parameters_raises_unsupported_error(ctx: Any, parameters: dict[str, Any]) -> None:
    _router, transport = ctx
    with pytest.raises(UnsupportedError):
        await transport.produce(
            kind="audio",
            rtp_parameters={
                "mid": "AUDIO",
                "codecs": [
                    {
                        "mimeType": "audio/multiopus", "payloadType": 0, "clockRate": 48000, "channels": 6,
                        "parameters": parameters,
                    }
                ],
            },
        )


async def test_consume_with_wrong_channels_raises_unsupported_error(ctx: Any) -> None:
    router, transport = ctx
    producer = await transport.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    caps = device_capabilities(channels=8)
    assert router.can_consume(producer_id=producer.id, rtp_capabilities=caps) is False
    with pytest.raises(UnsupportedError):
        await transport.consume(producer_id=producer.id, rtp_capabilities=caps)
