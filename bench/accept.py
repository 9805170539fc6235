"""How fast a swarm node takes connections from strangers, and whether members still get in.

One real `SwarmNode` (this process) is dialled by stranger processes (`--clients`,
each a py-libp2p host keeping `--concurrency` dials in flight) for `--seconds`:

- ``connect``: TCP + Noise + yamux, then the stranger hangs up (what a port scanner
  or `monitor --once` of another swarm costs the node);
- ``refused``: the stranger also runs the membership handshake with a certificate of
  another swarm and reads the node's ``{"ok": false}``.

Meanwhile a member joins every 0.5 s (connect + handshake, then leaves): its join
latency and failures show whether the node still serves members under the flood.
Rates count completed exchanges per second, as the strangers saw them. The strangers
share this machine's cores with the node: their CPU per exchange (in a column of its
own) bounds the rate as much as the node's does.

    .venv/bin/python -m bench.accept [--seconds 10] [--clients 2] [--concurrency 16]
        [--modes connect refused] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from typing import Any

import psutil
from libp2p.crypto.ed25519 import create_new_key_pair

from bench import report
from swarm.bridge import open_host
from swarm.gate import MembershipError, MembershipGate
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.node import NodeOptions, SwarmNode

MODES = ("connect", "refused")


async def _client(target: str, mode: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """One stranger process: ``concurrency`` dial loops for ``seconds``."""
    other = SwarmAuthority.generate()
    done = failed = 0
    errors: dict[str, int] = {}
    started = time.monotonic()
    end = started + seconds
    verifier = CertificateVerifier(other.public_key)

    async def loop() -> None:
        nonlocal done, failed
        # One host per loop: a peer id has one connection at a time to the node.
        key_pair = create_new_key_pair()
        async with open_host(key_pair=key_pair, members_only=True) as host:
            gate = MembershipGate(host, other.issue(peer_id_of(key_pair)), verifier, handshake_timeout_s=10)
            while time.monotonic() < end:
                try:
                    if mode == "refused":
                        try:
                            await gate.join(target)
                        except MembershipError:
                            pass  # the answer we came for
                    else:
                        await host.connect(target)
                    done += 1
                except ConnectionError as error:
                    failed += 1
                    reason = str(error).split(":")[-1].strip()[:60]
                    errors[reason] = errors.get(reason, 0) + 1
                await host.disconnect(target.rsplit("/p2p/", 1)[1])
            await gate.close()

    cpu_before = sum(psutil.Process().cpu_times()[:2])
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    cpu_s = sum(psutil.Process().cpu_times()[:2]) - cpu_before
    return {"done": done, "failed": failed, "elapsed": time.monotonic() - started, "errors": errors, "cpu_s": cpu_s}


async def _member_joins(authority: SwarmAuthority, target: str, stop: asyncio.Event) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    verifier = CertificateVerifier(authority.public_key)
    while not stop.is_set():
        key_pair = create_new_key_pair()
        async with open_host(key_pair=key_pair, members_only=True) as member:
            gate = MembershipGate(member, authority.issue(peer_id_of(key_pair)), verifier, handshake_timeout_s=10)
            started = time.monotonic()
            try:
                await gate.join(target)
                latencies.append(time.monotonic() - started)
            except ConnectionError:
                failures += 1
            await gate.close()
        await asyncio.sleep(0.5)
    return latencies, failures


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    authority = SwarmAuthority.generate()
    key_pair = create_new_key_pair()
    node = SwarmNode(key_pair, authority.issue(peer_id_of(key_pair)), CertificateVerifier(authority.public_key),
                     NodeOptions())
    results: dict[str, Any] = {"seconds": args.seconds, "clients": args.clients, "concurrency": args.concurrency}
    async with node:
        target = node.listen_addrs[0]
        for mode in args.modes:
            report.progress(f"{mode}: {args.clients} strangers x {args.concurrency} dials for {args.seconds} s")
            stop = asyncio.Event()
            joins = asyncio.ensure_future(_member_joins(authority, target, stop))
            command = [sys.executable, "-m", "bench.accept", "--client", target, "--mode", mode]
            command += ["--seconds", str(args.seconds), "--concurrency", str(args.concurrency)]
            clients = [
                await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
                for _ in range(args.clients)
            ]
            cpu_before = sum(psutil.Process().cpu_times()[:2])
            outputs = [json.loads((await c.communicate())[0].decode().strip().splitlines()[-1]) for c in clients]
            node_cpu_s = sum(psutil.Process().cpu_times()[:2]) - cpu_before  # from the strangers' start: an upper bound
            stop.set()
            latencies, join_failures = await joins
            done = sum(o["done"] for o in outputs)
            errors: dict[str, int] = {}
            for output in outputs:
                for reason, count in output["errors"].items():
                    errors[reason] = errors.get(reason, 0) + count
            results[mode] = {
                "per_s": round(sum(o["done"] / o["elapsed"] for o in outputs), 1),
                "node_cpu_ms_per_connection": round(1000 * node_cpu_s / max(1, done), 2),
                "stranger_cpu_ms_per_connection": round(1000 * sum(o["cpu_s"] for o in outputs) / max(1, done), 2),
                "errors": errors,
                "done": done,
                "failed": sum(o["failed"] for o in outputs),
                "member_joins": len(latencies),
                "member_join_failures": join_failures,
                "member_join_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
                "member_join_max_ms": round(1000 * max(latencies), 1) if latencies else None,
            }
            await asyncio.sleep(1.0)  # let the node close what is left before the next mode
        results["node_still_a_member_of_nobody"] = node.members() == []
    return results


def main() -> None:
    parser = report.parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="flood duration per mode")
    parser.add_argument("--clients", type=int, default=2, help="stranger processes")
    parser.add_argument("--concurrency", type=int, default=16, help="dials in flight per stranger process")
    parser.add_argument("--modes", nargs="+", default=["connect", "refused"], choices=MODES,
                        help="stranger modes to run, in order (e.g. only refused, to profile it)")
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="connect", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    logging.getLogger("swarm").setLevel(logging.ERROR)
    if args.client:
        print(json.dumps(asyncio.run(_client(args.client, args.mode, args.seconds, args.concurrency))))
        return
    results = asyncio.run(_run(args))
    rows = [
        [mode, results[mode]["per_s"], results[mode]["done"], results[mode]["failed"],
         results[mode]["node_cpu_ms_per_connection"], results[mode]["stranger_cpu_ms_per_connection"],
         f"{results[mode]['member_joins']} ({results[mode]['member_join_failures']} failed)",
         results[mode]["member_join_p50_ms"], results[mode]["member_join_max_ms"]]
        for mode in args.modes
    ]  # fmt: skip
    report.table(
        ["stranger mode", "per s", "done", "failed", "node CPU ms each", "stranger CPU ms each",
         "member joins", "join p50 ms", "join max ms"],
        rows,
        title=f"acceptance of stranger connections: {args.clients} processes x {args.concurrency} in flight, "
        f"{args.seconds:.0f} s each",
    )
    report.emit_json(args.json, results)


if __name__ == "__main__":
    main()
