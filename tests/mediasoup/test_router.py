"""Port of mediasoup's test-Router.js."""

from __future__ import annotations

from typing import Any

import pytest

import media
from media.errors import NotFoundError, UnsupportedError, WorkerClosedError
from media.rtp_traffic import OPUS_RTP_PARAMETERS
from tests.mediasoup.conftest import Calls

MEDIA_CODECS: list[dict[str, Any]] = [
    {
        "kind": "audio",
        "mimeType": "audio/opus",
        "clockRate": 48000,
        "channels": 2,
        "parameters": {"useinbandfec": 1, "foo": "bar"},
    },
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
    {
        "kind": "video",
        "mimeType": "video/H264",
        "clockRate": 90000,
        "parameters": {"level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d0032"},
        "rtcpFeedback": [],  # Will be ignored.
    },
]


async def test_create_router_succeeds(worker: media.Worker) -> None:
    on_new_router = Calls()
    worker.observer.once("newrouter", on_new_router)
    router = await worker.create_router(media_codecs=MEDIA_CODECS, app_data={"foo": 123})
    assert on_new_router.calls == [(router,)]
    assert isinstance(router.id, str)
    assert not router.closed
    assert isinstance(router.rtp_capabilities["codecs"], list)
    assert len(router.rtp_capabilities["codecs"]) == 5  # 3 codecs + 2 RTX codecs (3.27.1's test)
    assert isinstance(router.rtp_capabilities["headerExtensions"], list)
    assert router.app_data == {"foo": 123}
    router.app_data = {"foo": 222, "bar": "BBB"}
    dump = await worker.dump()
    assert dump["pid"] == worker.pid
    assert dump["webRtcServerIds"] == []
    assert dump["routerIds"] == [router.id]
    assert dump["channelMessageHandlers"]["channelRequestHandlers"] == [router.id]
    assert dump["channelMessageHandlers"]["channelNotificationHandlers"] == []
    router_dump = await router.dump()
    assert router_dump["id"] == router.id
    for key in ("transportIds", "rtpObserverIds"):
        assert router_dump[key] == []
    for key in (
        "mapProducerIdConsumerIds", "mapConsumerIdProducerId", "mapProducerIdObserverIds",
        "mapDataProducerIdDataConsumerIds", "mapDataConsumerIdDataProducerId",
    ):
        assert not router_dump[key]
    assert len(worker.routers) == 1
    await worker.close()
    assert router.closed
    assert len(worker.routers) == 0


@pytest.mark.parametrize("options", [{"media_codecs": {}}, {"app_data": "NOT-AN-OBJECT"}])
async def test_create_router_with_wrong_arguments_raises_type_error(
    backend_worker: Any, options: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        await backend_worker.create_router(**options)


async def test_create_router_with_unsupported_codecs_raises_unsupported_error(backend_worker: Any) -> None:
    """From 3.27.1's test-Router.js."""
    unsupported = [
        {"kind": "audio", "mimeType": "audio/x-aiff", "clockRate": 8000, "channels": 1},
        {"kind": "video", "mimeType": "video/3gpp", "clockRate": 90000},
    ]
    with pytest.raises(UnsupportedError):
        await backend_worker.create_router(media_codecs=unsupported)


async def test_router_update_media_codecs_succeeds(backend_worker: Any) -> None:
    """From 3.27.1's test-Router.js (mediasoup 3.27's Router.updateMediaCodecs()), and what a user then
    notices: a transport created afterwards refuses a producer of a codec the router no longer offers
    (on a remote back-end, the server's router was updated too)."""
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    assert len(router.rtp_capabilities["codecs"]) == 5
    router.update_media_codecs([])
    assert router.rtp_capabilities["codecs"] == []
    assert isinstance(router.rtp_capabilities["headerExtensions"], list)
    transport = await router.create_direct_transport()
    with pytest.raises(UnsupportedError):
        await transport.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    assert router.rtp_capabilities["codecs"] == []  # the server's state, once it has answered
    with pytest.raises(TypeError):
        router.update_media_codecs([{"kind": "chicken"}])
    await router.close()


async def test_create_router_raises_worker_closed_if_worker_closed(backend_worker: Any) -> None:
    await backend_worker.close()
    with pytest.raises(WorkerClosedError):
        await backend_worker.create_router(media_codecs=MEDIA_CODECS)


async def test_router_close_succeeds(backend_worker: Any) -> None:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    on_close = Calls()
    router.observer.once("close", on_close)
    await router.close()
    assert on_close.count == 1
    assert router.closed
    with pytest.raises(NotFoundError):
        await router.dump()


async def test_router_emits_workerclose_if_worker_closed(backend_worker: Any) -> None:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    on_close = Calls()
    router.observer.once("close", on_close)
    events = Calls()
    router.on("workerclose", events)
    await backend_worker.close()
    assert events.count == 1
    assert on_close.count == 1
    assert router.closed
    with pytest.raises(WorkerClosedError):
        await router.dump()
