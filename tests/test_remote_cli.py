"""``mafalda-swarm serve`` and ``proxy`` as real processes: a client reaches a worker through both."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psutil

from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote import connect_websocket

WAIT = 20.0


async def _start(*args: str, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``mafalda-swarm ARGS``; returns it and the first endpoint it prints."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarm.cli", *args, env=env, stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        line = (await process.stdout.readline()).decode().split()
    assert line and line[0] == "websocket", line
    return process, line[1]


async def _stop(process: asyncio.subprocess.Process) -> int:
    process.terminate()
    async with asyncio.timeout(WAIT):
        return await process.wait()


async def test_serve_and_proxy_processes_give_a_client_a_remote_worker(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    env = {**os.environ, "MAFALDA_REMOTE_TOKEN": ""}
    server, server_url = await _start("serve", "--ws", "127.0.0.1:0", "--token-file", str(token_file), env=env)
    proxy = None
    try:
        proxy, proxy_url = await _start(
            "proxy", "--upstream-ws", server_url, "--upstream-token-file", str(token_file),
            "--ws", "127.0.0.1:0", env={**env, "MAFALDA_REMOTE_TOKEN": "front"},
        )
        remote = await connect_websocket(proxy_url, token="front")
        try:
            worker = await remote.create_worker()
            router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            assert (await router.dump())["id"] == router.id
            assert psutil.pid_exists(worker.pid)  # the server's worker, on this machine
        finally:
            await remote.close()
        assert await _stop(proxy) == 0
        proxy = None
    finally:
        if proxy is not None:
            await _stop(proxy)
        assert await _stop(server) == 0
