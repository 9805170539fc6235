"""``mafalda-swarm cluster`` and ``proxy --vertical`` as real processes over real ``serve`` processes:
workers land on the upstream servers' machines (real worker processes, children of each server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil

from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote import connect_websocket
from media.rtp_traffic import OPUS_RTP_PARAMETERS as OPUS
from tests.test_remote_cli import _start, _stop

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}


def _workers_of(process: Any) -> int:
    return sum(1 for child in psutil.Process(process.pid).children() if "mediasoup-worker" in child.name())


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
            worker = await remote.create_worker()
            router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            ingress = await router.create_plain_transport(listen_info=LOOPBACK, comedia=True)
            producer = await ingress.produce(kind="audio", rtp_parameters=OPUS)
            for _ in range(2):  # one consumer per worker: the second needs the other server's worker
                transport = await router.create_plain_transport(listen_info=LOOPBACK)
                await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
            assert [_workers_of(server) for server in servers] == [1, 1]
            await worker.close()


async def test_vertical_proxy_routers_span_the_upstream_servers_workers(tmp_path: Path) -> None:
    async with _servers(tmp_path, 1) as ([server], [url], token_file):
        async with _front(
            "proxy", "--vertical", "--max-workers", "2", "--consumers-per-worker", "1",
            "--upstream-ws", url, "--upstream-token-file", str(token_file),
        ) as remote:
            worker = await remote.create_worker()
            router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            ingress = await router.create_plain_transport(listen_info=LOOPBACK, comedia=True)
            producer = await ingress.produce(kind="audio", rtp_parameters=OPUS)
            for _ in range(2):
                transport = await router.create_plain_transport(listen_info=LOOPBACK)
                await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
            assert _workers_of(server) == 2  # one vertical router over two of the server's workers
            await worker.close()


async def test_cluster_without_an_upstream_is_a_clear_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarm.cli", "cluster", "--ws", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MAFALDA_REMOTE_TOKEN": "front"},
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0 and b"no upstream" in err
