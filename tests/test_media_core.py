"""The core object model against the real worker: lifecycle, cascades, errors."""

from __future__ import annotations

import asyncio
import copy
import os
import signal

import psutil
import pytest

import media
from media import fbs, wire
from media.channel import WorkerTypeError
from media.codecs import DEFAULT_MEDIA_CODECS
from media.errors import InvalidStateError, WorkerError
from media.rtp_traffic import OPUS_RTP_PARAMETERS
from tests.conftest import LOOPBACK_UDP


async def test_worker_runs_and_reports_resource_usage(worker: media.Worker) -> None:
    assert psutil.pid_exists(worker.pid)
    usage = await worker.get_resource_usage()
    assert usage["ru_maxrss"] > 0
    dump = await worker.dump()
    assert dump["pid"] == worker.pid


async def test_worker_close_stops_the_process_and_closes_routers() -> None:
    worker = await media.create_worker()
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    events: list[str] = []
    router.on("workerclose", lambda: events.append("workerclose"))
    worker.observer.on("close", lambda: events.append("worker observer close"))
    pid = worker.pid
    await worker.close()
    assert worker.closed and router.closed
    assert events == ["workerclose", "worker observer close"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(InvalidStateError):
        await worker.create_router()


async def test_killed_worker_emits_died_and_closes_everything() -> None:
    worker = await media.create_worker()
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)
    died = asyncio.get_running_loop().create_future()
    worker.on("died", died.set_result)
    closed: list[str] = []
    transport.on("routerclose", lambda: closed.append("transport"))
    router.on("workerclose", lambda: closed.append("router"))
    os.kill(worker.pid, signal.SIGKILL)
    error = await asyncio.wait_for(died, 5)
    assert "died" in str(error)
    assert worker.died and worker.closed and router.closed and transport.closed
    assert sorted(closed) == ["router", "transport"]
    await worker.close()  # idempotent after death


@pytest.mark.parametrize(
    "settings",
    [
        {"log_level": "chatty"},
        {"log_tags": ["nonsense"]},
        {"rtc_min_port": 70000},
        {"rtc_min_port": 5000, "rtc_max_port": 4000},
        {"app_data": "not a dict"},
    ],
)
async def test_invalid_worker_settings_are_refused_before_spawning(settings: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        await media.create_worker(**settings)  # type: ignore[arg-type]


async def test_router_close_cascades_to_transports_producers_and_consumers(router: object) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    producer = await transport.produce(kind="audio", rtp_parameters=OPUS_PARAMETERS)
    consumer = await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)  # type: ignore[attr-defined]
    events: list[str] = []
    transport.on("routerclose", lambda: events.append("transport routerclose"))
    producer.on("transportclose", lambda: events.append("producer transportclose"))
    consumer.on("transportclose", lambda: events.append("consumer transportclose"))
    await router.close()  # type: ignore[attr-defined]
    assert transport.closed and producer.closed and consumer.closed
    assert sorted(events) == ["consumer transportclose", "producer transportclose", "transport routerclose"]


async def test_producer_close_closes_its_consumers_with_producerclose(router: object) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    producer = await transport.produce(kind="audio", rtp_parameters=OPUS_PARAMETERS)
    consumer = await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)  # type: ignore[attr-defined]
    closed = asyncio.get_running_loop().create_future()
    consumer.on("producerclose", lambda: closed.set_result(True))
    await producer.close()
    assert await asyncio.wait_for(closed, 5)
    assert consumer.closed
    assert consumer.id not in transport.consumers
    assert producer.id not in router.producers  # type: ignore[attr-defined]


async def test_each_request_reaches_the_worker_with_its_own_codecs_and_header_extensions(router: object) -> None:
    """`media.wire` shares the tables of equal codecs and header extensions between requests (every
    consumer of one producer through the same capabilities has the same ones). Consumers through other
    capabilities, and a producer whose parameters the application changed in place after an earlier
    produce(), still reach the worker with their own, as its dumps show."""
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    params = copy.deepcopy(OPUS_RTP_PARAMETERS)
    params["codecs"][0]["parameters"] = {"useinbandfec": 1}
    first = await transport.produce(kind="audio", rtp_parameters=params)
    params["codecs"][0]["parameters"]["useinbandfec"] = 0  # the same dict, changed in place
    params["encodings"] = [{"ssrc": 22222222}]
    second = await transport.produce(kind="audio", rtp_parameters=params)
    assert [(await p.dump())["rtpParameters"]["codecs"][0]["parameters"] for p in (first, second)] == [
        {"useinbandfec": 1}, {"useinbandfec": 0}]
    caps = copy.deepcopy(router.rtp_capabilities)  # type: ignore[attr-defined]
    fewer = copy.deepcopy(caps)
    fewer["headerExtensions"] = [ext for ext in caps["headerExtensions"] if "audio-level" not in ext["uri"]]
    consumers = [await transport.consume(producer_id=first.id, rtp_capabilities=c) for c in (caps, fewer, caps)]
    uris = [[ext["uri"] for ext in (await c.dump())["rtpParameters"]["headerExtensions"]] for c in consumers]
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in uris[0]
    assert uris[1] == [uri for uri in uris[0] if "audio-level" not in uri]
    assert uris[2] == uris[0]


