"""Port of mediasoup's test-PipeTransport.js.

Upstream pipes between two routers on two workers; so do these, on two local workers
(`media.create_worker()`): what they check is the PipeTransport pair between two real
workers, which the vertical and remote back-ends build from these same local objects.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from typing import Any

import pytest

import media
from media.errors import NotFoundError
from media.pipe_transport import PipeTransport
from tests.mediasoup.conftest import AT_LEAST_3_27, once, wait_for

MEDIA_CODECS: list[dict[str, Any]] = [
    {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
]

AUDIO_PRODUCER_OPTIONS: dict[str, Any] = {
    "kind": "audio",
    "rtp_parameters": {
        "mid": "AUDIO",
        "codecs": [
            {
                "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                "parameters": {"useinbandfec": 1, "foo": "bar1"},
            }
        ],
        "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10}],
        "encodings": [{"ssrc": 11111111}],
        "rtcp": {"cname": "FOOBAR"},
    },
    "app_data": {"foo": "bar1"},
}

VIDEO_PRODUCER_OPTIONS: dict[str, Any] = {
    "kind": "video",
    "rtp_parameters": {
        "mid": "VIDEO",
        "codecs": [
            {
                "mimeType": "video/VP8",
                "payloadType": 112,
                "clockRate": 90000,
                "rtcpFeedback": [
                    {"type": "nack"}, {"type": "nack", "parameter": "pli"}, {"type": "goog-remb"}, {"type": "lalala"},
                ],
            }
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10},
            {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 11},
            {"uri": "urn:3gpp:video-orientation", "id": 13},
        ],
        "encodings": [{"ssrc": 22222222}, {"ssrc": 22222223}, {"ssrc": 22222224}],
        "rtcp": {"cname": "FOOBAR"},
    },
    "app_data": {"foo": "bar2"},
}

DATA_PRODUCER_OPTIONS: dict[str, Any] = {
    "sctp_stream_parameters": {"streamId": 666, "ordered": False, "maxPacketLifeTime": 5000},
    "label": "foo",
    "protocol": "bar",
}

CONSUMER_DEVICE_CAPABILITIES: dict[str, Any] = {
    "codecs": [
        {"kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 100, "clockRate": 48000, "channels": 2},
        {
            "kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101, "clockRate": 90000,
            "rtcpFeedback": [{"type": "nack"}, {"type": "ccm", "parameter": "fir"}, {"type": "transport-cc"}],
        },
        {
            "kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 102, "clockRate": 90000,
            "parameters": {"apt": 101}, "rtcpFeedback": [],
        },
    ],
    "headerExtensions": [
        {
            "kind": "video", "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "preferredId": 4,
            "preferredEncrypt": False, "direction": "sendrecv",
        },
        {
            "kind": "video", "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "preferredId": 5, "preferredEncrypt": False,
        },
        {
            "kind": "audio", "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "preferredId": 6 if AT_LEAST_3_27 else 10, "preferredEncrypt": False,
        },
    ],
}

def _ext(uri: str, id: int) -> dict[str, Any]:
    return {"uri": uri, "id": id, "encrypt": False, "parameters": {}}


ABS_CAPTURE_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
DEPENDENCY_DESCRIPTOR = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
PACKET_ID = "urn:mediasoup:params:rtp-hdrext:packet-id"
if AT_LEAST_3_27:
    # 3.27.1's test-PipeTransport.js: renumbered ids, no framemarking, abs-capture-time only when the
    # producer sends it, the dependency descriptor added to every pipe consumer, mediasoup's packet-id.
    AUDIO_PIPE_HEADER_EXTENSIONS = [
        _ext("urn:ietf:params:rtp-hdrext:ssrc-audio-level", 6), _ext(DEPENDENCY_DESCRIPTOR, 7),
        _ext(PLAYOUT_DELAY, 11), _ext(PACKET_ID, 12),
    ]
    VIDEO_PIPE_HEADER_EXTENSIONS = [
        _ext(DEPENDENCY_DESCRIPTOR, 7), _ext("urn:3gpp:video-orientation", 8),
        _ext("urn:ietf:params:rtp-hdrext:toffset", 9), _ext(PLAYOUT_DELAY, 11), _ext(PACKET_ID, 12),
    ]
else:
    # The 3.14.16 worker also offers playout-delay (id 14), which the 3.14.7 suite predates.
    AUDIO_PIPE_HEADER_EXTENSIONS = [
        _ext("urn:ietf:params:rtp-hdrext:ssrc-audio-level", 10), _ext(ABS_CAPTURE_TIME, 13),
        _ext(PLAYOUT_DELAY, 14),
    ]
    VIDEO_PIPE_HEADER_EXTENSIONS = [
        _ext("http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07", 6),
        _ext("urn:ietf:params:rtp-hdrext:framemarking", 7), _ext("urn:3gpp:video-orientation", 11),
        _ext("urn:ietf:params:rtp-hdrext:toffset", 12), _ext(ABS_CAPTURE_TIME, 13), _ext(PLAYOUT_DELAY, 14),
    ]
VP8_PIPE_CODEC = {
    "mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {},
    "rtcpFeedback": [{"type": "nack", "parameter": "pli"}, {"type": "ccm", "parameter": "fir"}],
}
KEY_256 = "YTdjcDBvY2JoMGY5YXNlNDc0eDJsdGgwaWRvNnJsamRrdG16aWVpZHphdHo="


class Ctx:
    worker1: Any
    worker2: Any
    router1: Any
    router2: Any
    transport1: Any
    transport2: Any
    audio_producer: Any
    video_producer: Any
    data_producer: Any


@pytest.fixture
async def ctx() -> Any:
    c = Ctx()
    c.worker1, c.worker2 = await asyncio.gather(media.create_worker(), media.create_worker())
    c.router1 = await c.worker1.create_router(media_codecs=MEDIA_CODECS)
    c.router2 = await c.worker2.create_router(media_codecs=MEDIA_CODECS)
    c.transport1 = await c.router1.create_webrtc_transport(
        listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}], enable_sctp=True
    )
    c.transport2 = await c.router2.create_webrtc_transport(listen_ips=["127.0.0.1"], enable_sctp=True)
    c.audio_producer = await c.transport1.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    c.video_producer = await c.transport1.produce(**copy.deepcopy(VIDEO_PRODUCER_OPTIONS))
    c.data_producer = await c.transport1.produce_data(**copy.deepcopy(DATA_PRODUCER_OPTIONS))
    yield c
    await asyncio.gather(c.worker1.close(), c.worker2.close())


async def test_pipe_to_router_succeeds_with_audio(ctx: Ctx) -> None:
    result = await ctx.router1.pipe_to_router(producer_id=ctx.audio_producer.id, router=ctx.router2)
    pipe_consumer, pipe_producer = result.pipe_consumer, result.pipe_producer
    # router1: the WebRtcTransport and the PipeTransport to router2; router2 likewise.
    assert len((await ctx.router1.dump())["transportIds"]) == 2
    assert len((await ctx.router2.dump())["transportIds"]) == 2
    assert isinstance(pipe_consumer.id, str)
    assert pipe_consumer.closed is False
    assert pipe_consumer.kind == "audio"
    assert "mid" not in pipe_consumer.rtp_parameters
    opus = {
        "mimeType": "audio/opus", "clockRate": 48000, "payloadType": 100, "channels": 2,
        "parameters": {"useinbandfec": 1, "foo": "bar1"}, "rtcpFeedback": [],
    }
    assert pipe_consumer.rtp_parameters["codecs"] == [opus]
    assert pipe_consumer.rtp_parameters["headerExtensions"] == AUDIO_PIPE_HEADER_EXTENSIONS
    assert pipe_consumer.type == "pipe"
    assert pipe_consumer.paused is False
    assert pipe_consumer.producer_paused is False
    assert pipe_consumer.score == {"score": 10, "producerScore": 10, "producerScores": []}
    assert pipe_consumer.app_data == {}
    assert pipe_producer.id == ctx.audio_producer.id
    assert pipe_producer.closed is False
    assert pipe_producer.kind == "audio"
    assert "mid" not in pipe_producer.rtp_parameters
    assert pipe_producer.rtp_parameters["codecs"] == [opus]
    assert pipe_producer.rtp_parameters["headerExtensions"] == AUDIO_PIPE_HEADER_EXTENSIONS
    assert pipe_producer.paused is False


async def test_pipe_to_router_succeeds_with_video(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(producer_id=ctx.audio_producer.id, router=ctx.router2)
    await ctx.video_producer.pause()
    result = await ctx.router1.pipe_to_router(producer_id=ctx.video_producer.id, router=ctx.router2)
    pipe_consumer, pipe_producer = result.pipe_consumer, result.pipe_producer
    # No new PipeTransport: the existing pair is used.
    assert len((await ctx.router1.dump())["transportIds"]) == 2
    assert len((await ctx.router2.dump())["transportIds"]) == 2
    assert pipe_consumer.closed is False
    assert pipe_consumer.kind == "video"
    assert "mid" not in pipe_consumer.rtp_parameters
    assert pipe_consumer.rtp_parameters["codecs"] == [VP8_PIPE_CODEC]
    assert pipe_consumer.rtp_parameters["headerExtensions"] == VIDEO_PIPE_HEADER_EXTENSIONS
    assert pipe_consumer.type == "pipe"
    assert pipe_consumer.paused is False
    assert pipe_consumer.producer_paused is True
    assert pipe_consumer.score == {"score": 10, "producerScore": 10, "producerScores": []}
    assert pipe_consumer.app_data == {}
    assert pipe_producer.id == ctx.video_producer.id
    assert pipe_producer.closed is False
    assert pipe_producer.kind == "video"
    assert "mid" not in pipe_producer.rtp_parameters
    assert pipe_producer.rtp_parameters["codecs"] == [VP8_PIPE_CODEC]
    assert pipe_producer.rtp_parameters["headerExtensions"] == VIDEO_PIPE_HEADER_EXTENSIONS
    assert pipe_producer.paused is True


async def test_create_pipe_transport_with_wrong_arguments_raises_type_error(ctx: Ctx) -> None:
    wrong: list[dict[str, Any]] = [
        {},
        {"listen_info": {"protocol": "udp", "ip": "127.0.0.1", "portRange": {"min": 4000, "max": 3000}}},
        {"listen_ip": "123"},
        {"listen_ip": ["127.0.0.1"]},
        {"listen_info": {"protocol": "tcp", "ip": "127.0.0.1"}},
        {"listen_info": {"protocol": "udp", "ip": "127.0.0.1"}, "app_data": "NOT-AN-OBJECT"},
    ]
    for options in wrong:
        with pytest.raises(TypeError):
            await ctx.router1.create_pipe_transport(**options)


async def test_create_pipe_transport_with_enable_rtx_succeeds(ctx: Ctx) -> None:
    transport = await ctx.router1.create_pipe_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1", "portRange": {"min": 2000, "max": 3000}}, enable_rtx=True
    )
    pipe_consumer = await transport.consume(producer_id=ctx.video_producer.id)
    assert pipe_consumer.closed is False
    assert pipe_consumer.kind == "video"
    assert "mid" not in pipe_consumer.rtp_parameters
    assert pipe_consumer.rtp_parameters["codecs"] == [
        {
            "mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {},
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""}, {"type": "nack", "parameter": "pli"},
                {"type": "ccm", "parameter": "fir"},
            ],
        },
        {"mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000, "parameters": {"apt": 101},
         "rtcpFeedback": []},
    ]
    assert pipe_consumer.rtp_parameters["headerExtensions"] == VIDEO_PIPE_HEADER_EXTENSIONS
    assert pipe_consumer.type == "pipe"
    assert pipe_consumer.paused is False
    assert pipe_consumer.producer_paused is False
    assert pipe_consumer.score == {"score": 10, "producerScore": 10, "producerScores": []}
    assert pipe_consumer.app_data == {}


async def test_pipe_transport_connect_with_valid_srtp_parameters_succeeds(ctx: Ctx) -> None:
    transport = await ctx.router1.create_pipe_transport(listen_ip="127.0.0.1", enable_srtp=True)
    assert len(transport.srtp_parameters["keyBase64"]) == 60
    result = await transport.connect(
        ip="127.0.0.2", port=9999, srtp_parameters={"cryptoSuite": "AEAD_AES_256_GCM", "keyBase64": KEY_256}
    )
    assert result is None


async def test_pipe_transport_connect_with_srtp_parameters_fails_if_enable_srtp_unset(ctx: Ctx) -> None:
    transport = await ctx.router1.create_pipe_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1", "portRange": {"min": 2000, "max": 3000}}, enable_rtx=True
    )
    assert transport.srtp_parameters is None
    with pytest.raises(TypeError):
        await transport.connect(
            ip="127.0.0.2", port=9999, srtp_parameters={"cryptoSuite": "AEAD_AES_256_GCM", "keyBase64": KEY_256}
        )
    with pytest.raises(TypeError):
        await transport.connect(ip="127.0.0.2", port=9999, srtp_parameters="invalid")


async def test_pipe_transport_connect_with_invalid_srtp_parameters_fails(ctx: Ctx) -> None:
    transport = await ctx.router1.create_pipe_transport(listen_ip="127.0.0.1", enable_srtp=True)
    assert isinstance(transport.id, str)
    assert len(transport.srtp_parameters["keyBase64"]) == 60
    wrong: list[Any] = [
        None,  # Missing srtp_parameters.
        1,
        {"keyBase64": KEY_256},
        {"cryptoSuite": "AEAD_AES_256_GCM"},
        {"cryptoSuite": "FOO", "keyBase64": KEY_256},
        {"cryptoSuite": 123, "keyBase64": KEY_256},
        {"cryptoSuite": "AEAD_AES_256_GCM", "keyBase64": []},
    ]
    for srtp_parameters in wrong:
        with pytest.raises(TypeError):
            await transport.connect(ip="127.0.0.2", port=9999, srtp_parameters=srtp_parameters)


async def test_create_pipe_transport_with_fixed_port_succeeds(ctx: Ctx) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = await ctx.router1.create_pipe_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1", "port": port}
    )
    assert transport.tuple["localPort"] == port


async def test_transport_consume_for_a_pipe_producer_succeeds(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(producer_id=ctx.video_producer.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(
        producer_id=ctx.video_producer.id, rtp_capabilities=copy.deepcopy(CONSUMER_DEVICE_CAPABILITIES)
    )
    assert consumer.closed is False
    assert consumer.kind == "video"
    assert consumer.rtp_parameters["mid"] == "0"
    assert consumer.rtp_parameters["codecs"] == [
        {
            "mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {},
            "rtcpFeedback": [
                {"type": "nack", "parameter": ""}, {"type": "ccm", "parameter": "fir"},
                {"type": "transport-cc", "parameter": ""},
            ],
        },
        {"mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000, "parameters": {"apt": 101},
         "rtcpFeedback": []},
    ]
    assert consumer.rtp_parameters["headerExtensions"] == [
        {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4, "encrypt": False,
         "parameters": {}},
        {"uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 5,
         "encrypt": False, "parameters": {}},
    ]
    [encoding] = consumer.rtp_parameters["encodings"]
    assert isinstance(encoding["ssrc"], int)
    assert isinstance(encoding["rtx"]["ssrc"], int)
    assert consumer.type == "simulcast"
    assert consumer.paused is False
    assert consumer.producer_paused is False
    assert consumer.score == {"score": 10, "producerScore": 0, "producerScores": [0, 0, 0]}
    assert consumer.app_data == {}


async def test_producer_pause_and_resume_are_transmitted_to_pipe_consumer(ctx: Ctx) -> None:
    await ctx.video_producer.pause()
    await ctx.router1.pipe_to_router(producer_id=ctx.video_producer.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(
        producer_id=ctx.video_producer.id, rtp_capabilities=copy.deepcopy(CONSUMER_DEVICE_CAPABILITIES)
    )
    assert ctx.video_producer.paused is True
    assert consumer.producer_paused is True
    assert consumer.paused is False
    await asyncio.gather(once(consumer, "producerresume"), ctx.video_producer.resume())
    assert consumer.producer_paused is False
    assert consumer.paused is False
    await asyncio.gather(once(consumer, "producerpause"), ctx.video_producer.pause())
    assert consumer.producer_paused is True
    assert consumer.paused is False


async def test_producer_close_is_transmitted_to_pipe_consumer(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(producer_id=ctx.video_producer.id, router=ctx.router2)
    consumer = await ctx.transport2.consume(
        producer_id=ctx.video_producer.id, rtp_capabilities=copy.deepcopy(CONSUMER_DEVICE_CAPABILITIES)
    )
    producer_close = asyncio.ensure_future(once(consumer, "producerclose"))
    await asyncio.sleep(0)
    await ctx.video_producer.close()
    assert ctx.video_producer.closed is True
    if not consumer.closed:
        await producer_close
    producer_close.cancel()
    assert consumer.closed is True
    with pytest.raises(NotFoundError):
        await consumer.dump()


async def test_pipe_to_router_with_keep_id_fails_if_both_routers_belong_to_the_same_worker(ctx: Ctx) -> None:
    router1bis = await ctx.worker1.create_router(media_codecs=MEDIA_CODECS)
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error (the producer id exists there)
        await ctx.router1.pipe_to_router(producer_id=ctx.video_producer.id, router=router1bis, keep_id=True)


async def test_pipe_to_router_without_keep_id_succeeds_if_both_routers_belong_to_the_same_worker(ctx: Ctx) -> None:
    """From 3.27.1's test-PipeTransport.js."""
    router1bis = await ctx.worker1.create_router(media_codecs=MEDIA_CODECS)
    result = await ctx.router1.pipe_to_router(producer_id=ctx.video_producer.id, router=router1bis, keep_id=False)
    assert result.pipe_producer.id != ctx.video_producer.id


