"""ROPE call round trip over libp2p and over WebSocket, loopback, in the same run.

    .venv/bin/python -m bench.rope_latency [--seconds 2] [--concurrency 1 32] [--json]

One server process-side object with an ``echo`` method; a client calls it with
a ~100-byte argument, sequentially (1 caller) and with N concurrent callers
sharing one connection (multiplexed on one WebSocket / one libp2p stream).
Each phase runs for ``--seconds`` after a warm-up. Latency is per call
(request queued -> answer applied); calls/s is completed calls over the
phase's wall time. Server and client share one process and one event loop
(and, for libp2p, two trio threads), so on this 2-core machine the figures
include all of that CPU; the libp2p/websocket ratio is what to compare.

In the same run, the library's own floor: a bare echo of a message of the
same size on one py-libp2p stream between two hosts built as `swarm.bridge`
builds them (TCP, Noise, yamux, with `swarm.libp2p_fixes`), all in one trio loop (no asyncio, no ROPE),
one caller; so the note shows ROPE's distance both to WebSocket and to what
py-libp2p itself costs.

Then both carriers again with the server in a process of its own (``--serve``,
started by the bench), as between two nodes: each process has one asyncio loop
and, for libp2p, one trio thread, instead of three threads sharing one GIL.

With ``--shared-cpu`` each process keeps its threads on one CPU, as a node does with
``MAFALDA_SHARED_CPU=1`` (`media.cpus.shared_cpu`); by default they are where the kernel puts them.
Each process collects garbage as a node does (`swarm.gc_policy`), unless ``--default-gc``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr

from bench.report import add_gc_option, collect_like_a_node, emit_json, parser, progress, table, thread_placement
from media.cpus import release, shared_cpu
from rope import RemoteObject, RopeConnection, RopeObject, RopeServer
from rope.libp2p import libp2p_connector, serve_libp2p
from rope.websocket import WebSocketListener, websocket_connector
from swarm.bridge import new_libp2p_host, open_host
from swarm.libp2p_fixes import apply_fixes

PAYLOAD = {"kind": "ping", "text": "x" * 64, "n": 1}


def bench_server() -> RopeServer:
    server = RopeServer()

    async def echo(value: Any) -> Any:
        return value

    server.register(RopeObject("Bench", id="bench", methods={"echo": echo}))
    return server


@asynccontextmanager
async def carrier(name: str, server: RopeServer) -> AsyncIterator[Callable[[], Any]]:
    """Serve ``server`` over ``name``; yields a connector for clients."""
    async with AsyncExitStack() as stack:
        if name == "websocket":
            listener = await stack.enter_async_context(WebSocketListener(server))
            yield websocket_connector(listener.url)
        else:
            server_host = await stack.enter_async_context(open_host())
            client_host = await stack.enter_async_context(open_host())
            serve_libp2p(server, server_host)
            await client_host.connect(server_host.listen_addrs[0])
            yield libp2p_connector(client_host, server_host.peer_id)
        await server.close()


async def phase(proxy: RemoteObject, callers: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await proxy.echo(PAYLOAD)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(callers):
            group.create_task(caller())
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "calls_per_s": len(latencies) / elapsed,
    }


async def measure(name: str, concurrency: list[int], seconds: float) -> dict[int, dict[str, float]]:
    async with carrier(name, bench_server()) as connector:
        return await measure_through(connector, name, concurrency, seconds)


async def measure_through(connector: Callable[[], Any], name: str, concurrency: list[int],
                          seconds: float) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    connect_started = time.perf_counter()
    async with RopeConnection(connector, call_timeout=30, ping_interval=None) as connection:
        client = await connection.client()
        progress(f"{name}: connected and synchronised in {1000 * (time.perf_counter() - connect_started):.0f} ms")
        proxy = client.get("bench")
        await phase(proxy, 4, min(0.5, seconds))  # warm-up
        for callers in concurrency:
            results[callers] = await phase(proxy, callers, seconds)
            progress(f"{name}: {callers} caller(s): {results[callers]['calls']} calls")
    return results


async def serve(shared: bool, default_gc: bool) -> None:
    """``--serve``: the bench server over both carriers; prints where, one JSON line; ends at stdin's EOF."""
    server = bench_server()
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(shared_cpu(shared))
        listener = await stack.enter_async_context(WebSocketListener(server))
        host = await stack.enter_async_context(open_host())
        serve_libp2p(server, host)
        collect_like_a_node(default_gc)  # once up, as a node and `mafalda-swarm serve` do
        print(json.dumps({"websocket": listener.url, "libp2p": host.listen_addrs[0], "peer": host.peer_id}),
              flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.close()


async def measure_server_process(concurrency: list[int], seconds: float, shared: bool,
                                 default_gc: bool) -> dict[str, dict[int, dict[str, float]]]:
    """Both carriers, with the server in a process of its own."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.rope_latency", "--serve",
                                                 *(["--shared-cpu"] if shared else []),
                                                 *(["--default-gc"] if default_gc else []),
                                                 stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    release(child.pid)
    assert child.stdin is not None and child.stdout is not None
    try:
        where = json.loads(await asyncio.wait_for(child.stdout.readline(), 30))
        async with open_host() as host:
            await host.connect(where["libp2p"])
            connectors = {"websocket": websocket_connector(where["websocket"]),
                          "libp2p": libp2p_connector(host, where["peer"])}
            return {name: await measure_through(connector, f"{name} (server process)", concurrency, seconds)
                    for name, connector in connectors.items()}
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 10)
        except TimeoutError:
            child.kill()
            await child.wait()


def bare_libp2p_echo(seconds: float) -> dict[str, float]:
    """One caller echoing ROPE's request size on one py-libp2p stream, all in trio."""
    size = len(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call", "params": ["bench", "echo", [PAYLOAD]]}))

    async def run() -> dict[str, float]:
        listen = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
        server, client = new_libp2p_host(create_new_key_pair(), listen), new_libp2p_host(create_new_key_pair(), listen)
        for host in (server, client):
            apply_fixes(host, None)
        async with server.run([listen]), client.run([listen]):

            async def echo(stream: Any) -> None:
                while data := await stream.read(65536):
                    await stream.write(data)

            server.set_stream_handler(TProtocol("/bench/echo/1"), echo)
            address = str(server.get_addrs()[0])
            if "/p2p/" not in address:
                address += f"/p2p/{server.get_id()}"
            await client.connect(info_from_p2p_addr(multiaddr.Multiaddr(address)))
            stream = await client.new_stream(server.get_id(), [TProtocol("/bench/echo/1")])
            message = b"x" * size

            async def phase(duration: float) -> list[float]:
                latencies = []
                deadline = time.perf_counter() + duration
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    await stream.write(message)
                    got = 0
                    while got < size:
                        got += len(await stream.read(65536))
                    latencies.append(time.perf_counter() - start)
                return latencies

            await phase(min(0.5, seconds))  # warm-up
            started = time.perf_counter()
            latencies = sorted(await phase(seconds))
            elapsed = time.perf_counter() - started
            await stream.close()
        return {
            "calls": len(latencies),
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "calls_per_s": len(latencies) / elapsed,
        }

    return trio.run(run)


def _ratios(figures: dict[str, dict[int, dict[str, float]]], concurrency: list[int]) -> dict[str, dict[str, float]]:
    ratios = {}
    for callers in concurrency:
        ws, p2p = figures["websocket"][callers], figures["libp2p"][callers]
        ratios[str(callers)] = {
            "p50": p2p["p50_ms"] / ws["p50_ms"],
            "p99": p2p["p99_ms"] / ws["p99_ms"],
            "calls_per_s": p2p["calls_per_s"] / ws["calls_per_s"],
        }
    return ratios


def _ratio_table(ratios: dict[str, dict[str, float]], concurrency: list[int], title: str) -> None:
    table(["callers", "p50 x", "p99 x", "calls/s x"], [[c, *ratios[str(c)].values()] for c in concurrency], title=title)


def _carrier_rows(figures: dict[str, dict[int, dict[str, float]]], concurrency: list[int]) -> list[list[Any]]:
    return [[name, callers, int(r["calls"]), r["p50_ms"], r["p99_ms"], r["calls_per_s"]]
            for callers in concurrency for name in ("websocket", "libp2p") for r in (figures[name][callers],)]


async def main_async(seconds: float, concurrency: list[int], json_output: bool, bare: dict[str, float],
                     shared: bool, default_gc: bool, collection: str) -> None:
    async with shared_cpu(shared) as cpu:
        figures = {name: await measure(name, concurrency, seconds) for name in ("websocket", "libp2p")}
        apart = await measure_server_process(concurrency, seconds, shared, default_gc)
    rows = _carrier_rows(figures, concurrency)
    rows.append(["bare py-libp2p echo (trio, no ROPE)", 1, int(bare["calls"]), bare["p50_ms"], bare["p99_ms"],
                 bare["calls_per_s"]])
    headers = ["carrier", "callers", "calls", "p50 ms", "p99 ms", "calls/s"]
    table(headers, rows,
          title=f"ROPE echo call round trip, loopback, {seconds:g} s per phase, one process, "
                f"{thread_placement(cpu)}, {collection}")
    ratios, ratios_apart = _ratios(figures, concurrency), _ratios(apart, concurrency)
    _ratio_table(ratios, concurrency, "libp2p / websocket, one process")
    if 1 in figures["libp2p"]:
        floor = figures["libp2p"][1]["p50_ms"] / bare["p50_ms"]
        print(f"ROPE over libp2p / bare py-libp2p echo, p50 with 1 caller: {floor:.2f}x")
    table(headers, _carrier_rows(apart, concurrency), title="the same, server in another process")
    _ratio_table(ratios_apart, concurrency, "libp2p / websocket, server in another process")
    emit_json(json_output, {
        "bench": "rope_latency",
        "seconds_per_phase": seconds,
        "threads_share_one_cpu": cpu is not None,
        "default_gc": default_gc,
        "results": {name: {str(k): v for k, v in per.items()} for name, per in figures.items()},
        "libp2p_over_websocket": ratios,
        "bare_libp2p_echo": bare,
        "server_in_another_process": {
            "results": {name: {str(k): v for k, v in per.items()} for name, per in apart.items()},
            "libp2p_over_websocket": ratios_apart,
        },
    })


def main() -> None:
    args_parser = parser(__doc__.splitlines()[0] if __doc__ else "rope latency")
    args_parser.add_argument("--seconds", type=float, default=2.0, help="duration of each phase")
    args_parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args_parser.add_argument("--shared-cpu", action="store_true",
                             help="keep each process's threads on one CPU (MAFALDA_SHARED_CPU=1 for a node)")
    add_gc_option(args_parser)
    args_parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server process
    args = args_parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.shared_cpu, args.default_gc))
        return
    collection = collect_like_a_node(args.default_gc)
    progress("bare py-libp2p echo (trio only) ...")
    bare = bare_libp2p_echo(args.seconds)
    asyncio.run(main_async(args.seconds, args.concurrency, args.json, bare, args.shared_cpu, args.default_gc,
                           collection))


if __name__ == "__main__":
    main()
