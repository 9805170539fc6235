"""Large state, slow readers and stalled workers: the figures behind ROPE's and the worker's limits.

    .venv/bin/python -m bench.robustness [--transports 5000] [--json]

- snapshot: a Remote Mediasoup server whose real worker holds ``--transports``
  WebRtcTransports (on one WebRtcServer); a new client connects over each
  carrier and opens a session: JSON size of the snapshot, pages it took, and
  the time from `RopeConnection.client()` to CONNECTED (median of 3).
- slow reader: a raw WebSocket client that sends 400 ``rope.open`` requests
  and never reads; the server's outbox bound (bytes) and the process's RSS
  growth until the server drops it.
- stalled worker: a SIGSTOPped worker with the default request timeout; how
  long a request takes to fail with `WorkerTimeout`, until "died", and how
  long `Worker.close()` takes for a stopped worker.
Server and client share one process (and, for libp2p, two trio threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import statistics
import time
from typing import Any

import psutil
from websockets.asyncio.client import connect as ws_connect

import media
from bench.report import emit_json, parser, progress, table
from media.channel import REQUEST_TIMEOUT_S, WorkerTimeout
from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote import MediasoupServer, RemoteMediasoup
from rope import RopeConnection, RopeObject, RopeServer
from rope.channel import DEFAULT_MAX_OUTBOX_BYTES
from rope.libp2p import libp2p_connector, serve_libp2p
from rope.server import PAGE_BYTES, _pages
from rope.websocket import WebSocketListener, websocket_connector
from swarm.bridge import open_host


async def snapshot_figures(transports: int) -> list[dict[str, Any]]:
    rows = []
    async with contextlib.AsyncExitStack() as stack:
        server = MediasoupServer(media, RopeServer())
        stack.push_async_callback(server.close)
        listener = await WebSocketListener(server.rope).start()
        stack.push_async_callback(listener.close)
        hosts = [await stack.enter_async_context(open_host()) for _ in range(2)]
        serve_libp2p(server.rope, hosts[0])
        await hosts[1].connect(hosts[0].listen_addrs[0])
        connectors = {"websocket": lambda: websocket_connector(listener.url),
                      "libp2p": lambda: libp2p_connector(hosts[1], hosts[0].peer_id)}

        async with RopeConnection(connectors["websocket"]()) as first:
            remote = RemoteMediasoup(await first.client())
            remote_router = await (await remote.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            router = server.find_target(remote_router._proxy.id)
            webrtc_server = await router._worker.create_webrtc_server(
                listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}]
            )
            progress(f"creating {transports} WebRtcTransports")
            for start in range(0, transports, 500):
                await asyncio.gather(*(router.create_webrtc_transport(webrtc_server=webrtc_server)
                                       for _ in range(min(500, transports - start))))
            records = [json.dumps(record, separators=(",", ":")) for record in server.rope.snapshot()]
            size = sum(len(text) + 1 for text in records)
            for carrier, connector in connectors.items():
                times = []
                for _ in range(3):
                    async with RopeConnection(connector(), call_timeout=120) as connection:
                        started = time.perf_counter()
                        client = await connection.client()
                        times.append(time.perf_counter() - started)
                        assert len(client.objects) == len(records)
                pages = sum(1 for _ in _pages(server.rope._snapshot_refs(), PAGE_BYTES))
                rows.append({"carrier": carrier, "objects": len(records), "snapshot_bytes": size,
                             "pages": pages, "open_s": statistics.median(times)})
                progress(f"{carrier}: {rows[-1]}")
    return rows


async def slow_reader_figures() -> dict[str, Any]:
    server = MediasoupServer(media, RopeServer())
    for n in range(100):  # ~400 kB of state
        server.rope.register(RopeObject("Blob", id=f"blob-{n}", state={"data": "x" * 4000}))
    listener = await WebSocketListener(server.rope).start()
    try:
        gc.collect()
        rss = psutil.Process().memory_info().rss
        peak = rss
        ws = await ws_connect(listener.url, proxy=None, compression=None, max_size=None)
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rope.hello", "params": {"version": 1}}))
        await ws.recv()
        started = time.perf_counter()
        sent = 0
        for n in range(1, 401):
            try:
                await asyncio.wait_for(ws.send(json.dumps(
                    {"jsonrpc": "2.0", "id": n, "method": "rope.open", "params": {"session": f"s{n % 50}"}})), 10)
            except Exception:
                break
            sent = n
            peak = max(peak, psutil.Process().memory_info().rss)
        while server.rope.connection_count:
            await asyncio.sleep(0.01)
            peak = max(peak, psutil.Process().memory_info().rss)
        dropped_s = time.perf_counter() - started
        with contextlib.suppress(Exception):
            while True:
                await ws.recv()
        return {"outbox_bound_bytes": DEFAULT_MAX_OUTBOX_BYTES, "requests_sent": sent, "dropped_after_s": dropped_s,
                "rss_growth_mb": (peak - rss) / 1e6, "close_code": ws.close_code, "close_reason": ws.close_reason}
    finally:
        await listener.close()
        await server.close()


async def stall_figures() -> dict[str, Any]:
    worker = await media.create_worker()
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    died = asyncio.get_running_loop().create_future()
    worker.on("died", died.set_result)
    os.kill(worker.pid, signal.SIGSTOP)
    started = time.perf_counter()
    try:
        await router.dump()
    except WorkerTimeout:
        failed_s = time.perf_counter() - started
    await died
    died_s = time.perf_counter() - started
    await worker.close()
    closes = []
    for _ in range(3):
        stopped = await media.create_worker()
        os.kill(stopped.pid, signal.SIGSTOP)
        started = time.perf_counter()
        await stopped.close()
        closes.append(time.perf_counter() - started)
    return {"request_timeout_s": REQUEST_TIMEOUT_S, "request_failed_s": failed_s, "died_s": died_s,
            "close_stopped_s": statistics.median(closes)}


def run() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--transports", type=int, default=5000)
    args = p.parse_args()

    async def all_figures() -> dict[str, Any]:
        return {"snapshot": await snapshot_figures(args.transports), "slow_reader": await slow_reader_figures(),
                "stall": await stall_figures()}

    figures = asyncio.run(all_figures())
    table(["carrier", "objects", "snapshot bytes", "pages", "open s"],
          [[r["carrier"], r["objects"], r["snapshot_bytes"], r["pages"], r["open_s"]] for r in figures["snapshot"]],
          "New client on a server with many WebRtcTransports (median of 3 opens)")
    slow = figures["slow_reader"]
    table(["outbox bound bytes", "requests sent", "dropped after s", "RSS growth MB", "close"],
          [[slow["outbox_bound_bytes"], slow["requests_sent"], slow["dropped_after_s"], slow["rss_growth_mb"],
            f"{slow['close_code']} {slow['close_reason']}"]], "A client that sends rope.open and never reads")
    stall = figures["stall"]
    table(["request timeout s", "request failed after s", "died after s", "close of a stopped worker s"],
          [[stall["request_timeout_s"], stall["request_failed_s"], stall["died_s"], stall["close_stopped_s"]]],
          "A SIGSTOPped worker")
    emit_json(args.json, figures)


if __name__ == "__main__":
    run()
