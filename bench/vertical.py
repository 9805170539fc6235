"""Mediasoup-vertical: pipes created on demand vs EduMeet's full mesh, and capacity with 1 vs 2 workers.

    .venv/bin/python -m bench.vertical [--peers 5 10 20] [--workers 1 2 4 8] [--json]

Pipes: Mafalda's table cases. Peers join one vertical router one after the
other; each sends 2 producers and consumes every other peer's. Control plane
only (PlainTransports, no media), so it runs with 8 real workers on 2 cores.
Each piped (producer, real router) is one pipe consumer; EduMeet's approach
pipes every producer to every other worker: producers x (workers - 1).

Capacity: one RTP stream at --rate packets/s fanned out to --fanout consumers
on a vertical router limited to 1, then 2 workers; delivered packets/s come
from the workers' consumer stats. On this 2-core machine the Python RTP source
and the benchmark share the cores with the workers, so 2 workers cannot reach
twice one worker's figure; the table shows how close they get.

Vertical-cluster (Mafalda's flagship, `--cluster`, on by default): the same
cases through a vertical router over `media.horizontal.Horizontal` of two
Remote Mediasoup servers (real WebSocket servers on 127.0.0.1, in this
process, each starting its own workers): pipe consumers across servers vs the
EduMeet formula, and forwarding capacity with one worker on each of two
servers vs one server with one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator
from typing import Any

import media
from bench.report import emit_json, parser, progress, table
from bench.rtp_window import feed, packets_sent
from media.codecs import DEFAULT_MEDIA_CODECS
from media.horizontal import Horizontal
from media.rtp_traffic import OPUS_RTP_PARAMETERS, RtpSource
from media.vertical import Capacity, Vertical
from swarm.loopback import loopback

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}

SATURATED = 0.98
"""A case delivering less than this share of what was offered is at saturation; one delivering it all was
limited by the input (--rate), so a ratio over it is a lower bound."""


def _producer_parameters(ssrc: int) -> dict[str, Any]:
    params = dict(OPUS_RTP_PARAMETERS)
    params["encodings"] = [{"ssrc": ssrc}]
    return params


@contextlib.asynccontextmanager
async def cluster(servers: int) -> AsyncIterator[Horizontal]:
    """A Horizontal over ``servers`` Remote Mediasoup servers (WebSocket, 127.0.0.1) of the local workers."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [(await stack.enter_async_context(loopback(media, "websocket")))[1] for _ in range(servers)]
        yield Horizontal(clients)


async def pipes_case(peers: int, workers: int, backend: Any = media) -> dict[str, Any]:
    producers_total = peers * 2
    consumers_total = peers * (peers - 1) * 2
    per_worker = max(1, math.ceil(consumers_total / workers)) + producers_total
    vertical_worker = await Vertical(
        backend, Capacity(max_workers=workers, max_consumers_per_worker=per_worker, watermark_cpu=1.0)
    ).create_worker()
    try:
        router = await vertical_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        joined: list[tuple[Any, list[Any]]] = []  # (receive transport, producers)
        ssrc = 1000
        for _ in range(peers):
            send = await router.create_plain_transport(listen_info=LOOPBACK, comedia=True)
            mine = []
            for _ in range(2):
                ssrc += 1
                mine.append(await send.produce(kind="audio", rtp_parameters=_producer_parameters(ssrc)))
            recv = await router.create_plain_transport(listen_info=LOOPBACK)
            for other_recv, theirs in joined:
                for producer in theirs:
                    await recv.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
                for producer in mine:
                    await other_recv.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
            joined.append((recv, mine))
        used = len({r.worker for r in router.real_routers})
        return {
            "peers": peers,
            "max_workers": workers,
            "workers_used": used,
            "consumers": consumers_total,
            "pipe_consumers": router.pipe_count,
            "edumeet_pipe_consumers": producers_total * (workers - 1),
        }
    finally:
        await vertical_worker.close()


async def capacity_case(
    workers: int, fanout: int, rate: float, seconds: float, backend: Any = media
) -> dict[str, Any]:
    vertical_worker = await Vertical(
        backend,
        Capacity(max_workers=workers, max_consumers_per_worker=math.ceil(fanout / workers) + 1, watermark_cpu=1.0),
    ).create_worker()
    sinks: list[socket.socket] = []
    try:
        router = await vertical_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        consumers = []
        for _ in range(fanout):
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind(("127.0.0.1", 0))
            sinks.append(sink)
            transport = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True)
            await transport.connect(ip="127.0.0.1", port=sink.getsockname()[1])
            consumers.append(
                await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities)
            )
        source = RtpSource("127.0.0.1", ingress.tuple["localPort"], rate)
        await feed(source, 1.0)  # warm-up: the transport learns the source, streams start
        before = await packets_sent(consumers)
        sent = await feed(source, seconds)
        after = await packets_sent(consumers)
        await source.close()
        offered, delivered = sent * fanout / seconds, (after - before) / seconds
        return {
            "workers": workers,
            "workers_used": len({r.worker for r in router.real_routers}),
            "fanout": fanout,
            "offered_packets_per_s": offered,
            "delivered_packets_per_s": delivered,
            "saturated": delivered < SATURATED * offered,
        }
    finally:
        for sink in sinks:
            sink.close()
        await vertical_worker.close()


