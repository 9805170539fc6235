"""Issue 6 figures: what Remote Mediasoup costs on the control plane and on media.

    .venv/bin/python -m bench.remote [--calls 400] [--seconds 4] [--json]

Control plane, in the same run: consume() calls per second (sequential, and
with 50 calls in flight), the p50/p99 latency of one sequential call and
this process's CPU per sequential call (client, server, ROPE and carrier
threads; not the worker's: on a shared machine the steadiest figure) and the
objects the garbage collector tracks that each consumer keeps alive (client,
server and media objects in this one process: memory per consumer, and what
every full collection walks; does not depend on the load at all),
through the local `media` layer, through a Remote Mediasoup server over
libp2p (two real hosts on 127.0.0.1, Noise + yamux) and over WebSocket. One
opus producer on a PlainTransport, consumers on a second one.

Media: one-way latency of RTP (the sender stamps its send time in the
payload, a UDP sink reads it: one clock) for a producer and a consumer on one
router, vs a producer on node A piped to a consumer on node B (two Remote
Mediasoup servers, separate workers, PipeTransports across 127.0.0.1). 50
packets per second for --seconds each.

With ``--shared-cpu`` the process keeps its threads on one CPU, as a node does with
``MAFALDA_SHARED_CPU=1`` (`media.cpus.shared_cpu`); by default they are where the kernel puts them.
Garbage is collected as a node does (`swarm.gc_policy`), unless ``--default-gc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import media
from bench.report import add_gc_option, collect_like_a_node, emit_json, parser, progress, table, thread_placement
from media.codecs import DEFAULT_MEDIA_CODECS
from media.cpus import shared_cpu
from media.rtp_traffic import OPUS_RTP_PARAMETERS, RtpSink, RtpSource
from swarm.loopback import loopback

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}
IN_FLIGHT = 50


@contextlib.asynccontextmanager
async def backend(name: str) -> AsyncIterator[Any]:
    if name == "local":
        yield media
    else:
        async with loopback(media, "libp2p" if name == "remote-libp2p" else "websocket") as (_, remote):
            yield remote


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def consume_rate(mediasoup: Any, calls: int) -> dict[str, float]:
    worker = await mediasoup.create_worker()
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        caps = router.rtp_capabilities

        async def consume(transport: Any) -> float:
            start = time.perf_counter()
            await transport.consume(producer_id=producer.id, rtp_capabilities=caps)
            return time.perf_counter() - start

        egress = await router.create_plain_transport(listen_info=LOOPBACK)
        for _ in range(20):  # warm-up
            await consume(egress)
        await egress.close()

        egress = await router.create_plain_transport(listen_info=LOOPBACK)
        gc.collect()
        tracked = len(gc.get_objects())
        start, cpu_start = time.perf_counter(), time.process_time()
        latencies = [await consume(egress) for _ in range(calls)]
        sequential = calls / (time.perf_counter() - start)
        cpu_us = (time.process_time() - cpu_start) / calls * 1e6
        gc.collect()
        kept = (len(gc.get_objects()) - tracked) / calls
        await egress.close()

        egress = await router.create_plain_transport(listen_info=LOOPBACK)
        start = time.perf_counter()
        for done in range(0, calls, IN_FLIGHT):
            await asyncio.gather(*(consume(egress) for _ in range(min(IN_FLIGHT, calls - done))))
        concurrent = calls / (time.perf_counter() - start)
        await egress.close()
        return {"sequential_per_s": sequential, "concurrent_per_s": concurrent,
                "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
                "cpu_us_per_call": cpu_us, "objects_kept_per_call": kept}
    finally:
        await worker.close()


async def measure_latency(ingress_router: Any, egress_router: Any, seconds: float) -> dict[str, float]:
    ingress = await ingress_router.create_plain_transport(listen_info=LOOPBACK, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    if egress_router is not ingress_router:
        await ingress_router.pipe_to_router(producer_id=producer.id, router=egress_router)
    sink = await RtpSink.open(stamped=True)
    egress = await egress_router.create_plain_transport(listen_info=LOOPBACK)
    await egress.connect(ip="127.0.0.1", port=sink.port)
    await egress.consume(producer_id=producer.id, rtp_capabilities=egress_router.rtp_capabilities)
    source = RtpSource("127.0.0.1", ingress.tuple["localPort"], stamp=True)
    source.start()
    try:
        await sink.wait_for_packets(10)
        sink.latencies.clear()
        await asyncio.sleep(seconds)
    finally:
        await source.stop()
        sink.close()
    values = sink.latencies
    return {"packets": len(values), "p50_ms": statistics.median(values) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000, "received_share": len(values) / max(1, round(seconds * 50))}


async def media_latency(seconds: float) -> dict[str, dict[str, float]]:
    results = {}
    worker = await media.create_worker()
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        progress("media latency: one router")
        results["one router"] = await measure_latency(router, router, seconds)
    finally:
        await worker.close()
    async with loopback(media, "libp2p") as (_, node_a), loopback(media, "libp2p") as (_, node_b):
        router_a = await (await node_a.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        router_b = await (await node_b.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        progress("media latency: node A piped to node B")
        results["node A -> pipe -> node B"] = await measure_latency(router_a, router_b, seconds)
    return results


async def main() -> None:
    args = _args()
    collection = collect_like_a_node(args.default_gc)
    async with shared_cpu(args.shared_cpu) as cpu:
        await measure(args, cpu, collection)


async def measure(args: Any, cpu: int | None, collection: str) -> None:
    control: dict[str, dict[str, float]] = {}
    for name in ("local", "remote-libp2p", "remote-ws"):
        progress(f"consume(): {name}")
        async with backend(name) as mediasoup:
            control[name] = await consume_rate(mediasoup, args.calls)
    table(
        ["back-end", "consume/s (sequential)", f"consume/s ({IN_FLIGHT} in flight)", "p50 ms", "p99 ms",
         "CPU us/call", "CPU x local", "objects kept/call"],
        [[name, r["sequential_per_s"], r["concurrent_per_s"], r["p50_ms"], r["p99_ms"], r["cpu_us_per_call"],
          r["cpu_us_per_call"] / control["local"]["cpu_us_per_call"], r["objects_kept_per_call"]]
         for name, r in control.items()],
        title=f"consume() on one router, {args.calls} calls each, {thread_placement(cpu)}, {collection}",
    )
    latency = await media_latency(args.seconds)
    table(
        ["path", "packets", "p50 ms", "p99 ms", "received"],
        [[name, r["packets"], r["p50_ms"], r["p99_ms"], f"{r['received_share']:.0%}"] for name, r in latency.items()],
        title="RTP one-way latency, producer -> consumer (50 pps opus-sized packets)",
    )
    emit_json(args.json, {"consume": control, "media_latency": latency, "calls": args.calls,
                          "threads_share_one_cpu": cpu is not None, "default_gc": args.default_gc})


def _args() -> Any:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=400, help="consume() calls per back-end and mode")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of RTP per latency path")
    p.add_argument("--shared-cpu", action="store_true",
                   help="keep the process's threads on one CPU (MAFALDA_SHARED_CPU=1 for a node)")
    add_gc_option(p)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main())