async def test_pipe_to_router_gives_abs_capture_time_to_the_pipe_consumer_if_the_producer_has_it(ctx: Ctx) -> None:
    """From 3.27.1's test-PipeTransport.js (3.27 forwards abs-capture-time only when it is produced;
    3.14.16 always does, with its own id)."""
    producer = await ctx.transport1.produce(
        kind="video",
        rtp_parameters={
            "mid": "VIDEO2",
            "codecs": [{"mimeType": "video/VP8", "payloadType": 112, "clockRate": 90000}],
            "headerExtensions": [{"uri": ABS_CAPTURE_TIME, "id": 12}],
            "encodings": [{"ssrc": 44444444}],
            "rtcp": {"cname": "FOOBAR"},
        },
    )
    result = await ctx.router1.pipe_to_router(producer_id=producer.id, router=ctx.router2)
    extensions = result.pipe_consumer.rtp_parameters["headerExtensions"]
    assert _ext(ABS_CAPTURE_TIME, 10 if AT_LEAST_3_27 else 13) in extensions


async def test_pipe_to_router_with_unknown_router_producer_or_data_producer_fails(ctx: Ctx) -> None:
    """From 3.27.1's test-PipeTransport.js."""
    router3 = await ctx.worker1.create_router(media_codecs=MEDIA_CODECS)
    await router3.close()
    with pytest.raises(NotFoundError):
        await ctx.router1.pipe_to_router(router=router3, producer_id=ctx.video_producer.id)
    with pytest.raises(NotFoundError):
        await ctx.router1.pipe_to_router(router=ctx.router2, producer_id="12345678")
    with pytest.raises(NotFoundError):
        await ctx.router1.pipe_to_router(router=ctx.router2, data_producer_id="12345678")


