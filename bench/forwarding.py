"""Forwarding on one worker: one opus-like RTP stream fanned out to N PlainTransport consumers.

    .venv/bin/python -m bench.forwarding [--consumers 50 200 500 1000] [--seconds 5] [--srtp] [--json]

A PlainTransport producer is fed 50 packets/s (20 ms audio frames) from a
Python UDP source; each consumer sends to its own local UDP socket. Delivered
packets and loss come from the worker's own consumer stats (a Python receiver
could not count 50k packets/s on this machine without becoming the bottleneck);
worker CPU from getrusage deltas. SRTP is off (plain RTP), so this is the
forwarding path itself. Baseline to compare with (shared notes, mediasoup's
Node layer on this 2-core machine): 1,000 consumers at ~47 % of a core,
2,000 at ~96 % (~100k packets/s per core).

With --srtp every consumer's PlainTransport encrypts (AES_CM_128_HMAC_SHA1_80):
the SRTP fan-out cost, which depends on how libsrtp is built (shared notes:
~15 us per packet sent with libsrtp built with OpenSSL, ~39 us with NSS).
To compare two worker builds in one run, point MAFALDA_WORKER_DIR (binary,
VERSION and bindings) at each install directory in turn.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import media
from bench.report import emit_json, parser, progress, table
from bench.rtp_window import DRAIN_S, feed, packets_sent
from media.codecs import DEFAULT_MEDIA_CODECS
from media.rtp_traffic import OPUS_RTP_PARAMETERS, RtpSource

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}
PACKETS_PER_SECOND = 50


async def _cpu_seconds(worker: Any) -> float:
    usage = await worker.get_resource_usage()
    return (usage["ru_utime"] + usage["ru_stime"]) / 1000.0


async def measure(router: Any, worker: Any, consumers_count: int, seconds: float, srtp: bool = False) -> dict[str, Any]:
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    sinks, consumers, transports = [], [], [ingress]
    for _ in range(consumers_count):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))  # never read: the kernel drops what overflows, after the worker sent it
        sinks.append(sink)
        transport = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, enable_srtp=srtp)
        # With SRTP the far end's keys are needed too (nothing comes back here: any valid ones do).
        await transport.connect(
            ip="127.0.0.1", port=sink.getsockname()[1], srtp_parameters=transport.srtp_parameters if srtp else None
        )
        consumers.append(await transport.consume(producer_id=producer.id, rtp_capabilities=router.rtp_capabilities))
        transports.append(transport)
    # Counters are read with no traffic flowing (see bench/rtp_window.py).
    source = RtpSource("127.0.0.1", ingress.tuple["localPort"], PACKETS_PER_SECOND)
    await feed(source, 1.0)  # warm-up: the transport learns the source, streams start
    packets_before = await packets_sent(consumers)
    cpu_before = await _cpu_seconds(worker)
    sent = await feed(source, seconds)
    cpu_after = await _cpu_seconds(worker)
    packets_after = await packets_sent(consumers)
    await source.close()
    for transport in transports:
        await transport.close()
    for sink in sinks:
        sink.close()
    delivered = packets_after - packets_before
    expected = sent * consumers_count
    return {
        "consumers": consumers_count,
        "packets_per_s": delivered / seconds,
        "loss_pct": max(0.0, 100.0 * (1 - delivered / expected)) if expected else 0.0,
        "worker_cpu_pct": 100.0 * (cpu_after - cpu_before) / (seconds + DRAIN_S),
    }


async def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--consumers", type=int, nargs="+", default=[50, 200, 500, 1000])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--srtp", action="store_true", help="consumers' transports encrypt (SRTP fan-out cost)")
    args = p.parse_args()
    worker = await media.create_worker(log_level="error")
    results = []
    try:
        for count in args.consumers:
            router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            progress(f"forwarding: {count} consumers for {args.seconds}s ...")
            results.append(await measure(router, worker, count, args.seconds, args.srtp))
            await router.close()
    finally:
        await worker.close()
    table(
        ["consumers", "packets/s delivered", "loss %", "worker CPU %", "us CPU per packet"],
        [[r["consumers"], r["packets_per_s"], r["loss_pct"], r["worker_cpu_pct"],
          1e6 * r["worker_cpu_pct"] / 100 / r["packets_per_s"] if r["packets_per_s"] else 0.0] for r in results],
        title=f"mediasoup-worker {media.version}: one {PACKETS_PER_SECOND} packets/s stream fanned out "
        f"({'SRTP AES_CM_128_HMAC_SHA1_80' if args.srtp else 'plain RTP, no SRTP'})",
    )
    if args.srtp:
        print("baseline (mediasoup Node layer, libsrtp with OpenSSL, shared notes): 1000 consumers ~77 % CPU")
    else:
        print("baseline (mediasoup Node layer, same machine class, shared notes): 1000 consumers ~47 % CPU")
    emit_json(
        args.json,
        {"forwarding": results, "input_packets_per_s": PACKETS_PER_SECOND, "srtp": args.srtp, "version": media.version},
    )


if __name__ == "__main__":
    asyncio.run(main())
