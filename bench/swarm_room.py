"""Rooms across node processes: cross-node consume latency, pipes vs consumers, recovery after SIGKILL.

    python -m bench.swarm_room [--json]

Real ``mafalda-swarm node --media --entry-port`` processes on 127.0.0.1
(`swarm.local_swarm`), applications over WebSocket, opus RTP at 50
packets/s into PlainTransport sinks. Four figures:

1. consume() -> first RTP packet at the sink, for a consumer entering through
   another node than its producer (the pipe across peers is made on demand:
   the first consumer of a producer on a worker pays for it, later ones share it);
2. pipes vs consumers: 3 nodes, one producer entering through each, 20
   consumers through each entry spread over the 3 producers: pipe consumers
   created (ours: on demand, one per foreign producer per worker) against
   EduMeet's producers x (workers - 1);
3. SIGKILL of a node hosting consumers of a room -> media again for those
   consumers (closed with "transportclose", re-consumed by the application on
   the workers that remain);
4. SIGKILL of the room's creating entry -> the last object it made on the
   survivors closed (their worker processes exit), with the grace period used.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import emit_json, parser, progress, table
from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote.client import RemoteMediasoup, connect_websocket
from media.rtp_traffic import RtpSink, opus_producer, sink_consumer
from swarm.local_swarm import LocalSwarm, NodeProcess, alive, worker_pids
from swarm.media_node import member_session


async def _consume(router: Any, producer_id: str) -> tuple[RtpSink, Any, float]:
    """A sink consumer; returns it and the seconds from consume() to its first packet."""
    started = time.perf_counter()
    sink, consumer = await sink_consumer(router, producer_id)
    await sink.wait_for_packets(1, within=30)
    return sink, consumer, time.perf_counter() - started


async def _room(app: RemoteMediasoup, name: str) -> Any:
    worker = await app.create_worker()
    return await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS, app_data={"room": name})


async def _leave(app: RemoteMediasoup) -> None:
    """Close what the application made, at once (not after the grace), then its connection."""
    for worker in app.workers:
        with contextlib.suppress(Exception):
            await worker.close()
    await app.close()


async def _until(predicate: Any, within: float = 60.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _count_pipes(swarm: LocalSwarm, nodes: list[NodeProcess]) -> int:
    """Pipe consumers on every node, as a member sees them on each node's member server."""
    observer = swarm.observer
    assert observer is not None
    total = 0
    for node in nodes:
        remote = await member_session(observer, node.peer_id)
        try:
            transports = {proxy.id for proxy in remote.client.find("PipeTransport")}
            total += sum(1 for proxy in remote.client.find("Consumer") if proxy.parent_id in transports)
        finally:
            await remote.close()
    return total


async def cross_node_consume(swarm: LocalSwarm, entries: list[NodeProcess], rounds: int) -> dict[str, Any]:
    progress(f"1. consume() -> first RTP across nodes, {rounds} consumers")
    first = await connect_websocket(entries[0].entry_url or "", token=swarm.token)
    second = await connect_websocket(entries[1].entry_url or "", token=swarm.token)
    sinks: list[RtpSink] = []
    try:
        here, there = await _room(first, "bench-latency"), await _room(second, "bench-latency")
        async with opus_producer(here) as producer:
            await _until(lambda: any(r["id"] == producer.id for r in there.room_producers or ()))
            times = []
            for _ in range(rounds):
                sink, _consumer, seconds = await _consume(there, producer.id)
                sinks.append(sink)
                times.append(seconds * 1000)
    finally:
        for sink in sinks:
            sink.close()
        await _leave(first)
        await _leave(second)
    return {"first_ms": round(times[0], 1), "later_p50_ms": round(statistics.median(times[1:]), 1),
            "later_max_ms": round(max(times[1:]), 1)}


async def pipes_vs_consumers(swarm: LocalSwarm, entries: list[NodeProcess], per_node: int) -> dict[str, Any]:
    progress(f"2. pipes vs consumers: {len(entries)} nodes x {per_node} consumers")
    apps = [await connect_websocket(node.entry_url or "", token=swarm.token) for node in entries]
    sinks: list[RtpSink] = []
    try:
        routers = [await _room(app, "bench-pipes") for app in apps]
        async with contextlib.AsyncExitStack() as stack:
            producers = [await stack.enter_async_context(opus_producer(router)) for router in routers]
            ids = {p.id for p in producers}
            await _until(lambda: all({r["id"] for r in router.room_producers or ()} == ids for router in routers))
            for router in routers:
                for index in range(per_node):
                    sink, _consumer, _ = await _consume(router, producers[index % len(producers)].id)
                    sinks.append(sink)
            workers = sum(len(worker_pids(node)) for node in entries)
            pipes = await _count_pipes(swarm, entries)
    finally:
        for sink in sinks:
            sink.close()
        for app in apps:
            await _leave(app)
    return {"consumers": len(sinks), "producers": len(producers), "workers": workers, "pipe_consumers": pipes,
            "edumeet_pipe_consumers": len(producers) * (workers - 1)}