@pytest.mark.parametrize("ids", [{}, {"producer_id": "1234", "data_producer_id": "5678"}], ids=["neither", "both"])
async def test_pipe_to_router_needs_exactly_one_of_producer_id_and_data_producer_id(
    ctx: Ctx, ids: dict[str, str]
) -> None:
    """From 3.27.1's test-PipeTransport.js."""
    router1bis = await ctx.worker1.create_router(media_codecs=MEDIA_CODECS)
    with pytest.raises(TypeError):
        await ctx.router1.pipe_to_router(router=router1bis, **ids)


def check_pipe_sctp_stream_parameters(params: dict[str, Any]) -> None:
    assert isinstance(params["streamId"], int)
    assert params["ordered"] is False
    assert params["maxPacketLifeTime"] == 5000
    assert params.get("maxRetransmits") is None


async def test_pipe_to_router_succeeds_with_data(ctx: Ctx) -> None:
    result = await ctx.router1.pipe_to_router(data_producer_id=ctx.data_producer.id, router=ctx.router2)
    pipe_data_consumer, pipe_data_producer = result.pipe_data_consumer, result.pipe_data_producer
    assert len((await ctx.router1.dump())["transportIds"]) == 2
    assert len((await ctx.router2.dump())["transportIds"]) == 2
    assert isinstance(pipe_data_consumer.id, str)
    assert pipe_data_consumer.closed is False
    assert pipe_data_consumer.type == "sctp"
    check_pipe_sctp_stream_parameters(pipe_data_consumer.sctp_stream_parameters)
    assert pipe_data_consumer.label == "foo"
    assert pipe_data_consumer.protocol == "bar"
    assert pipe_data_producer.id == ctx.data_producer.id
    assert pipe_data_producer.closed is False
    assert pipe_data_producer.type == "sctp"
    check_pipe_sctp_stream_parameters(pipe_data_producer.sctp_stream_parameters)
    assert pipe_data_producer.label == "foo"
    assert pipe_data_producer.protocol == "bar"