def test_rtp_parameters_are_converted_as_they_are_now_whatever_was_converted_before() -> None:
    """`media.wire`'s shared tables of codecs and header extensions: one changed in place since gets
    tables of its own, and a value the same JSON cannot tell apart (a tuple where a list was) is
    refused as before, not given the list's tables."""
    params = copy.deepcopy(OPUS_RTP_PARAMETERS)
    codec_parameters = params["codecs"][0]["parameters"] = {"useinbandfec": 1, "x": [1, 2]}

    def sent() -> dict[str, object]:
        table = fbs.to_plain(wire.rtp_parameters_to_fbs(params))
        return {p["name"]: p["value"]["value"] for p in table["codecs"][0]["parameters"]}

    assert sent() == {"useinbandfec": 1, "x": [1, 2]}
    codec_parameters["useinbandfec"] = 0
    assert sent() == {"useinbandfec": 0, "x": [1, 2]}
    codec_parameters["x"] = (1, 2)
    with pytest.raises(TypeError, match="invalid parameter type"):
        sent()


async def test_transports_made_alike_share_nothing_that_changed_since(router: object) -> None:
    """create_webrtc_transport() keeps the options of arguments it saw (every participant's transports
    are made alike): listen infos changed in place since, and bad ones every time, are still seen."""
    listen_infos = [{"protocol": "udp", "ip": "127.0.0.1"}]
    first = await router.create_webrtc_transport(listen_infos=listen_infos)  # type: ignore[attr-defined]
    listen_infos[0]["announcedAddress"] = "192.0.2.7"  # the same list, changed in place
    second = await router.create_webrtc_transport(listen_infos=listen_infos)  # type: ignore[attr-defined]
    third = await router.create_webrtc_transport(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}])  # type: ignore[attr-defined]
    assert [t.ice_candidates[0]["address"] for t in (first, second, third)] == ["127.0.0.1", "192.0.2.7", "127.0.0.1"]
    for _ in range(2):
        with pytest.raises(TypeError):
            await router.create_webrtc_transport(listen_infos=[{"protocol": "sctp", "ip": "127.0.0.1"}])  # type: ignore[attr-defined]


async def test_pause_and_resume_reach_consumers(router: object) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    producer = await transport.produce(kind="audio", rtp_parameters=OPUS_PARAMETERS)
    consumer = await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)  # type: ignore[attr-defined]
    paused = asyncio.Event()
    resumed = asyncio.Event()
    consumer.on("producerpause", paused.set)
    consumer.on("producerresume", resumed.set)
    await producer.pause()
    await asyncio.wait_for(paused.wait(), 5)
    assert producer.paused and consumer.producer_paused
    await producer.resume()
    await asyncio.wait_for(resumed.wait(), 5)
    assert not consumer.producer_paused


async def test_webrtc_transport_exposes_ice_and_dtls_parameters(router: object) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    assert transport.ice_parameters["iceLite"] is True
    assert transport.ice_candidates[0]["ip"] == "127.0.0.1"
    assert transport.ice_candidates[0]["protocol"] == "udp"
    assert {fp["algorithm"] for fp in transport.dtls_parameters["fingerprints"]} >= {"sha-256"}
    assert (transport.ice_state, transport.dtls_state) == ("new", "new")
    stats = await transport.get_stats()
    assert stats[0]["type"] == "webrtc-transport" and stats[0]["transportId"] == transport.id


async def test_worker_error_names_the_method_and_reason(router: object) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    remote = {"fingerprints": [{"algorithm": "sha-256", "value": "AA:" * 31 + "AA"}], "role": "client"}
    await transport.connect(dtls_parameters=remote)
    with pytest.raises(WorkerError) as raised:
        await transport.connect(dtls_parameters=remote)
    assert raised.value.method == "WEBRTCTRANSPORT_CONNECT"
    assert "already called" in raised.value.reason
    assert "WEBRTCTRANSPORT_CONNECT" in str(raised.value)


async def test_invalid_arguments_raise_typed_errors(router: object) -> None:
    with pytest.raises(TypeError, match="listen_infos"):
        await router.create_webrtc_transport(listen_infos=[])  # type: ignore[attr-defined]
    transport = await router.create_webrtc_transport(listen_infos=LOOPBACK_UDP)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="kind"):
        await transport.produce(kind="text", rtp_parameters=OPUS_PARAMETERS)
    with pytest.raises(TypeError):
        await transport.produce(kind="audio", rtp_parameters={"codecs": "opus"})
    with pytest.raises(KeyError, match="not found"):
        await transport.consume(producer_id="nope", rtp_capabilities=router.rtp_capabilities)  # type: ignore[attr-defined]
    assert not transport.closed  # bad calls leave the transport usable
    producer = await transport.produce(kind="audio", rtp_parameters=OPUS_PARAMETERS)
    assert producer.kind == "audio"


async def test_worker_type_error_is_both_worker_error_and_type_error() -> None:
    assert issubclass(WorkerTypeError, WorkerError) and issubclass(WorkerTypeError, TypeError)


OPUS_PARAMETERS = {
    "mid": "AUDIO",
    "codecs": [
        {
            "mimeType": "audio/opus",
            "payloadType": 111,
            "clockRate": 48000,
            "channels": 2,
            "parameters": {"useinbandfec": 1},
            "rtcpFeedback": [],
        }
    ],
    "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 10}],
    "encodings": [{"ssrc": 11111111}],
    "rtcp": {"cname": "FOOBAR"},
}
