"""Port of mediasoup's test-Worker.js."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import media
from media.channel import WorkerNotFoundError
from media.errors import InvalidStateError, NotFoundError, WorkerClosedError
from tests.conftest import backend_mediasoup
from tests.mediasoup.conftest import AT_LEAST_3_27, DATA, Calls, once, pid_gone, wait_for


@pytest.mark.skip(reason="Node-specific: mediasoup.workerBin is the npm package's binary path; "
                  "here media.worker_install.worker_bin() is covered by the worker tests themselves")
def test_worker_bin() -> None: ...


async def test_create_worker_succeeds() -> None:
    on_new_worker = Calls()
    media.observer.once("newworker", on_new_worker)
    worker1 = await media.create_worker()
    assert on_new_worker.calls == [(worker1,)]
    assert isinstance(worker1, media.Worker)
    assert isinstance(worker1.pid, int)
    assert not worker1.closed and not worker1.died and not worker1.subprocess_closed
    subprocess_closed = asyncio.ensure_future(once(worker1, "subprocessclose"))
    await worker1.close()
    await subprocess_closed
    assert worker1.closed and not worker1.died and worker1.subprocess_closed

    worker2 = await media.create_worker(
        log_level="debug",
        log_tags=["info"],
        rtc_min_port=0,
        rtc_max_port=9999,
        dtls_certificate_file=str(DATA / "dtls-cert.pem"),
        dtls_private_key_file=str(DATA / "dtls-key.pem"),
        libwebrtc_field_trials="WebRTC-Bwe-AlrLimitedBackoff/Disabled/",
        app_data={"foo": 456},
    )
    assert isinstance(worker2.pid, int)
    assert not worker2.closed and not worker2.died and not worker2.subprocess_closed
    assert worker2.app_data == {"foo": 456}
    await worker2.close()
    assert worker2.closed and not worker2.died and worker2.subprocess_closed


@pytest.mark.parametrize(
    "settings",
    [
        {"log_level": "chicken"},
        {"rtc_min_port": 1000, "rtc_max_port": 999},
        {"rtc_min_port": 1000, "rtc_max_port": 65536},
        {"dtls_certificate_file": "/notfound/cert.pem"},
        {"dtls_private_key_file": "/notfound/priv.pem"},
        {"app_data": "NOT-AN-OBJECT"},
    ],
)
async def test_create_worker_with_wrong_settings_raises_type_error(settings: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        await media.create_worker(**settings)  # type: ignore[arg-type]


async def test_update_settings_succeeds(worker: media.Worker) -> None:
    assert await worker.update_settings(log_level="debug", log_tags=["ice"]) is None


async def test_update_settings_with_wrong_settings_raises_type_error(worker: media.Worker) -> None:
    with pytest.raises(TypeError):
        await worker.update_settings(log_level="chicken")


async def test_update_settings_raises_worker_closed_if_closed(worker: media.Worker) -> None:
    await worker.close()
    with pytest.raises(WorkerClosedError):
        await worker.update_settings(log_level="error")


async def test_dump_succeeds(worker: media.Worker) -> None:
    dump = await worker.dump()
    assert dump["pid"] == worker.pid
    assert dump["webRtcServerIds"] == []
    assert dump["routerIds"] == []
    assert dump["channelMessageHandlers"]["channelRequestHandlers"] == []
    assert dump["channelMessageHandlers"]["channelNotificationHandlers"] == []


async def test_dump_raises_worker_closed_if_closed(worker: media.Worker) -> None:
    await worker.close()
    with pytest.raises(WorkerClosedError):  # still an InvalidStateError, as before 3.27 named it
        await worker.dump()
    with pytest.raises(InvalidStateError):
        await worker.dump()


@pytest.mark.skipif(not AT_LEAST_3_27, reason="3.14.16's worker answers an unknown handler id with a plain error")
async def test_request_to_an_unknown_object_raises_not_found_error(worker: media.Worker) -> None:
    """3.27.1's Channel.js: the worker's "NotFoundError" answer rejects with NotFoundError (here a
    `WorkerNotFoundError`, also a `WorkerError` naming the method)."""
    with pytest.raises(NotFoundError) as raised:
        await worker.channel.request("ROUTER_DUMP", handler_id="no-such-router")
    assert isinstance(raised.value, WorkerNotFoundError)
    assert raised.value.method == "ROUTER_DUMP" and "not found" in raised.value.reason
    assert (await worker.dump())["pid"] == worker.pid  # the worker goes on


async def test_get_resource_usage_succeeds(worker: media.Worker) -> None:
    usage = await worker.get_resource_usage()
    assert isinstance(usage, dict)
    assert all(isinstance(value, int) for value in usage.values())


async def test_close_succeeds() -> None:
    worker = await media.create_worker(log_level="warn")
    on_close = Calls()
    worker.observer.once("close", on_close)
    await worker.close()
    assert on_close.count == 1
    assert worker.closed and not worker.died and worker.subprocess_closed


@pytest.mark.parametrize("backend", ["remote-ws", "remote-libp2p"])
async def test_remote_worker_mirrors_subprocess_closed(backend: str) -> None:
    """A Remote Mediasoup client's worker: "subprocessclose" and `subprocess_closed` as the server's."""
    async with backend_mediasoup(backend) as mediasoup:
        worker = await mediasoup.create_worker()
        assert not worker.subprocess_closed
        on_subprocess_close = Calls()
        worker.on("subprocessclose", on_subprocess_close)
        await worker.close()
        await wait_for(lambda: on_subprocess_close.count == 1)
        assert worker.closed and worker.subprocess_closed and not worker.died


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
async def test_worker_emits_died_if_the_process_died_unexpectedly(signum: int) -> None:
    worker = await media.create_worker(log_level="warn")
    on_observer_close = Calls()
    worker.observer.once("close", on_observer_close)
    seen_at_died: list[tuple[int, bool]] = []
    worker.on("died", lambda _error: seen_at_died.append((on_observer_close.count, worker.closed)))
    order: list[str] = []
    worker.on("died", lambda _error: order.append("died"))
    worker.on("subprocessclose", lambda: order.append("subprocessclose"))
    subprocess_closed = asyncio.ensure_future(once(worker, "subprocessclose"))
    os.kill(worker.pid, signum)
    await subprocess_closed
    await wait_for(lambda: on_observer_close.count > 0)
    # "died" comes first, with the worker already closed; "subprocessclose", observer "close" after it.
    assert seen_at_died == [(0, True)]
    assert order == ["died", "subprocessclose"]
    assert on_observer_close.count == 1
    assert worker.closed and worker.died and worker.subprocess_closed


async def test_worker_ignores_pipe_hup_alrm_usr1_usr2(worker: media.Worker) -> None:
    on_died = Calls()
    worker.on("died", on_died)
    for signum in (signal.SIGPIPE, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2):
        os.kill(worker.pid, signum)
    # Still answering requests after every signal was delivered, and nothing died.
    await asyncio.sleep(0.5)
    assert (await worker.dump())["pid"] == worker.pid
    assert not worker.closed and on_died.count == 0
    pid = worker.pid
    await worker.close()
    assert pid_gone(pid)