async def test_transport_consume_data_for_a_pipe_data_producer_succeeds(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(data_producer_id=ctx.data_producer.id, router=ctx.router2)
    data_consumer = await ctx.transport2.consume_data(data_producer_id=ctx.data_producer.id)
    assert isinstance(data_consumer.id, str)
    assert data_consumer.closed is False
    assert data_consumer.type == "sctp"
    check_pipe_sctp_stream_parameters(data_consumer.sctp_stream_parameters)
    assert data_consumer.label == "foo"
    assert data_consumer.protocol == "bar"


async def _collect_until_bye(data_consumer: Any) -> list[str]:
    """The messages a data consumer gets up to and including "bye" (sent last, so all earlier ones are in)."""
    received: list[str] = []
    bye = asyncio.get_running_loop().create_future()

    def on_message(payload: Any, _ppid: int) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        received.append(text)
        if text == "bye" and not bye.done():
            bye.set_result(None)

    data_consumer.on("message", on_message)
    async with asyncio.timeout(5):
        await bye
    return received


@pytest.mark.skipif(
    not AT_LEAST_3_27,
    reason="3.27's subchannel semantics across a pipe: with 3.14.16 the final consumer gets "
    "['hello2', 'hello3', 'bye'] "
    "(its pipe data consumer stops hello1 and the subchannels of hello3 are not checked again)",
)
async def test_transport_consume_data_for_a_pipe_data_producer_succeeds_with_subchannels(ctx: Ctx) -> None:
    """From 3.27.1's test-PipeTransport.js: a pipe data consumer with no subchannels lets everything
    through; with some, the required subchannel must be among them; the final consumer filters again
    and honours ignored_subchannel."""
    direct1 = await ctx.router1.create_direct_transport()
    producer = await direct1.produce_data(label="foo", protocol="bar")
    result = await ctx.router1.pipe_to_router(data_producer_id=producer.id, router=ctx.router2)
    direct2 = await ctx.router2.create_direct_transport()
    consumer = await direct2.consume_data(data_producer_id=producer.id, subchannels=[123, 666, 777])
    collected = asyncio.ensure_future(_collect_until_bye(consumer))
    producer.send("hello1", None, [123, 124], 666)
    await result.pipe_data_consumer.set_subchannels([123, 124, 666])
    producer.send("hello2", None, [123], 666)
    producer.send("hello3", None, [124], 666)  # passes the pipe, not the final consumer
    producer.send("hello4", None, [125], 666)  # stopped by the pipe
    producer.send("hello5", None, [123], None, 666)  # the final consumer ignores 666
    producer.send("hello6", None, None, 123, 777)
    producer.send("bye")
    assert await collected == ["hello1", "hello2", "bye"]


@pytest.mark.skipif(not AT_LEAST_3_27, reason="ignored_subchannel is new in mediasoup 3.27")
async def test_transport_consume_data_for_a_pipe_data_producer_succeeds_with_ignored_subchannel(ctx: Ctx) -> None:
    """From 3.27.1's test-PipeTransport.js: a pipe data consumer does not apply ignored_subchannel
    itself; the final consumers behind it do."""
    direct1 = await ctx.router1.create_direct_transport()
    producer = await direct1.produce_data(label="foo", protocol="bar")
    result = await ctx.router1.pipe_to_router(data_producer_id=producer.id, router=ctx.router2)
    direct2 = await ctx.router2.create_direct_transport()
    consumer1 = await direct2.consume_data(data_producer_id=producer.id, subchannels=[111])
    consumer2 = await direct2.consume_data(data_producer_id=producer.id, subchannels=[222])
    await result.pipe_data_consumer.set_subchannels([111, 222])
    collected = asyncio.gather(_collect_until_bye(consumer1), _collect_until_bye(consumer2))
    await asyncio.sleep(0)  # the collectors subscribe before anything is sent
    producer.send("hello1", None, None, None, 111)
    producer.send("bye")
    assert await collected == [["bye"], ["hello1", "bye"]]


async def test_data_producer_close_is_transmitted_to_pipe_data_consumer(ctx: Ctx) -> None:
    await ctx.router1.pipe_to_router(data_producer_id=ctx.data_producer.id, router=ctx.router2)
    data_consumer = await ctx.transport2.consume_data(data_producer_id=ctx.data_producer.id)
    producer_close = asyncio.ensure_future(once(data_consumer, "dataproducerclose"))
    await asyncio.sleep(0)
    await ctx.data_producer.close()
    assert ctx.data_producer.closed is True
    if not data_consumer.closed:
        await producer_close
    producer_close.cancel()
    assert data_consumer.closed is True
    with pytest.raises(NotFoundError):
        await data_consumer.dump()


async def test_pipe_to_router_called_twice_generates_a_single_pipe_transport_pair(ctx: Ctx) -> None:
    router_a = await ctx.worker1.create_router(media_codecs=MEDIA_CODECS)
    router_b = await ctx.worker2.create_router(media_codecs=MEDIA_CODECS)
    transport_a1 = await router_a.create_webrtc_transport(listen_ips=["127.0.0.1"])
    transport_a2 = await router_a.create_webrtc_transport(listen_ips=["127.0.0.1"])
    producer_a1 = await transport_a1.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    producer_a2 = await transport_a2.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    await asyncio.gather(
        router_a.pipe_to_router(producer_id=producer_a1.id, router=router_b),
        router_a.pipe_to_router(producer_id=producer_a2.id, router=router_b),
    )
    assert len((await router_a.dump())["transportIds"]) == 3
    assert len((await router_b.dump())["transportIds"]) == 1


async def test_pipe_to_router_in_both_directions_generates_a_single_pipe_transport_pair(ctx: Ctx) -> None:
    router_a = await ctx.worker1.create_router(media_codecs=MEDIA_CODECS)
    router_b = await ctx.worker2.create_router(media_codecs=MEDIA_CODECS)
    transport_a = await router_a.create_webrtc_transport(listen_ips=["127.0.0.1"])
    transport_b = await router_b.create_webrtc_transport(listen_ips=["127.0.0.1"])
    producer_a = await transport_a.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    producer_b = await transport_b.produce(**copy.deepcopy(AUDIO_PRODUCER_OPTIONS))
    pipes_a: dict[str, Any] = {}
    pipes_b: dict[str, Any] = {}

    def track(pipes: dict[str, Any]) -> Any:
        def on_new_transport(transport: Any) -> None:
            if not isinstance(transport, PipeTransport):
                return
            pipes[transport.id] = transport
            transport.observer.on("close", lambda: pipes.pop(transport.id, None))

        return on_new_transport

    router_a.observer.on("newtransport", track(pipes_a))
    router_b.observer.on("newtransport", track(pipes_b))
    await asyncio.gather(
        router_a.pipe_to_router(producer_id=producer_a.id, router=router_b),
        router_b.pipe_to_router(producer_id=producer_b.id, router=router_a),
    )
    assert len(pipes_a) == 1
    assert len(pipes_b) == 1
    [pipe_a] = pipes_a.values()
    [pipe_b] = pipes_b.values()
    assert pipe_a.tuple["localPort"] == pipe_b.tuple["remotePort"]
    assert pipe_b.tuple["localPort"] == pipe_a.tuple["remotePort"]
    await router_a.close()
    assert len(pipes_a) == 0
    # The remote end closes through its own (async) request to the other worker.
    await wait_for(lambda: len(pipes_b) == 0)
