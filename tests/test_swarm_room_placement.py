"""Placement over separate node processes: only media nodes get workers, and ``--workers`` is a hard cap.

Three ``mafalda-swarm node --media --workers 1`` processes and a running
``mafalda-swarm monitor`` process; an application enters through one node and
grows one room until the swarm is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote.client import connect_websocket
from media.rtp_traffic import opus_producer, sink_consumer
from rope import RemoteError
from swarm.local_swarm import LocalSwarm
from swarm.media_node import media_peers

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}


@contextlib.asynccontextmanager
async def monitor_process(swarm: LocalSwarm) -> AsyncIterator[str]:
    """A real ``mafalda-swarm monitor`` member (role "monitor"), as an operator runs it."""
    directory, peer_id = swarm.admit("monitor", ("monitor",))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarm.cli", "monitor", "--dir", str(directory),
        "--swarm-pub", str(swarm.public_key),
        "--bootstrap", str(swarm.write_bootstrap()), "--load-interval", str(swarm.load_interval_s),
        "--interval", "1", "--json",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield peer_id
    finally:
        process.terminate()
        await process.wait()


async def test_a_monitor_never_gets_a_worker_and_workers_is_a_hard_cap(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path) as swarm:
        nodes = [await swarm.start_node(name, workers=1, consumers_per_worker=2, entry=name == "a")
                 for name in ("a", "b", "c")]
        async with monitor_process(swarm) as monitor_id:
            view: Any = swarm.view_of_observer()
            await swarm.until(lambda: monitor_id in view, "the monitor in the view")
            most_workers: dict[str, int] = {}

            async def watch() -> None:
                while True:
                    for peer_id, state in view.peers().items():
                        if state.load is not None:
                            most_workers[peer_id] = max(most_workers.get(peer_id, 0), len(state.load.workers))
                    await asyncio.sleep(0.05)

            watcher = asyncio.get_running_loop().create_task(watch())
            assert nodes[0].entry_url is not None
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(watcher.cancel)
                app = await connect_websocket(nodes[0].entry_url, token=swarm.token)
                stack.push_async_callback(app.close)
                worker = await app.create_worker()
                router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
                producer = await stack.enter_async_context(opus_producer(router))
                # 2 consumers per worker, pipe consumers included: 7 consumers fill the 3 workers and more.
                sinks = []
                for _ in range(7):
                    sink, _consumer = await sink_consumer(router, producer.id)
                    stack.callback(sink.close)
                    sinks.append(sink)
                for sink in sinks:
                    await sink.wait_for_packets(20)
                media_nodes = {n.peer_id for n in nodes}
                await swarm.until(lambda: all(most_workers.get(p) == 1 for p in media_nodes), "a worker on each node")

                # A new room needs a worker of its own: the swarm is full, and the application is told so.
                other = await app.create_worker()
                try:
                    room = await other.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
                    full = await room.create_plain_transport(listen_info=LOOPBACK)
                    raise AssertionError(f"a transport was placed in a full swarm: {full}")
                except RemoteError as error:
                    assert error.remote_type == "CapacityError" and "swarm is full" in str(error)
                # The node lives on: the room still carries media.
                before = [sink.packets for sink in sinks]
                for sink, count in zip(sinks, before, strict=True):
                    await sink.wait_for_packets(count + 10)
            assert monitor_id not in media_peers(view)
            assert most_workers.get(monitor_id, 0) == 0
            assert all(most_workers.get(p, 0) <= 1 for p in most_workers), most_workers