async def kill_host(swarm: LocalSwarm, entry: NodeProcess, host: NodeProcess, consumers: int) -> dict[str, Any]:
    progress(f"3. SIGKILL of a node hosting consumers ({consumers} consumers in the room)")
    app = await connect_websocket(entry.entry_url or "", token=swarm.token)
    sinks: list[RtpSink] = []
    try:
        router = await _room(app, "bench-failover")
        async with opus_producer(router) as producer:
            pairs = []
            for _ in range(consumers):
                sink, consumer, _ = await _consume(router, producer.id)
                sinks.append(sink)
                pairs.append((sink, consumer))
            assert worker_pids(host), "no consumer was placed on the host"
            lost: list[Any] = []
            for _sink, consumer in pairs:
                consumer.on("transportclose", lambda consumer=consumer: lost.append(consumer))
            killed = time.perf_counter()
            swarm.kill(host.name)
            await _until(lambda: bool(lost))
            detected = time.perf_counter() - killed
            await asyncio.sleep(0.5)  # the rest of that worker's consumers close in the same breath
            affected = [sink for sink, consumer in pairs if consumer.closed]
            fresh = []
            for _ in affected:  # the application re-consumes each one it lost
                sink, _consumer, _ = await _consume(router, producer.id)
                fresh.append(sink)
            sinks += fresh
            again = time.perf_counter() - killed
    finally:
        for sink in sinks:
            sink.close()
        await app.close()
    return {"affected": len(affected), "detected_s": round(detected, 2), "media_again_s": round(again, 2)}


async def kill_creator(swarm: LocalSwarm, creator: NodeProcess, others: list[NodeProcess],
                       consumers: int) -> dict[str, Any]:
    progress("4. SIGKILL of the room's creating entry -> last orphan closed")
    app = await connect_websocket(creator.entry_url or "", token=swarm.token, reconnect=None)
    sinks: list[RtpSink] = []
    try:
        router = await _room(app, "bench-orphans")
        async with opus_producer(router) as producer:
            for _ in range(consumers):
                sinks.append((await _consume(router, producer.id))[0])
            lent = set().union(*(worker_pids(node) for node in others))
            assert lent, "the room borrowed no worker"
            killed = time.perf_counter()
            swarm.kill(creator.name)
            await _until(lambda: not alive(lent), within=120)
            closed = time.perf_counter() - killed
    finally:
        for sink in sinks:
            sink.close()
        await app.close()
    return {"lent_workers": len(lent), "last_orphan_closed_s": round(closed, 2)}


async def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10, help="cross-node consumers timed (default 10)")
    p.add_argument("--per-node", type=int, default=20, help="consumers per node for the pipe count (default 20)")
    p.add_argument("--grace", type=float, default=10.0, help="session grace of the nodes, seconds (default 10)")
    args = p.parse_args()
    results: dict[str, Any] = {"grace_s": args.grace}
    with tempfile.TemporaryDirectory(prefix="bench-swarm-room-") as tmp:
        async with LocalSwarm(Path(tmp), load_interval_s=1.0, session_grace_s=args.grace) as swarm:
            entries = [await swarm.start_node(f"e{i}", workers=2) for i in range(3)]
            results["latency"] = await cross_node_consume(swarm, entries, args.rounds)
            results["pipes"] = await pipes_vs_consumers(swarm, entries, args.per_node)
        async with LocalSwarm(Path(tmp) / "failover", load_interval_s=1.0, session_grace_s=args.grace) as swarm:
            entry = await swarm.start_node("a", workers=1, consumers_per_worker=4)
            host = await swarm.start_node("b", workers=1, consumers_per_worker=4, entry=False)
            results["failover"] = await kill_host(swarm, entry, host, 6)
        async with LocalSwarm(Path(tmp) / "orphans", load_interval_s=1.0, session_grace_s=args.grace) as swarm:
            creator = await swarm.start_node("a", workers=1, consumers_per_worker=2)
            others = [await swarm.start_node(n, workers=1, consumers_per_worker=2, entry=False) for n in "bc"]
            results["orphans"] = await kill_creator(swarm, creator, others, 5)
    latency, pipes, failover, orphans = (results[k] for k in ("latency", "pipes", "failover", "orphans"))
    table(["what", "figure"], [
        ("consume() -> first RTP, other node, first consumer (makes the pipe)", f"{latency['first_ms']} ms"),
        ("  later consumers (share the pipe): p50 / max", f"{latency['later_p50_ms']} / {latency['later_max_ms']} ms"),
        (f"pipe consumers for {pipes['consumers']} consumers of {pipes['producers']} producers on "
         f"{pipes['workers']} workers", f"{pipes['pipe_consumers']} (EduMeet: {pipes['edumeet_pipe_consumers']})"),
        (f"SIGKILL of a consumer host -> transportclose ({failover['affected']} consumers)",
         f"{failover['detected_s']} s"),
        ("  -> media again for them (re-consumed)", f"{failover['media_again_s']} s"),
        (f"SIGKILL of the creating entry -> last orphan closed (grace {args.grace:g} s)",
         f"{orphans['last_orphan_closed_s']} s"),
    ], title="rooms across node processes (python -m bench.swarm_room)")
    emit_json(args.json, results)


if __name__ == "__main__":
    asyncio.run(main())
