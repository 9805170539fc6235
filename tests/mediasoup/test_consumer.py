"""Port of mediasoup's test-Consumer.js."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from media import fbs
from media.errors import NotFoundError, UnsupportedError
from tests.conftest import REMOTE_BACKENDS
from tests.mediasoup.conftest import AT_LEAST_3_27, Calls, once, router_dump, skip_backends, wait_for

AUDIO_LEVEL_ID, VIDEO_ORIENTATION_ID, TOFFSET_ID = (6, 8, 9) if AT_LEAST_3_27 else (10, 11, 12)
"""The router's preferred ids of these extensions (3.27 renumbered them; its test-Consumer.js follows)."""
MSID = "1111-1111-1111-1111 2222-2222-2222-2222"
"""3.27's test-Consumer.js gives the audio producer an msid, which its consumers carry."""

MEDIA_CODECS: list[dict[str, Any]] = [
    {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2, "parameters": {"foo": "bar"}},
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
    {
        "kind": "video",
        "mimeType": "video/H264",
        "clockRate": 90000,
        "parameters": {
            "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d0032", "foo": "bar",
        },
    },
]

AUDIO_PRODUCER_OPTIONS: dict[str, Any] = {
    "kind": "audio",
    "rtp_parameters": {
        "mid": "AUDIO",
        "codecs": [
            {
                "mimeType": "audio/opus",
                "payloadType": 111,
                "clockRate": 48000,
                "channels": 2,
                "parameters": {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"},
            }
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
            {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 12},
        ],
        "encodings": [{"ssrc": 11111111}],
        "rtcp": {"cname": "FOOBAR"},
        **({"msid": MSID} if AT_LEAST_3_27 else {}),
    },
    "app_data": {"foo": 1, "bar": "2"},
}

VIDEO_PRODUCER_OPTIONS: dict[str, Any] = {
    "kind": "video",
    "rtp_parameters": {
        "mid": "VIDEO",
        "codecs": [
            {
                "mimeType": "video/h264",
                "payloadType": 112,
                "clockRate": 90000,
                "parameters": {"packetization-mode": 1, "profile-level-id": "4d0032"},
                "rtcpFeedback": [
                    {"type": "nack", "parameter": ""},
                    {"type": "nack", "parameter": "pli"},
                    {"type": "goog-remb", "parameter": ""},
                ],
            },
            {"mimeType": "video/rtx", "payloadType": 113, "clockRate": 90000, "parameters": {"apt": 112}},
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
            {"uri": "urn:3gpp:video-orientation", "id": 13},
        ],
        "encodings": [
            {"ssrc": 22222222, "scalabilityMode": "L1T5", "rtx": {"ssrc": 22222223}},
            {"ssrc": 22222224, "scalabilityMode": "L1T5", "rtx": {"ssrc": 22222225}},
            {"ssrc": 22222226, "scalabilityMode": "L1T5", "rtx": {"ssrc": 22222227}},
            {"ssrc": 22222228, "scalabilityMode": "L1T5", "rtx": {"ssrc": 22222229}},
        ],
        "rtcp": {"cname": "FOOBAR"},
    },
    "app_data": {"foo": 1, "bar": "2"},
}

CONSUMER_DEVICE_CAPABILITIES: dict[str, Any] = {
    "codecs": [
        {
            "mimeType": "audio/opus", "kind": "audio", "preferredPayloadType": 100, "clockRate": 48000,
            "channels": 2, "rtcpFeedback": [{"type": "nack", "parameter": ""}],
        },
        {
            "mimeType": "video/H264",
            "kind": "video",
            "preferredPayloadType": 101,
            "clockRate": 90000,
            "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d0032"},
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
                {"type": "goog-remb", "parameter": ""},
            ],
        },
        {
            "mimeType": "video/rtx", "kind": "video", "preferredPayloadType": 102, "clockRate": 90000,
            "parameters": {"apt": 101}, "rtcpFeedback": [],
        },
    ],
    "headerExtensions": [
        {"kind": "audio", "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "preferredId": 1, "preferredEncrypt": False},
        {"kind": "video", "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "preferredId": 1, "preferredEncrypt": False},
        {
            "kind": "video", "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "preferredId": 2,
            "preferredEncrypt": False,
        },
        {
            "kind": "audio", "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "preferredId": 4,
            "preferredEncrypt": False,
        },
        {
            "kind": "video", "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "preferredId": 4,
            "preferredEncrypt": False,
        },
        {
            "kind": "audio", "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "preferredId": AUDIO_LEVEL_ID,
            "preferredEncrypt": False,
        },
        {
            "kind": "video", "uri": "urn:3gpp:video-orientation", "preferredId": VIDEO_ORIENTATION_ID,
            "preferredEncrypt": False,
        },
        {
            "kind": "video", "uri": "urn:ietf:params:rtp-hdrext:toffset", "preferredId": TOFFSET_ID,
            "preferredEncrypt": False,
        },
    ],
}

CAPS = CONSUMER_DEVICE_CAPABILITIES

H264_CONSUMER_CODEC = {
    "mimeType": "video/H264",
    "payloadType": 103,
    "clockRate": 90000,
    "parameters": {"packetization-mode": 1, "profile-level-id": "4d0032"},
    "rtcpFeedback": [
        {"type": "nack", "parameter": ""},
        {"type": "nack", "parameter": "pli"},
        {"type": "ccm", "parameter": "fir"},
        {"type": "goog-remb", "parameter": ""},
    ],
}
RTX_CONSUMER_CODEC = {
    "mimeType": "video/rtx", "payloadType": 104, "clockRate": 90000, "parameters": {"apt": 103}, "rtcpFeedback": [],
}
OPUS_PARAMETERS = {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"}


class Ctx:
    router: Any
    transport1: Any
    transport2: Any
    audio_producer: Any
    video_producer: Any

    async def consume_audio(self, **options: Any) -> Any:
        return await self.transport2.consume(
            producer_id=self.audio_producer.id, rtp_capabilities=copy.deepcopy(CAPS), **options
        )

    async def consume_video(self, **options: Any) -> Any:
        return await self.transport2.consume(
            producer_id=self.video_producer.id, rtp_capabilities=copy.deepcopy(CAPS), **options
        )


@pytest.fixture
async def ctx(backend_worker: Any) -> Any:
    c = Ctx()
    c.router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    listen = [{"protocol": "udp", "ip": "127.0.0.1"}]
    c.transport1 = await c.router.create_webrtc_transport(listen_infos=listen)
    c.transport2 = await c.router.create_webrtc_transport(listen_infos=listen)
    c.audio_producer = await c.transport1.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    c.video_producer = await c.transport1.produce(**copy.deepcopy(VIDEO_PRODUCER_OPTIONS))
    yield c
    await c.router.close()


async def test_transport_consume_succeeds(ctx: Ctx) -> None:
    on_new1 = Calls()
    ctx.transport2.observer.once("newconsumer", on_new1)
    assert ctx.router.can_consume(producer_id=ctx.audio_producer.id, rtp_capabilities=CAPS) is True
    audio = await ctx.consume_audio(app_data={"baz": "LOL"})
    assert on_new1.calls == [(audio,)]
    assert isinstance(audio.id, str)
    assert audio.producer_id == ctx.audio_producer.id
    assert audio.closed is False
    assert audio.kind == "audio"
    assert isinstance(audio.rtp_parameters, dict)
    assert audio.rtp_parameters["mid"] == "0"
    assert audio.rtp_parameters.get("msid") == (MSID if AT_LEAST_3_27 else None)
    assert audio.rtp_parameters["codecs"] == [
        {
            "mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2,
            "parameters": OPUS_PARAMETERS, "rtcpFeedback": [],
        }
    ]
    assert audio.type == "simple"
    assert audio.paused is False
    assert audio.producer_paused is False
    assert audio.priority == 1
    assert audio.score == {"score": 10, "producerScore": 0, "producerScores": [0]}
    assert audio.preferred_layers is None
    assert audio.current_layers is None
    assert audio.app_data == {"baz": "LOL"}
    dump1 = await router_dump(ctx.transport2)
    assert {"key": ctx.audio_producer.id, "values": [audio.id]} in dump1["mapProducerIdConsumerIds"]
    assert {"key": audio.id, "value": ctx.audio_producer.id} in dump1["mapConsumerIdProducerId"]
    transport_dump = await ctx.transport2.dump()
    assert transport_dump["id"] == ctx.transport2.id
    assert transport_dump["producerIds"] == []
    assert transport_dump["consumerIds"] == [audio.id]

    on_new2 = Calls()
    ctx.transport2.observer.once("newconsumer", on_new2)
    assert ctx.router.can_consume(producer_id=ctx.video_producer.id, rtp_capabilities=CAPS) is True
    await ctx.video_producer.pause()
    video = await ctx.consume_video(
        paused=True, preferred_layers={"spatialLayer": 12, "temporalLayer": 0}, app_data={"baz": "LOL"}
    )
    assert on_new2.calls == [(video,)]
    assert video.producer_id == ctx.video_producer.id
    assert video.closed is False
    assert video.kind == "video"
    assert video.rtp_parameters["mid"] == "1"
    assert "msid" not in video.rtp_parameters
    assert video.rtp_parameters["codecs"] == [H264_CONSUMER_CODEC, RTX_CONSUMER_CODEC]
    assert video.type == "simulcast"
    assert video.paused is True
    assert video.producer_paused is True
    assert video.priority == 1
    assert video.score == {"score": 10, "producerScore": 0, "producerScores": [0, 0, 0, 0]}
    assert video.preferred_layers == {"spatialLayer": 3, "temporalLayer": 0}
    assert video.current_layers is None
    assert video.app_data == {"baz": "LOL"}

    on_new3 = Calls()
    ctx.transport2.observer.once("newconsumer", on_new3)
    assert ctx.router.can_consume(producer_id=ctx.video_producer.id, rtp_capabilities=CAPS) is True
    pipe = await ctx.consume_video(pipe=True)
    assert on_new3.calls == [(pipe,)]
    assert pipe.producer_id == ctx.video_producer.id
    assert pipe.closed is False
    assert pipe.kind == "video"
    assert "mid" not in pipe.rtp_parameters
    assert pipe.rtp_parameters["codecs"] == [H264_CONSUMER_CODEC, RTX_CONSUMER_CODEC]
    assert pipe.type == "pipe"
    assert pipe.paused is False
    assert pipe.producer_paused is True
    assert pipe.priority == 1
    assert pipe.score == {"score": 10, "producerScore": 10, "producerScores": [0, 0, 0, 0]}
    assert pipe.preferred_layers is None
    assert pipe.current_layers is None
    assert pipe.app_data == {}

    dump2 = await router_dump(ctx.transport2)
    assert {"key": ctx.audio_producer.id, "values": [audio.id]} in dump2["mapProducerIdConsumerIds"]
    [video_entry] = [e for e in dump2["mapProducerIdConsumerIds"] if e["key"] == ctx.video_producer.id]
    assert {video.id, pipe.id} <= set(video_entry["values"])
    for consumer, producer in ((audio, ctx.audio_producer), (video, ctx.video_producer), (pipe, ctx.video_producer)):
        assert {"key": consumer.id, "value": producer.id} in dump2["mapConsumerIdProducerId"]
    transport_dump = await ctx.transport2.dump()
    assert transport_dump["id"] == ctx.transport2.id
    assert transport_dump["producerIds"] == []
    assert set(transport_dump["consumerIds"]) >= {audio.id, video.id, pipe.id}


async def test_transport_consume_with_enable_rtx_succeeds(ctx: Ctx) -> None:
    audio = await ctx.consume_audio(enable_rtx=True)
    assert audio.kind == "audio"
    assert audio.rtp_parameters["codecs"] == [
        {
            "mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2,
            "parameters": OPUS_PARAMETERS, "rtcpFeedback": [{"type": "nack", "parameter": ""}],
        }
    ]


async def test_transport_consume_with_user_provided_mid(ctx: Ctx) -> None:
    audio1 = await ctx.consume_audio()
    assert audio1.rtp_parameters["mid"].isdigit()
    audio2 = await ctx.consume_audio(mid="custom-mid")
    assert audio2.rtp_parameters["mid"] == "custom-mid"
    audio3 = await ctx.consume_audio()
    assert audio3.rtp_parameters["mid"].isdigit()
    assert int(audio1.rtp_parameters["mid"]) + 1 == int(audio3.rtp_parameters["mid"])


async def test_transport_consume_with_incompatible_rtp_capabilities_raises_unsupported_error(ctx: Ctx) -> None:
    for invalid in (
        {
            "codecs": [
                {
                    "kind": "audio", "mimeType": "audio/ISAC", "preferredPayloadType": 100, "clockRate": 32000,
                    "channels": 1,
                }
            ],
            "headerExtensions": [],
        },
        {"codecs": [], "headerExtensions": []},
    ):
        assert ctx.router.can_consume(producer_id=ctx.audio_producer.id, rtp_capabilities=invalid) is False
        with pytest.raises(UnsupportedError):
            await ctx.transport2.consume(producer_id=ctx.audio_producer.id, rtp_capabilities=invalid)


async def test_transport_consume_with_unknown_producer_id_fails(ctx: Ctx) -> None:
    """From 3.27.1's test-Consumer.js (NotFoundError, still a KeyError as before 3.27 named it)."""
    with pytest.raises(NotFoundError):
        await ctx.transport2.consume(producer_id="12345678", rtp_capabilities=CONSUMER_DEVICE_CAPABILITIES)


VP8_FEEDBACK = [{"type": "nack", "parameter": ""}, {"type": "nack", "parameter": "pli"}]
VPX_DEVICE_CAPABILITIES: dict[str, Any] = {
    "codecs": [
        {
            "kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101, "clockRate": 90000,
            "rtcpFeedback": [
                *VP8_FEEDBACK, {"type": "ccm", "parameter": "fir"}, {"type": "goog-remb", "parameter": ""},
            ],
        },
    ],
    "headerExtensions": [],
}


@pytest.mark.parametrize(
    ("encodings", "expected_type"),
    [
        ([{"ssrc": 11111111}], "simple"),
        # The 3.14.16 worker types a single L1T3 encoding simulcast; 3.27's svc.
        ([{"ssrc": 11111111, "scalabilityMode": "L1T3"}], "svc" if AT_LEAST_3_27 else "simulcast"),
        ([{"ssrc": 11111111}, {"ssrc": 22222222}], "simulcast"),
    ],
    ids=["simple", "svc", "simulcast"],
)
async def test_transport_consume_type_follows_the_producer_encodings(
    backend_worker: Any, encodings: list[dict[str, Any]], expected_type: str
) -> None:
    """From 3.27.1's test-Consumer.js: the consumer's type is its producer's."""
    router = await backend_worker.create_router(
        media_codecs=[{"kind": "video", "mimeType": "video/VP8", "clockRate": 90000}]
    )
    listen = [{"protocol": "udp", "ip": "127.0.0.1"}]
    transport1 = await router.create_webrtc_transport(listen_infos=listen)
    transport2 = await router.create_webrtc_transport(listen_infos=listen)
    producer = await transport1.produce(
        kind="video",
        rtp_parameters={
            "codecs": [{"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "rtcpFeedback": VP8_FEEDBACK}],
            "headerExtensions": [],
            "encodings": encodings,
            "rtcp": {"cname": "test"},
        },
    )
    assert producer.type == expected_type
    consumer = await transport2.consume(
        producer_id=producer.id, rtp_capabilities=copy.deepcopy(VPX_DEVICE_CAPABILITIES)
    )
    assert consumer.type == expected_type
    await router.close()


VP9_FEEDBACK = [*VP8_FEEDBACK, {"type": "ccm", "parameter": "fir"}, {"type": "goog-remb", "parameter": ""}]


@pytest.mark.parametrize(
    ("mime_type", "encodings", "expected_type", "clamped"),
    [
        ("video/VP9", [{"ssrc": 33333333, "scalabilityMode": "L3T3"}], "svc", {"spatialLayer": 2, "temporalLayer": 2}),
        (
            "video/VP8",
            [{"ssrc": 44444441 + i, "scalabilityMode": "L1T5"} for i in range(3)],
            "simulcast",
            {"spatialLayer": 2, "temporalLayer": 4},
        ),
    ],
    ids=["svc", "simulcast"],
)
@pytest.mark.skipif(
    not AT_LEAST_3_27, reason="3.27.1's case: the 3.14.16 worker's consume() response carries no preferredLayers"
)
async def test_transport_consume_honors_preferred_layers(
    backend_worker: Any, mime_type: str, encodings: list[dict[str, Any]], expected_type: str,
    clamped: dict[str, int],
) -> None:
    """From 3.27.1's test-Consumer.js: preferred layers are kept, clamped to what the producer has, and
    a missing temporal layer means the highest."""
    codecs = [
        {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000, "rtcpFeedback": VP9_FEEDBACK},
        {"kind": "video", "mimeType": "video/VP9", "clockRate": 90000, "rtcpFeedback": VP9_FEEDBACK},
    ]
    router = await backend_worker.create_router(media_codecs=codecs)
    listen = [{"protocol": "udp", "ip": "127.0.0.1"}]
    transport1 = await router.create_webrtc_transport(listen_infos=listen)
    transport2 = await router.create_webrtc_transport(listen_infos=listen)
    producer = await transport1.produce(
        kind="video",
        rtp_parameters={
            "mid": "VIDEO", "codecs": [
                {"mimeType": mime_type, "payloadType": 96, "clockRate": 90000, "parameters": {},
                 "rtcpFeedback": VP9_FEEDBACK},
            ],
            "headerExtensions": [], "encodings": encodings, "rtcp": {"cname": "FOOBAR"},
        },
    )
    caps = {
        "codecs": [
            {"kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101, "clockRate": 90000,
             "rtcpFeedback": VP9_FEEDBACK},
            {"kind": "video", "mimeType": "video/VP9", "preferredPayloadType": 102, "clockRate": 90000,
             "rtcpFeedback": VP9_FEEDBACK},
        ],
        "headerExtensions": [],
    }
    assert router.can_consume(producer_id=producer.id, rtp_capabilities=copy.deepcopy(caps))

    async def consume(layers: dict[str, int]) -> Any:
        return await transport2.consume(
            producer_id=producer.id, rtp_capabilities=copy.deepcopy(caps), paused=True, preferred_layers=layers
        )

    consumer = await consume({"spatialLayer": 1, "temporalLayer": 0})
    assert consumer.type == expected_type
    assert consumer.preferred_layers == {"spatialLayer": 1, "temporalLayer": 0}
    assert (await consume({"spatialLayer": 9, "temporalLayer": 9})).preferred_layers == clamped
    if expected_type == "svc":
        assert (await consume({"spatialLayer": 1})).preferred_layers == {"spatialLayer": 1, "temporalLayer": 2}
    await router.close()


async def test_consumer_dump_succeeds(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    dump1 = await audio.dump()
    assert dump1["id"] == audio.id
    assert dump1["producerId"] == audio.producer_id
    assert dump1["kind"] == audio.kind
    codecs = dump1["rtpParameters"]["codecs"]
    assert len(codecs) == 1
    assert codecs[0]["mimeType"] == "audio/opus"
    assert codecs[0]["payloadType"] == 100
    assert codecs[0]["clockRate"] == 48000
    assert codecs[0]["channels"] == 2
    assert codecs[0]["parameters"] == OPUS_PARAMETERS
    assert codecs[0]["rtcpFeedback"] == []
    assert dump1["rtpParameters"]["headerExtensions"] == [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": False, "parameters": {}},
        {
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4, "parameters": {},
            "encrypt": False,
        },
        {
            "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": AUDIO_LEVEL_ID, "parameters": {},
            "encrypt": False,
        },
    ]
    [encoding] = dump1["rtpParameters"]["encodings"]
    assert encoding["codecPayloadType"] == 100
    assert encoding["ssrc"] == audio.rtp_parameters["encodings"][0]["ssrc"]
    assert dump1["type"] == "simple"
    [consumable] = dump1["consumableRtpEncodings"]
    assert consumable["ssrc"] == ctx.audio_producer.consumable_rtp_parameters["encodings"][0]["ssrc"]
    assert dump1["supportedCodecPayloadTypes"] == [100]
    assert dump1["paused"] is False
    assert dump1["producerPaused"] is False
    assert dump1["priority"] == 1
    assert dump1["rtpParameters"].get("msid") == (MSID if AT_LEAST_3_27 else None)

    video = await ctx.consume_video(paused=True)
    dump2 = await video.dump()
    assert dump2["id"] == video.id
    assert dump2["producerId"] == video.producer_id
    assert dump2["kind"] == video.kind
    codecs = dump2["rtpParameters"]["codecs"]
    assert len(codecs) == 2
    assert codecs[0]["mimeType"] == "video/H264"
    assert codecs[0]["payloadType"] == 103
    assert codecs[0]["clockRate"] == 90000
    assert "channels" not in codecs[0]
    assert codecs[0]["parameters"] == {"packetization-mode": 1, "profile-level-id": "4d0032"}
    assert codecs[0]["rtcpFeedback"] == [
        {"type": "nack"}, {"type": "nack", "parameter": "pli"}, {"type": "ccm", "parameter": "fir"},
        {"type": "goog-remb"},
    ]
    assert "msid" not in dump2["rtpParameters"]
    assert dump2["rtpParameters"]["headerExtensions"] == [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": False, "parameters": {}},
        {
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4, "parameters": {},
            "encrypt": False,
        },
        {"uri": "urn:3gpp:video-orientation", "id": VIDEO_ORIENTATION_ID, "parameters": {}, "encrypt": False},
        {"uri": "urn:ietf:params:rtp-hdrext:toffset", "id": TOFFSET_ID, "parameters": {}, "encrypt": False},
    ]
    [encoding] = dump2["rtpParameters"]["encodings"]
    assert encoding["codecPayloadType"] == 103
    assert encoding["ssrc"] == video.rtp_parameters["encodings"][0]["ssrc"]
    assert encoding["rtx"] == {"ssrc": video.rtp_parameters["encodings"][0]["rtx"]["ssrc"]}
    assert encoding["scalabilityMode"] == "L4T5"
    consumables = dump2["consumableRtpEncodings"]
    assert len(consumables) == 4
    for i, consumable in enumerate(consumables):
        assert consumable["ssrc"] == ctx.video_producer.consumable_rtp_parameters["encodings"][i]["ssrc"]
        assert consumable["scalabilityMode"] == "L1T5"
    assert dump2["supportedCodecPayloadTypes"] == [103]
    assert dump2["paused"] is True
    assert dump2["producerPaused"] is False
    assert dump2["priority"] == 1


async def test_consumer_get_stats_succeeds(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    [stats] = await audio.get_stats()
    assert stats["type"] == "outbound-rtp"
    assert stats["kind"] == "audio"
    assert stats["mimeType"] == "audio/opus"
    assert stats["ssrc"] == audio.rtp_parameters["encodings"][0]["ssrc"]
    video = await ctx.consume_video()
    [stats] = await video.get_stats()
    assert stats["type"] == "outbound-rtp"
    assert stats["kind"] == "video"
    assert stats["mimeType"] == "video/H264"
    assert stats["ssrc"] == video.rtp_parameters["encodings"][0]["ssrc"]


async def test_consumer_pause_and_resume_succeed(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    on_pause, on_resume = Calls(), Calls()
    audio.observer.on("pause", on_pause)
    audio.observer.on("resume", on_resume)
    await audio.pause()
    assert audio.paused is True
    assert (await audio.dump())["paused"] is True
    await audio.resume()
    assert audio.paused is False
    assert (await audio.dump())["paused"] is False
    # Even without awaiting each pause()/resume(), the observer fires 'pause' and
    # 'resume' whenever the state was the opposite (requests go out in call order).
    calls = (audio.pause, audio.resume, audio.pause, audio.pause, audio.pause, audio.resume)
    await asyncio.gather(*[asyncio.ensure_future(call()) for call in calls])
    assert on_pause.count == 3
    assert on_resume.count == 3


async def test_producer_pause_and_resume_emit_events(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    events: list[str] = []
    audio.observer.once("resume", lambda: events.append("resume"))
    audio.observer.once("pause", lambda: events.append("pause"))
    await asyncio.gather(ctx.audio_producer.pause(), ctx.audio_producer.resume())
    # The consumer learns of both through the worker's notifications.
    await wait_for(lambda: len(events) == 2)
    assert events == ["pause", "resume"]
    assert audio.paused is False


async def test_consumer_set_preferred_layers_succeeds(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    video = await ctx.consume_video()
    await audio.set_preferred_layers(spatial_layer=1, temporal_layer=1)
    assert audio.preferred_layers is None
    await video.set_preferred_layers(spatial_layer=2, temporal_layer=3)
    assert video.preferred_layers == {"spatialLayer": 2, "temporalLayer": 3}
    await video.set_preferred_layers(spatial_layer=3)
    assert video.preferred_layers == {"spatialLayer": 3, "temporalLayer": 4}
    await video.set_preferred_layers(spatial_layer=3, temporal_layer=0)
    assert video.preferred_layers == {"spatialLayer": 3, "temporalLayer": 0}
    await video.set_preferred_layers(spatial_layer=66, temporal_layer=66)
    assert video.preferred_layers == {"spatialLayer": 3, "temporalLayer": 4}


@pytest.mark.parametrize(
    "args", [{}, {"foo": "123"}, {"spatial_layer": "foo"}, {"temporal_layer": 2}],
    ids=["empty", "unknown", "string", "no-spatial-layer"],
)
async def test_consumer_set_preferred_layers_with_wrong_arguments_raises_type_error(
    ctx: Ctx, args: dict[str, Any]
) -> None:
    video = await ctx.consume_video()
    with pytest.raises(TypeError):
        await video.set_preferred_layers(**args)


async def test_consumer_set_priority_succeeds(ctx: Ctx) -> None:
    video = await ctx.consume_video()
    await video.set_priority(2)
    assert video.priority == 2


async def test_consumer_set_priority_with_wrong_arguments_raises_type_error(ctx: Ctx) -> None:
    video = await ctx.consume_video()
    with pytest.raises(TypeError):
        await video.set_priority()
    with pytest.raises(TypeError):
        await video.set_priority(0)
    with pytest.raises(TypeError):
        await video.set_priority("foo")


async def test_consumer_unset_priority_succeeds(ctx: Ctx) -> None:
    video = await ctx.consume_video()
    await video.set_priority(2)
    await video.unset_priority()
    assert video.priority == 1


async def test_consumer_enable_trace_event_succeeds(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    await audio.enable_trace_event(["rtp", "pli"])
    assert set((await audio.dump())["traceEventTypes"]) == {"rtp", "pli"}
    await audio.enable_trace_event([])
    assert (await audio.dump())["traceEventTypes"] == []
    await audio.enable_trace_event(["nack", "FOO", "fir"])
    assert set((await audio.dump())["traceEventTypes"]) == {"nack", "fir"}
    await audio.enable_trace_event()
    assert (await audio.dump())["traceEventTypes"] == []


@pytest.mark.parametrize("types", [123, "rtp", ["fir", 123.123]])
async def test_consumer_enable_trace_event_with_wrong_arguments_raises_type_error(ctx: Ctx, types: Any) -> None:
    audio = await ctx.consume_audio()
    with pytest.raises(TypeError):
        await audio.enable_trace_event(types)


async def test_consumer_emits_producerpause_and_producerresume(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    await asyncio.gather(once(audio, "producerpause"), ctx.audio_producer.pause())
    assert audio.paused is False
    assert audio.producer_paused is True
    await asyncio.gather(once(audio, "producerresume"), ctx.audio_producer.resume())
    assert audio.paused is False
    assert audio.producer_paused is False


@skip_backends(
    "injects a worker notification into the local object's handler; a remote proxy has no channel to inject into",
    *REMOTE_BACKENDS,
)
async def test_consumer_emits_score(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    on_score = Calls()
    audio.on("score", on_score)
    # Simulate a 'score' notification coming through the channel.
    notification = fbs.new(
        "Consumer.ScoreNotification",
        score=fbs.new("Consumer.ConsumerScore", score=9, producerScore=10, producerScores=[8]),
    )
    for _ in range(3):
        audio._on_notification(fbs.enum("Notification.Event").CONSUMER_SCORE, notification)
    assert on_score.count == 3
    assert audio.score == {"score": 9, "producerScore": 10, "producerScores": [8]}


async def test_consumer_close_succeeds(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    video = await ctx.consume_video()
    on_close = Calls()
    audio.observer.once("close", on_close)
    await audio.close()
    assert on_close.count == 1
    assert audio.closed is True
    with pytest.raises(NotFoundError):
        await audio.dump()
    dump = await router_dump(ctx.transport2)
    assert {"key": ctx.audio_producer.id, "values": []} in dump["mapProducerIdConsumerIds"]
    assert {"key": ctx.video_producer.id, "values": [video.id]} in dump["mapProducerIdConsumerIds"]
    assert dump["mapConsumerIdProducerId"] == [{"key": video.id, "value": ctx.video_producer.id}]
    transport_dump = await ctx.transport2.dump()
    assert transport_dump["id"] == ctx.transport2.id
    assert transport_dump["producerIds"] == []
    assert transport_dump["consumerIds"] == [video.id]


async def test_consumer_methods_raise_if_closed(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    await audio.close()
    calls = (
        audio.dump, audio.get_stats, audio.pause, audio.resume, lambda: audio.set_preferred_layers(spatial_layer=0),
        lambda: audio.set_priority(2), audio.request_key_frame,
    )
    for call in calls:
        with pytest.raises(NotFoundError):
            await call()


async def test_consumer_emits_producerclose_if_producer_closed(ctx: Ctx) -> None:
    audio = await ctx.consume_audio()
    on_close = Calls()
    audio.observer.once("close", on_close)
    producer_close = asyncio.ensure_future(once(audio, "producerclose"))
    await asyncio.sleep(0)
    await ctx.audio_producer.close()
    await producer_close
    assert on_close.count == 1
    assert audio.closed is True
    with pytest.raises(NotFoundError):
        await audio.dump()


async def test_consumer_emits_transportclose_if_transport_closed(ctx: Ctx) -> None:
    video = await ctx.consume_video()
    on_close = Calls()
    video.observer.once("close", on_close)
    transport_close = asyncio.ensure_future(once(video, "transportclose"))
    await asyncio.sleep(0)
    await ctx.transport2.close()
    await transport_close
    assert on_close.count == 1
    assert video.closed is True
    with pytest.raises(NotFoundError):
        await video.dump()
    dump = await router_dump(ctx.transport1)
    assert {"key": ctx.audio_producer.id, "values": []} in dump["mapProducerIdConsumerIds"]
    assert {"key": ctx.video_producer.id, "values": []} in dump["mapProducerIdConsumerIds"]
    assert dump["mapConsumerIdProducerId"] == []