async def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--peers", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--fanout", type=int, default=400, help="consumers in the capacity test")
    p.add_argument("--rate", type=float, default=500.0, help="input packets/s in the capacity test")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--no-cluster", action="store_true", help="skip the vertical-cluster cases (two servers)")
    args = p.parse_args()

    pipes = []
    for peers in args.peers:
        for workers in args.workers:
            progress(f"pipes: {peers} peers x 2 producers, up to {workers} workers ...")
            pipes.append(await pipes_case(peers, workers))
    table(
        ["peers", "max workers", "workers used", "consumers", "pipe consumers", "EduMeet formula"],
        [[r["peers"], r["max_workers"], r["workers_used"], r["consumers"], r["pipe_consumers"],
          r["edumeet_pipe_consumers"]] for r in pipes],
        title="Pipe consumers: created on demand (vertical) vs producers x (workers - 1) (EduMeet)",
    )

    capacity = []
    for workers in (1, 2):
        progress(f"capacity: {args.fanout} consumers at {args.rate} packets/s on {workers} worker(s) ...")
        capacity.append(await capacity_case(workers, args.fanout, args.rate, args.seconds))
    table(
        ["workers", "used", "consumers", "offered pkt/s", "delivered pkt/s", "saturated"],
        [[r["workers"], r["workers_used"], r["fanout"], r["offered_packets_per_s"], r["delivered_packets_per_s"],
          "yes" if r["saturated"] else "no"] for r in capacity],
        title="Forwarding capacity at saturation: one vertical router over 1 vs 2 workers",
    )
    one, two = capacity[0]["delivered_packets_per_s"], capacity[1]["delivered_packets_per_s"]
    print(_ratio("2 workers / 1 worker", capacity) if one else "no packets delivered with 1 worker")
    result: dict[str, Any] = {"pipes": pipes, "capacity": capacity, "two_over_one": two / one if one else None}
    if not args.no_cluster:
        result["cluster"] = await cluster_cases(args)
    emit_json(args.json, result)


async def cluster_cases(args: Any) -> dict[str, Any]:
    """The vertical-cluster: a vertical router over two servers (one worker each unless --workers says more)."""
    pipes = []
    for peers in args.peers:
        for workers in sorted({w for w in args.workers if w >= 2}):
            progress(f"vertical-cluster pipes: {peers} peers x 2 producers, up to {workers} workers on 2 servers ...")
            async with cluster(2) as horizontal:
                pipes.append(await pipes_case(peers, workers, horizontal))
    if pipes:  # none when --workers asks for fewer than one per server
        table(
            ["peers", "max workers", "workers used", "consumers", "pipe consumers", "EduMeet formula"],
            [[r["peers"], r["max_workers"], r["workers_used"], r["consumers"], r["pipe_consumers"],
              r["edumeet_pipe_consumers"]] for r in pipes],
            title="Vertical-cluster (2 servers): pipe consumers on demand vs producers x (workers - 1)",
        )
    progress(f"vertical-cluster capacity: {args.fanout} consumers, 1 server x 1 worker ...")
    async with cluster(1) as horizontal:
        one_server = await capacity_case(1, args.fanout, args.rate, args.seconds, horizontal)
    progress(f"vertical-cluster capacity: {args.fanout} consumers, 2 servers x 1 worker ...")
    async with cluster(2) as horizontal:
        two_servers = await capacity_case(2, args.fanout, args.rate, args.seconds, horizontal)
    capacity = [{"servers": 1, **one_server}, {"servers": 2, **two_servers}]
    table(
        ["servers", "workers used", "consumers", "offered pkt/s", "delivered pkt/s", "saturated"],
        [[r["servers"], r["workers_used"], r["fanout"], r["offered_packets_per_s"], r["delivered_packets_per_s"],
          "yes" if r["saturated"] else "no"] for r in capacity],
        title="Vertical-cluster forwarding capacity: one router over 1 server x 1 worker vs 2 servers x 1 worker",
    )
    one, two = one_server["delivered_packets_per_s"], two_servers["delivered_packets_per_s"]
    print(_ratio("2 servers / 1 server", capacity) if one else "no packets delivered with 1 server")
    return {"pipes": pipes, "capacity": capacity, "two_over_one": two / one if one else None}


def _ratio(label: str, cases: list[dict[str, Any]]) -> str:
    one, two = cases[0]["delivered_packets_per_s"], cases[1]["delivered_packets_per_s"]
    if cases[1]["saturated"]:
        return f"{label}: {two / one:.2f}x"
    return f"{label}: at least {two / one:.2f}x (the second case delivered all it was offered: raise --rate)"


if __name__ == "__main__":
    asyncio.run(main())
