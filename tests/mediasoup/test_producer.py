"""Port of mediasoup's test-Producer.js."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from media import fbs
from media.errors import NotFoundError, UnsupportedError
from tests.mediasoup.conftest import AT_LEAST_3_27, Calls, once, router_dump

MEDIA_CODECS: list[dict[str, Any]] = [
    {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2, "parameters": {"foo": "111"}},
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
    {
        "kind": "video",
        "mimeType": "video/H264",
        "clockRate": 90000,
        "parameters": {
            "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d0032", "foo": "bar",
        },
        "rtcpFeedback": [],  # Will be ignored.
    },
]

AUDIO_PRODUCER_OPTIONS: dict[str, Any] = {
    "kind": "audio",
    "rtp_parameters": {
        "mid": "AUDIO",
        "codecs": [
            {
                "mimeType": "audio/opus",
                "payloadType": 0,
                "clockRate": 48000,
                "channels": 2,
                "parameters": {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"},
            }
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
            {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 12},
        ],
        # Missing encodings on purpose.
        "rtcp": {"cname": "audio-1"},
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
                "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}, {"type": "goog-remb"}],
            },
            {"mimeType": "video/rtx", "payloadType": 113, "clockRate": 90000, "parameters": {"apt": 112}},
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
            {"uri": "urn:3gpp:video-orientation", "id": 13},
        ],
        "encodings": [
            {"ssrc": 22222222, "rtx": {"ssrc": 22222223}, "scalabilityMode": "L1T3"},
            {"ssrc": 22222224, "rtx": {"ssrc": 22222225}},
            {"ssrc": 22222226, "rtx": {"ssrc": 22222227}},
            {"ssrc": 22222228, "rtx": {"ssrc": 22222229}},
        ],
        "rtcp": {"cname": "video-1"},
    },
    "app_data": {"foo": 1, "bar": "2"},
}


def audio_options() -> dict[str, Any]:
    return copy.deepcopy(AUDIO_PRODUCER_OPTIONS)


def video_options() -> dict[str, Any]:
    return copy.deepcopy(VIDEO_PRODUCER_OPTIONS)


@pytest.fixture
async def ctx(backend_worker: Any) -> Any:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    transport1 = await router.create_webrtc_transport(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}])
    transport2 = await router.create_webrtc_transport(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}])
    yield router, transport1, transport2
    await router.close()


async def test_transport1_produce_succeeds(ctx: Any) -> None:
    _router, transport1, _ = ctx
    on_new_producer = Calls()
    transport1.observer.once("newproducer", on_new_producer)
    producer = await transport1.produce(**audio_options())
    assert on_new_producer.calls == [(producer,)]
    assert isinstance(producer.id, str)
    assert not producer.closed
    assert producer.kind == "audio"
    assert isinstance(producer.rtp_parameters, dict)
    assert producer.type == "simple"
    assert isinstance(producer.consumable_rtp_parameters, dict)
    assert producer.paused is False
    assert producer.score == []
    assert producer.app_data == {"foo": 1, "bar": "2"}
    dump = await router_dump(transport1)
    assert dump["mapProducerIdConsumerIds"] == [{"key": producer.id, "values": []}]
    assert dump["mapConsumerIdProducerId"] == []
    transport_dump = await transport1.dump()
    assert transport_dump["id"] == transport1.id
    assert transport_dump["producerIds"] == [producer.id]
    assert transport_dump["consumerIds"] == []


async def test_transport2_produce_succeeds(ctx: Any) -> None:
    _router, _, transport2 = ctx
    on_new_producer = Calls()
    transport2.observer.once("newproducer", on_new_producer)
    producer = await transport2.produce(**video_options())
    assert on_new_producer.calls == [(producer,)]
    assert not producer.closed
    assert producer.kind == "video"
    assert producer.type == "simulcast"
    assert isinstance(producer.consumable_rtp_parameters, dict)
    assert producer.paused is False
    assert producer.score == []
    assert producer.app_data == {"foo": 1, "bar": "2"}
    dump = await router_dump(transport2)
    assert {"key": producer.id, "values": []} in dump["mapProducerIdConsumerIds"]
    assert len(dump["mapConsumerIdProducerId"]) == 0
    transport_dump = await transport2.dump()
    assert transport_dump["id"] == transport2.id
    assert transport_dump["producerIds"] == [producer.id]
    assert transport_dump["consumerIds"] == []


async def test_produce_without_header_extensions_and_rtcp_succeeds(ctx: Any) -> None:
    _router, transport1, _ = ctx
    on_new_producer = Calls()
    transport1.observer.once("newproducer", on_new_producer)
    producer = await transport1.produce(
        kind="audio",
        rtp_parameters={
            "mid": "AUDIO2",
            "codecs": [
                {
                    "mimeType": "audio/opus",
                    "payloadType": 0,
                    "clockRate": 48000,
                    "channels": 2,
                    "parameters": {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"},
                }
            ],
        },
        app_data={"foo": 1, "bar": "2"},
    )
    assert on_new_producer.calls == [(producer,)]
    assert not producer.closed
    assert producer.kind == "audio"
    assert producer.type == "simple"
    assert producer.paused is False
    assert producer.score == []
    assert producer.app_data == {"foo": 1, "bar": "2"}
    await producer.close()


H264_WITH_RTX = [
    {
        "mimeType": "video/h264",
        "payloadType": 112,
        "clockRate": 90000,
        "parameters": {"packetization-mode": 1, "profile-level-id": "4d0032"},
    },
    {"mimeType": "video/rtx", "payloadType": 113, "clockRate": 90000, "parameters": {"apt": 112}},
]


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "chicken", "rtp_parameters": {}},
        {"kind": "audio", "rtp_parameters": {}},
        # Invalid ssrc.
        {
            "kind": "audio",
            "rtp_parameters": {
                "codecs": [], "headerExtensions": [], "encodings": [{"ssrc": "1111"}], "rtcp": {"cname": "qwerty"},
            },
        },
        # Missing or empty rtpParameters.encodings.
        {
            "kind": "video",
            "rtp_parameters": {
                "codecs": H264_WITH_RTX, "headerExtensions": [], "encodings": [], "rtcp": {"cname": "qwerty"},
            },
        },
        # Wrong apt in RTX codec.
        {
            "kind": "audio",
            "rtp_parameters": {
                "codecs": [H264_WITH_RTX[0], {**H264_WITH_RTX[1], "parameters": {"apt": 111}}],
                "headerExtensions": [],
                "encodings": [{"ssrc": 6666, "rtx": {"ssrc": 6667}}],
                "rtcp": {"cname": "video-1"},
            },
        },
    ],
    ids=["kind", "empty-rtp-parameters", "ssrc", "no-encodings", "rtx-apt"],
)
async def test_produce_with_wrong_arguments_raises_type_error(ctx: Any, options: dict[str, Any]) -> None:
    _router, transport1, _ = ctx
    with pytest.raises(TypeError):
        await transport1.produce(**copy.deepcopy(options))


async def test_produce_with_unsupported_codecs_raises_unsupported_error(ctx: Any) -> None:
    _router, transport1, _ = ctx
    with pytest.raises(UnsupportedError):
        await transport1.produce(
            kind="audio",
            rtp_parameters={
                "codecs": [{"mimeType": "audio/ISAC", "payloadType": 108, "clockRate": 32000}],
                "headerExtensions": [],
                "encodings": [{"ssrc": 1111}],
                "rtcp": {"cname": "audio"},
            },
        )
    # Invalid H264 profile-level-id.
    with pytest.raises(UnsupportedError):
        await transport1.produce(
            kind="video",
            rtp_parameters={
                "codecs": [
                    {**H264_WITH_RTX[0], "parameters": {"packetization-mode": 1, "profile-level-id": "CHICKEN"}},
                    H264_WITH_RTX[1],
                ],
                "headerExtensions": [],
                "encodings": [{"ssrc": 6666, "rtx": {"ssrc": 6667}}],
            },
        )


async def test_produce_with_already_used_mid_or_ssrc_raises(ctx: Any) -> None:
    _router, transport1, transport2 = ctx
    audio = {
        "kind": "audio",
        "rtp_parameters": {
            "mid": "AUDIO",
            "codecs": [{"mimeType": "audio/opus", "payloadType": 0, "clockRate": 48000, "channels": 2}],
            "encodings": [{"ssrc": 33333333}],
        },
    }
    video = {
        "kind": "video",
        "rtp_parameters": {
            "mid": "VIDEO2",
            "codecs": [H264_WITH_RTX[0]],
            "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10}],
            "encodings": [{"ssrc": 22222222}],
            "rtcp": {"cname": "video-1"},
        },
    }
    await transport1.produce(**copy.deepcopy(audio))
    with pytest.raises(Exception):  # noqa: B017 - upstream expects any Error (the worker refuses)
        await transport1.produce(**copy.deepcopy(audio))
    await transport2.produce(**copy.deepcopy(video))
    with pytest.raises(Exception):  # noqa: B017
        await transport2.produce(**copy.deepcopy(video))


async def test_produce_with_no_mid_and_single_encoding_without_rid_or_ssrc_raises(ctx: Any) -> None:
    _router, transport1, _ = ctx
    with pytest.raises(Exception):  # noqa: B017 - upstream expects any Error (the worker refuses)
        await transport1.produce(
            kind="audio",
            rtp_parameters={
                "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2}],
                "encodings": [{}],
            },
        )


@pytest.mark.parametrize(
    ("encodings", "expected_type"),
    [
        ([{"ssrc": 11111111}], "simple"),
        # The 3.14.16 worker types a single L1T3 encoding simulcast; 3.27's svc.
        ([{"ssrc": 11111111, "scalabilityMode": "L1T3"}], "svc" if AT_LEAST_3_27 else "simulcast"),
        ([{"ssrc": 11111111, "scalabilityMode": "L1T3"}, {"ssrc": 22222222, "scalabilityMode": "L1T3"}], "simulcast"),
    ],
    ids=["simple", "svc", "simulcast"],
)
async def test_produce_type_follows_the_encodings(
    ctx: Any, encodings: list[dict[str, Any]], expected_type: str
) -> None:
    """From 3.27.1's test-Producer.js: one encoding is simple (or svc with temporal layers, on 3.27);
    several are simulcast."""
    _router, transport1, _transport2 = ctx
    producer = await transport1.produce(
        kind="video",
        rtp_parameters={
            "codecs": [{"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000}],
            "encodings": encodings,
            "rtcp": {"cname": "test"},
        },
    )
    assert producer.type == expected_type


async def test_producer_dump_succeeds(ctx: Any) -> None:
    _router, transport1, transport2 = ctx
    audio = await transport1.produce(**audio_options())
    dump1 = await audio.dump()
    assert dump1["id"] == audio.id
    assert dump1["kind"] == audio.kind
    codecs = dump1["rtpParameters"]["codecs"]
    assert len(codecs) == 1
    assert codecs[0]["mimeType"] == "audio/opus"
    assert codecs[0]["payloadType"] == 0
    assert codecs[0]["clockRate"] == 48000
    assert codecs[0]["channels"] == 2
    assert codecs[0]["parameters"] == {"useinbandfec": 1, "usedtx": 1, "foo": 222.222, "bar": "333"}
    assert codecs[0]["rtcpFeedback"] == []
    assert dump1["rtpParameters"]["headerExtensions"] == [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10, "parameters": {}, "encrypt": False},
        {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 12, "parameters": {}, "encrypt": False},
    ]
    assert len(dump1["rtpParameters"]["encodings"]) == 1
    assert dump1["rtpParameters"]["encodings"][0]["codecPayloadType"] == 0
    assert dump1["type"] == "simple"

    video = await transport2.produce(**video_options())
    dump2 = await video.dump()
    assert dump2["id"] == video.id
    assert dump2["kind"] == video.kind
    codecs = dump2["rtpParameters"]["codecs"]
    assert len(codecs) == 2
    assert codecs[0]["mimeType"] == "video/H264"
    assert codecs[0]["payloadType"] == 112
    assert codecs[0]["clockRate"] == 90000
    assert "channels" not in codecs[0]
    assert codecs[0]["parameters"] == {"packetization-mode": 1, "profile-level-id": "4d0032"}
    assert codecs[0]["rtcpFeedback"] == [
        {"type": "nack"}, {"type": "nack", "parameter": "pli"}, {"type": "goog-remb"},
    ]
    assert codecs[1]["mimeType"] == "video/rtx"
    assert codecs[1]["payloadType"] == 113
    assert codecs[1]["clockRate"] == 90000
    assert "channels" not in codecs[1]
    assert codecs[1]["parameters"] == {"apt": 112}
    assert codecs[1]["rtcpFeedback"] == []
    assert dump2["rtpParameters"]["headerExtensions"] == [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10, "parameters": {}, "encrypt": False},
        {"uri": "urn:3gpp:video-orientation", "id": 13, "parameters": {}, "encrypt": False},
    ]
    encodings = dump2["rtpParameters"]["encodings"]
    expected = [
        {"codecPayloadType": 112, "ssrc": 22222222, "rtx": {"ssrc": 22222223}, "scalabilityMode": "L1T3"},
        {"codecPayloadType": 112, "ssrc": 22222224, "rtx": {"ssrc": 22222225}},
        {"codecPayloadType": 112, "ssrc": 22222226, "rtx": {"ssrc": 22222227}},
        {"codecPayloadType": 112, "ssrc": 22222228, "rtx": {"ssrc": 22222229}},
    ]
    assert len(encodings) == 4
    for got, want in zip(encodings, expected, strict=True):
        assert {k: got.get(k) for k in want} == want
    assert dump2["type"] == "simulcast"


async def test_producer_get_stats_succeeds(ctx: Any) -> None:
    _router, transport1, transport2 = ctx
    audio = await transport1.produce(**audio_options())
    video = await transport2.produce(**video_options())
    assert await audio.get_stats() == []
    assert await video.get_stats() == []


async def test_producer_pause_and_resume_succeed(ctx: Any) -> None:
    _router, transport1, _ = ctx
    audio = await transport1.produce(**audio_options())
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
    # 'resume' whenever the state was the opposite.
    # (Issued in this order as tasks: requests go out in call order, as in Node.)
    calls = (audio.pause, audio.resume, audio.pause, audio.pause, audio.pause, audio.resume)
    await asyncio.gather(*[asyncio.ensure_future(call()) for call in calls])
    assert on_pause.count == 3
    assert on_resume.count == 3


async def test_producer_pause_and_resume_emit_events(ctx: Any) -> None:
    _router, transport1, _ = ctx
    audio = await transport1.produce(**audio_options())
    events: list[str] = []
    audio.observer.once("resume", lambda: events.append("resume"))
    audio.observer.once("pause", lambda: events.append("pause"))
    await asyncio.gather(audio.pause(), audio.resume())
    assert events == ["pause", "resume"]
    assert audio.paused is False


async def test_producer_enable_trace_event_succeeds(ctx: Any) -> None:
    _router, transport1, _ = ctx
    audio = await transport1.produce(**audio_options())
    await audio.enable_trace_event(["rtp", "pli"])
    assert set((await audio.dump())["traceEventTypes"]) == {"rtp", "pli"}
    await audio.enable_trace_event([])
    assert (await audio.dump())["traceEventTypes"] == []
    await audio.enable_trace_event(["nack", "FOO", "fir"])
    assert set((await audio.dump())["traceEventTypes"]) == {"nack", "fir"}
    await audio.enable_trace_event()
    assert (await audio.dump())["traceEventTypes"] == []


@pytest.mark.parametrize("types", [123, "rtp", ["fir", 123.123]])
async def test_producer_enable_trace_event_with_wrong_arguments_raises_type_error(ctx: Any, types: Any) -> None:
    _router, transport1, _ = ctx
    audio = await transport1.produce(**audio_options())
    with pytest.raises(TypeError):
        await audio.enable_trace_event(types)


async def test_producer_emits_score(ctx: Any) -> None:
    _router, _, transport2 = ctx
    video = await transport2.produce(**video_options())
    on_score = Calls()
    video.on("score", on_score)
    # Simulate a 'score' notification coming through the channel.
    notification = fbs.new(
        "Producer.ScoreNotification",
        scores=[
            fbs.new("Producer.Score", encodingIdx=0, ssrc=11, rid=None, score=10),
            fbs.new("Producer.Score", encodingIdx=1, ssrc=22, rid=None, score=9),
        ],
    )
    for _ in range(3):
        video._on_notification(fbs.enum("Notification.Event").PRODUCER_SCORE, notification)
    assert on_score.count == 3
    assert video.score == [
        {"ssrc": 11, "rid": None, "score": 10, "encodingIdx": 0},
        {"ssrc": 22, "rid": None, "score": 9, "encodingIdx": 1},
    ]


async def test_producer_close_succeeds(ctx: Any) -> None:
    _router, transport1, _ = ctx
    audio = await transport1.produce(**audio_options())
    on_close = Calls()
    audio.observer.once("close", on_close)
    await audio.close()
    assert on_close.count == 1
    assert audio.closed
    with pytest.raises(NotFoundError):
        await audio.dump()
    dump = await router_dump(transport1)
    assert dump["mapProducerIdConsumerIds"] == []
    assert dump["mapConsumerIdProducerId"] == []
    transport_dump = await transport1.dump()
    assert transport_dump["id"] == transport1.id
    assert transport_dump["producerIds"] == []
    assert transport_dump["consumerIds"] == []


async def test_producer_methods_raise_if_closed(ctx: Any) -> None:
    _router, transport1, _ = ctx
    audio = await transport1.produce(**audio_options())
    await audio.close()
    for method in (audio.dump, audio.get_stats, audio.pause, audio.resume):
        with pytest.raises(NotFoundError):
            await method()


async def test_producer_emits_transportclose_if_transport_closed(ctx: Any) -> None:
    _router, _, transport2 = ctx
    video = await transport2.produce(**video_options())
    on_close = Calls()
    video.observer.once("close", on_close)
    transport_close = asyncio.ensure_future(once(video, "transportclose"))
    await asyncio.sleep(0)
    await transport2.close()
    await transport_close
    assert on_close.count == 1
    assert video.closed
    with pytest.raises(NotFoundError):
        await video.dump()
