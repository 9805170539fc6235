"""``mafalda-swarm cluster`` and ``proxy --vertical`` as real processes over real ``serve`` processes:
workers land on the upstream servers' machines (real worker processes, children of each server).
Through ``serve --vertical``, ``proxy --vertical`` and ``cluster --vertical`` a client also reads the
vertical layer's own API: its capacity, the real routers and workers a router spans, its pipe events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote import connect_websocket
from media.rtp_traffic import OPUS_RTP_PARAMETERS as OPUS
from media.vertical import Capacity
from tests.test_remote_cli import _start, _stop

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}


def _worker_pids(process: Any) -> set[int]:
    return {child.pid for child in psutil.Process(process.pid).children() if "mediasoup-worker" in child.name()}


def _workers_of(process: Any) -> int:
    return len(_worker_pids(process))


async def _spread_over_two_workers(worker: Any) -> Any:
    """A router, a producer and two consumers on a worker of one consumer per real worker: the second
    consumer is on another real worker, fed by a pipe. Returns the router, after checking what the
    client reads of the vertical layer (real routers, pipe count and "newpipe")."""
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    pipes: list[tuple[str, str]] = []
    router.observer.on("newpipe", lambda producer_id, real: pipes.append((producer_id, real.id)))
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS)
    for _ in range(2):
        transport = await router.create_plain_transport(listen_info=LOOPBACK)
        await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
    home = router.home_router(producer.id)
    far = [real for real in router.real_routers if real.id != home.id]
    assert len(far) == 1 and router.pipe_count == 1 and pipes == [(producer.id, far[0].id)]
    assert {real.pid for real in worker.real_workers} == {real.worker.pid for real in router.real_routers}
    return router


@contextlib.asynccontextmanager
async def _servers(tmp_path: Path, count: int) -> AsyncIterator[tuple[list[Any], list[str], Path]]:
    token_file = tmp_path / "upstream.token"
    token_file.write_text("upstream-secret\n")
    env = {**os.environ, "MAFALDA_REMOTE_TOKEN": ""}
    started = [await _start("serve", "--ws", "127.0.0.1:0", "--token-file", str(token_file), env=env)
               for _ in range(count)]
    try:
        yield [process for process, _ in started], [url for _, url in started], token_file
    finally:
        for process, _ in started:
            assert await _stop(process) == 0


@contextlib.asynccontextmanager
async def _front(*args: str) -> AsyncIterator[Any]:
    """Start ``mafalda-swarm ARGS --ws 127.0.0.1:0`` (token "front") and yield a client of it."""
    process, url = await _start(*args, "--ws", "127.0.0.1:0", env={**os.environ, "MAFALDA_REMOTE_TOKEN": "front"})
    try:
        remote = await connect_websocket(url, token="front")
        try:
            yield remote
        finally:
            await remote.close()
    finally:
        assert await _stop(process) == 0


async def test_cluster_places_workers_on_every_upstream_server(tmp_path: Path) -> None:
    async with _servers(tmp_path, 2) as (servers, urls, token_file):
        upstreams = [arg for url in urls for arg in ("--upstream-ws", url)]
        async with _front("cluster", *upstreams, "--upstream-token-file", str(token_file)) as remote:
            workers = [await remote.create_worker() for _ in range(2)]
            assert [_workers_of(server) for server in servers] == [1, 1]  # least-workers: one each
            router = await workers[1].create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            assert (await router.dump())["id"] == router.id
            for worker in workers:
                await worker.close()


async def test_vertical_cluster_router_spans_both_servers(tmp_path: Path) -> None:
    async with _servers(tmp_path, 2) as (servers, urls, token_file):
        upstreams = [arg for url in urls for arg in ("--upstream-ws", url)]
        async with _front(
            "cluster", "--vertical", "--max-workers", "2", "--consumers-per-worker", "1",
            *upstreams, "--upstream-token-file", str(token_file),
        ) as remote:
            assert remote.capacity == Capacity(max_workers=2, max_consumers_per_worker=1)
            worker = await remote.create_worker()
            router = await _spread_over_two_workers(worker)  # the second consumer needs the other server's worker
            assert [_workers_of(server) for server in servers] == [1, 1]
            on_servers = _worker_pids(servers[0]) | _worker_pids(servers[1])
            assert {real.worker.pid for real in router.real_routers} == on_servers
            await worker.close()


async def test_vertical_proxy_routers_span_the_upstream_servers_workers(tmp_path: Path) -> None:
    async with _servers(tmp_path, 1) as ([server], [url], token_file):
        async with _front(
            "proxy", "--vertical", "--max-workers", "2", "--consumers-per-worker", "1",
            "--upstream-ws", url, "--upstream-token-file", str(token_file),
        ) as remote:
            assert remote.capacity == Capacity(max_workers=2, max_consumers_per_worker=1)
            worker = await remote.create_worker()
            router = await _spread_over_two_workers(worker)
            assert _workers_of(server) == 2  # one vertical router over two of the server's workers
            assert {real.worker.pid for real in router.real_routers} == _worker_pids(server)
            await worker.close()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="serve --vertical runs one worker per CPU: needs two")
async def test_a_vertical_server_gives_each_worker_the_capacity_its_client_asks(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    process, url = await _start("serve", "--vertical", "--ws", "127.0.0.1:0", "--token-file", str(token_file),
                                env={**os.environ, "MAFALDA_REMOTE_TOKEN": ""})
    try:
        remote = await connect_websocket(url, token="s3cret")
        try:
            assert remote.capacity == Capacity()  # the server's defaults: one worker per CPU (this machine's)
            tighter = Capacity(max_workers=2, max_consumers_per_worker=1)
            worker = await remote.create_worker(capacity=tighter)
            assert worker.capacity == tighter
            router = await _spread_over_two_workers(worker)
            assert {real.worker.pid for real in router.real_routers} == _worker_pids(process)
            await worker.close()
        finally:
            await remote.close()
    finally:
        assert await _stop(process) == 0


async def test_cluster_without_an_upstream_is_a_clear_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarm.cli", "cluster", "--ws", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MAFALDA_REMOTE_TOKEN": "front"},
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0 and b"no upstream" in err
