"""How fast a swarm node takes connections from strangers, and whether members still get in.

One real `SwarmNode` (this process) is dialled by stranger processes (`--clients`,
each keeping `--concurrency` dials in flight, one libp2p host per dial loop) for `--seconds`:

- ``connect``: TCP + Noise + yamux, then the stranger hangs up (what a port scanner
  or `monitor --once` of another swarm costs the node);
- ``refused``: the stranger also runs the membership handshake with a certificate of
  another swarm and reads the node's ``{"ok": false}``.

Meanwhile a member joins every 0.5 s (connect + handshake, then leaves): its join
latency and failures show whether the node still serves members under the flood.
Rates count completed exchanges per second, as the strangers saw them. The strangers
share this machine's cores with the node: their CPU per exchange (in a column of its
own) bounds the rate as much as the node's does.

`--strangers py` (the default) makes them py-libp2p hosts, as this project's own
nodes are; `--strangers js` makes them js-libp2p 2.10 hosts (bench/js_stranger,
Noise + yamux, installed from its npm lock file by scripts/install-js-stranger on
first use), how the issue's outsider probed the node. Another implementation
behaves differently on the wire: js-libp2p ends its side of a stream before it
reads the answer and hangs up first, which is how py-libp2p's reads at the end of
a connection were found (swarm/libp2p_fixes.py fix 13). It costs about as much CPU
per dial as a py-libp2p stranger. Each dial loop keeps one peer id, and py-libp2p
admits at most 10 connections per second per peer id after a burst of 50: at these
concurrencies a loop stays under that.

    .venv/bin/python -m bench.accept [--seconds 10] [--clients 2] [--concurrency 16]
        [--modes connect refused] [--strangers py|js] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from libp2p.crypto.ed25519 import create_new_key_pair

from bench import report
from swarm import gc_policy
from swarm.bridge import open_host
from swarm.gate import MembershipError, MembershipGate
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.node import NodeOptions, SwarmNode

MODES = ("connect", "refused")
STRANGERS = ("py", "js")
JS_STRANGER = Path(__file__).with_name("js_stranger") / "stranger.mjs"


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


def _js_identities(count: int) -> list[dict[str, str]]:
    """Key pairs and certificates of another swarm for the js strangers' dial loops."""
    other = SwarmAuthority.generate()
    identities = []
    for _ in range(count):
        key_pair = create_new_key_pair()
        raw = key_pair.private_key.to_bytes() + key_pair.public_key.to_bytes()  # js-libp2p's 64-byte form
        identities.append({"key": base64.b64encode(raw).decode(), "cert": other.issue(peer_id_of(key_pair)).to_text()})
    return identities


async def _stranger_process(strangers: str, target: str, mode: str, args: argparse.Namespace) -> bytes:
    """Run one stranger process to its end; its last stdout line is its JSON result."""
    stdin: bytes | None = None
    if strangers == "py":
        command = [sys.executable, "-m", "bench.accept", "--client", target, "--mode", mode]
        command += ["--seconds", str(args.seconds), "--concurrency", str(args.concurrency)]
    else:
        command = ["node", str(JS_STRANGER)]
        identities = _js_identities(args.concurrency)
        stdin = json.dumps({"target": target, "mode": mode, "seconds": args.seconds, "identities": identities}).encode()
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE if stdin is not None else None, stdout=asyncio.subprocess.PIPE
    )
    output = (await process.communicate(stdin))[0]
    if process.returncode != 0:
        raise RuntimeError(f"a {strangers} stranger failed (exit {process.returncode})")
    return output


def _install_js_stranger() -> None:
    script = Path(__file__).parents[1] / "scripts" / "install-js-stranger"
    if subprocess.run([str(script)], check=False).returncode != 0:
        raise SystemExit("bench.accept: scripts/install-js-stranger failed; --strangers py needs no npm")


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
    node = SwarmNode(
        key_pair, authority.issue(peer_id_of(key_pair)), CertificateVerifier(authority.public_key), NodeOptions()
    )
    results: dict[str, Any] = {
        "seconds": args.seconds,
        "clients": args.clients,
        "concurrency": args.concurrency,
        "strangers": args.strangers,
    }
    async with node:
        gc_policy.tune_for_a_server()  # as `mafalda-swarm node` does once its node is up
        target = node.listen_addrs[0]
        for mode in args.modes:
            report.progress(
                f"{mode}: {args.clients} {args.strangers} strangers x {args.concurrency} dials for {args.seconds} s"
            )
            stop = asyncio.Event()
            joins = asyncio.ensure_future(_member_joins(authority, target, stop))
            cpu_before = sum(psutil.Process().cpu_times()[:2])
            runs = [_stranger_process(args.strangers, target, mode, args) for _ in range(args.clients)]
            outputs = [json.loads(out.decode().strip().splitlines()[-1]) for out in await asyncio.gather(*runs)]
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
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["connect", "refused"],
        choices=MODES,
        help="stranger modes to run, in order (e.g. only refused, to profile it)",
    )
    parser.add_argument(
        "--strangers",
        default="py",
        choices=STRANGERS,
        help="py-libp2p stranger processes, or js-libp2p ones (another implementation)",
    )
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="connect", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    logging.getLogger("swarm").setLevel(logging.ERROR)
    if args.client:
        gc_policy.tune_for_a_server()  # py-libp2p hosts, as this project's nodes run them
        print(json.dumps(asyncio.run(_client(args.client, args.mode, args.seconds, args.concurrency))))
        return
    if args.strangers == "js":
        _install_js_stranger()
    try:
        results = asyncio.run(_run(args))
    except RuntimeError as error:
        raise SystemExit(f"bench.accept: {error}") from None
    rows = [
        [mode, results[mode]["per_s"], results[mode]["done"], results[mode]["failed"],
         results[mode]["node_cpu_ms_per_connection"], results[mode]["stranger_cpu_ms_per_connection"],
         f"{results[mode]['member_joins']} ({results[mode]['member_join_failures']} failed)",
         results[mode]["member_join_p50_ms"], results[mode]["member_join_max_ms"]]
        for mode in args.modes
    ]  # fmt: skip
    report.table(
        [
            "stranger mode",
            "per s",
            "done",
            "failed",
            "node CPU ms each",
            "stranger CPU ms each",
            "member joins",
            "join p50 ms",
            "join max ms",
        ],
        rows,
        title=f"acceptance of stranger connections: {args.clients} {args.strangers} processes x {args.concurrency}"
        " in flight, "
        f"{args.seconds:.0f} s each",
    )
    report.emit_json(args.json, results)


if __name__ == "__main__":
    main()
