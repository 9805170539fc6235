"""Port of mediasoup's test-AudioLevelObserver.js."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from media.errors import NotFoundError, WorkerClosedError
from tests.mediasoup.conftest import Calls, once

MEDIA_CODECS: list[dict[str, Any]] = [
    {
        "kind": "audio",
        "mimeType": "audio/opus",
        "clockRate": 48000,
        "channels": 2,
        "parameters": {"useinbandfec": 1, "foo": "bar"},
    }
]



@pytest.fixture
async def router(backend_worker: Any) -> Any:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    yield router
    await router.close()


async def test_create_succeeds(router: Any) -> None:
    on_new = Calls()
    router.observer.once("newrtpobserver", on_new)
    rtp_observer = await router.create_audio_level_observer()
    assert on_new.calls == [(rtp_observer,)]
    assert isinstance(rtp_observer.id, str)
    assert not rtp_observer.closed
    assert rtp_observer.paused is False
    assert rtp_observer.app_data == {}
    assert (await router.dump())["rtpObserverIds"] == [rtp_observer.id]


@pytest.mark.parametrize(
    "options",
    [{"max_entries": 0}, {"max_entries": -10}, {"threshold": "foo"}, {"interval": False},
     {"app_data": "NOT-AN-OBJECT"}],
)
async def test_create_with_wrong_arguments_raises_type_error(router: Any, options: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        await router.create_audio_level_observer(**options)


async def test_pause_and_resume_succeed(router: Any) -> None:
    rtp_observer = await router.create_audio_level_observer()
    await rtp_observer.pause()
    assert rtp_observer.paused is True
    await rtp_observer.resume()
    assert rtp_observer.paused is False


async def test_close_succeeds(router: Any) -> None:
    # (Upstream creates an AudioLevelObserver with maxEntries 8 in both files.)
    rtp_observer = await router.create_audio_level_observer(max_entries=8)
    assert len((await router.dump())["rtpObserverIds"]) == 1
    await rtp_observer.close()
    assert rtp_observer.closed
    assert len((await router.dump())["rtpObserverIds"]) == 0
    with pytest.raises(NotFoundError):
        await rtp_observer.pause()


async def test_emits_routerclose_if_router_closed(router: Any) -> None:
    rtp_observer = await router.create_audio_level_observer()
    router_close = asyncio.ensure_future(once(rtp_observer, "routerclose"))
    await asyncio.sleep(0)
    await router.close()
    await router_close
    assert rtp_observer.closed
    with pytest.raises(NotFoundError):
        await rtp_observer.pause()


async def test_emits_routerclose_if_worker_closed(router: Any, backend_worker: Any) -> None:
    rtp_observer = await router.create_audio_level_observer()
    router_close = asyncio.ensure_future(once(rtp_observer, "routerclose"))
    await asyncio.sleep(0)
    await backend_worker.close()
    await router_close
    assert rtp_observer.closed
    with pytest.raises(WorkerClosedError):
        await rtp_observer.pause()
