"""A worker that stops answering (SIGSTOP): callers get a clear error, the worker is reported
"died", and closing it does not wait for a stopped process. Real workers, local and remote."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

import psutil
import pytest

import media
from media.channel import REQUEST_TIMEOUT_S, WorkerTimeout
from media.codecs import DEFAULT_MEDIA_CODECS
from media.worker import STOP_TIMEOUT_S
from swarm.loopback import loopback

WAIT = 10.0
QUICK = 0.5
"""The request timeout these tests give their workers, to keep them short."""


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_stopped_worker_fails_pending_requests_and_dies() -> None:
    worker = await media.create_worker(request_timeout=QUICK)
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        died: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
        worker.on("died", died.set_result)
        closed: list[str] = []
        router.on("workerclose", lambda: closed.append("router"))
        os.kill(worker.pid, signal.SIGSTOP)
        with pytest.raises(WorkerTimeout, match="stalled") as info:
            await asyncio.wait_for(router.dump(), WAIT)  # never forever
        assert isinstance(info.value, TimeoutError) and info.value.method == "ROUTER_DUMP"
        error = await asyncio.wait_for(died, WAIT)
        assert "stalled" in str(error) and worker.died and worker.closed and router.closed and closed == ["router"]
        assert gone(worker.pid)  # killed: nothing asked of it can run later
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGCONT)
        await worker.close()


async def test_a_busy_worker_is_not_stalled() -> None:
    worker = await media.create_worker(request_timeout=2 * QUICK)
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        # Many requests at once: the last answer comes long after its request was sent, but the
        # worker answers all the time, so it is busy, not stalled.
        for _ in range(3):
            await asyncio.gather(*(router.dump() for _ in range(2000)))
        assert not worker.died
    finally:
        await worker.close()


async def test_our_own_process_held_up_does_not_make_the_worker_stalled() -> None:
    worker = await media.create_worker(request_timeout=QUICK)
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        pending = asyncio.ensure_future(router.dump())
        await asyncio.sleep(0)
        time.sleep(4 * QUICK)  # noqa: ASYNC251 - this process frozen (as by SIGSTOP); the worker answers
        assert (await asyncio.wait_for(pending, WAIT))["id"] == router.id
        assert not worker.died
    finally:
        await worker.close()


async def test_closing_a_stopped_worker_does_not_wait_for_the_stop_timeout() -> None:
    worker = await media.create_worker()
    assert REQUEST_TIMEOUT_S < 10.0  # below ROPE's call timeout: remote callers get the clear error
    await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    process = psutil.Process(worker.pid)
    os.kill(worker.pid, signal.SIGSTOP)
    await asyncio.wait_for(worker.close(), STOP_TIMEOUT_S)  # it handled SIGTERM: no SIGKILL after 3 s
    assert gone(process.pid) and worker._process.returncode != -signal.SIGKILL


class _QuickToGiveUp:
    """The `media` module with workers that count as stalled after `QUICK` seconds."""

    version = media.version

    async def create_worker(self, **settings: Any) -> media.Worker:
        return await media.create_worker(request_timeout=QUICK, **settings)


@pytest.mark.parametrize("carrier", ["websocket", "libp2p"])
async def test_a_remote_caller_of_a_stopped_worker_gets_a_clear_error_and_died(carrier: str) -> None:
    async with loopback(_QuickToGiveUp(), carrier) as (server, remote):  # type: ignore[arg-type]
        worker = await remote.create_worker()
        died = asyncio.Event()
        worker.on("died", lambda _error: died.set())
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            with pytest.raises(WorkerTimeout, match="stalled"):  # the server's error, before the 10 s call timeout
                await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            await asyncio.wait_for(died.wait(), WAIT)
            assert worker.died and gone(worker.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGCONT)
        # The router asked for never appears: the process that would have made it is gone.
        assert not [obj for obj in server.rope.objects if obj.type == "Router"]
        assert not remote.client.find("Router")
