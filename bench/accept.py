"""How fast a swarm node takes connections from strangers, and whether members still get in.

One real `SwarmNode` (this process) is dialled by stranger processes (`--clients`,
each keeping `--concurrency` dials in flight, one libp2p host per dial loop) for `--seconds`:

- ``connect``: TCP + Noise + yamux, then the stranger hangs up (what a port scanner
  or `monitor --once` of another swarm costs the node);
- ``refused``: the stranger also runs the membership handshake with a certificate of
  another swarm and reads the node's ``{"ok": false}``.

Meanwhile a member joins every 0.5 s (connect + handshake, then leaves; a process of
its own, as the strangers): its join latency and failures show whether the node still
serves members under the flood.
Rates count completed exchanges per second, as the strangers saw them. The strangers
share this machine's cores with the node: their CPU per exchange (in a column of its
own) bounds the rate as much as the node's does.

`--strangers py` (the default) makes them py-libp2p hosts, as this project's own
nodes are, driven in trio directly (all of a process's dial loops in one trio loop,
not through `swarm.bridge`'s thread per host: a load generator should cost less than
what it loads; 6 ms of CPU per refused exchange instead of 10-11); `--strangers js`
makes them js-libp2p 2.10 hosts (bench/js_stranger, Noise + yamux, installed from its
npm lock file by scripts/install-js-stranger on first use), how the issue's outsider
probed the node. Another implementation behaves differently on the wire: js-libp2p
ends its side of a stream before it reads the answer and hangs up first, which is how
py-libp2p's reads at the end of a connection were found (swarm/libp2p_fixes.py fix 13).
It costs 11-18 ms of CPU per refused exchange. Each dial loop keeps one peer id, and
py-libp2p admits at most 10 connections per second per peer id after a burst of 50:
at these concurrencies a loop stays under that.

    .venv/bin/python -m bench.accept [--seconds 10] [--clients 2] [--concurrency 16]
        [--modes connect refused] [--strangers py|js] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import multiaddr
import psutil
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamReset
from libp2p.peer.peerinfo import info_from_p2p_addr

from bench import report
from swarm import gc_policy
from swarm.bridge import new_libp2p_host, open_host
from swarm.frames import FrameReader, encode_frame
from swarm.gate import MAX_FRAME, MEMBERSHIP_PROTOCOL, MembershipGate
from swarm.libp2p_fixes import apply_fixes
from swarm.membership import Certificate, CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.node import NodeOptions, SwarmNode

MODES = ("connect", "refused")
STRANGERS = ("py", "js")
JS_STRANGER = Path(__file__).with_name("js_stranger") / "stranger.mjs"


def _client(target: str, mode: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """One stranger process: ``concurrency`` dial loops for ``seconds``, all in one trio loop.

    py-libp2p hosts driven in trio directly, not through `swarm.bridge` (one thread per
    host, and a trip between threads for every step): the load generator's own cost
    bounds the rate on a machine it shares with the node, and the node sees the same
    wire (Noise, yamux, the membership handshake) either way."""
    return trio.run(_trio_client, target, mode, seconds, concurrency)


async def _trio_client(target: str, mode: str, seconds: float, concurrency: int) -> dict[str, Any]:
    other = SwarmAuthority.generate()
    node = info_from_p2p_addr(multiaddr.Multiaddr(target))
    done = failed = 0
    errors: dict[str, int] = {}
    started = time.monotonic()
    end = started + seconds

    async def exchange(host: IHost, hello: bytes) -> None:
        await host.connect(node)
        if mode == "refused":
            stream = await host.new_stream(node.peer_id, [TProtocol(MEMBERSHIP_PROTOCOL)])
            await stream.write(hello)
            answer = await FrameReader(_EofAsEmpty(stream), MAX_FRAME).read()
            if answer is None or answer.get("ok") is not False:
                raise ConnectionError(f"no refusal: {answer!r}")

    async def loop() -> None:
        nonlocal done, failed
        # One host per loop: a peer id has one connection at a time to the node.
        key_pair = create_new_key_pair()
        hello = encode_frame({"cert": other.issue(peer_id_of(key_pair)).to_text()})
        host = new_libp2p_host(key_pair, multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0"))
        apply_fixes(host, is_admitted=lambda _peer: False)  # as a members-only host: it identifies nobody
        async with host.run([]):
            while time.monotonic() < end:
                try:
                    with trio.fail_after(10):
                        await exchange(host, hello)
                    done += 1
                except Exception as error:  # trio.TooSlowError included
                    failed += 1
                    reason = (str(error).split(":")[-1].strip() or type(error).__name__)[:60]
                    errors[reason] = errors.get(reason, 0) + 1
                    await trio.sleep(0.05)  # e.g. the node's half-open bound refused us: no busy loop
                with contextlib.suppress(Exception):
                    await host.disconnect(node.peer_id)

    cpu_before = sum(psutil.Process().cpu_times()[:2])
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(loop)
    cpu_s = sum(psutil.Process().cpu_times()[:2]) - cpu_before
    return {"done": done, "failed": failed, "elapsed": time.monotonic() - started, "errors": errors, "cpu_s": cpu_s}


class _EofAsEmpty:
    """A py-libp2p stream read as `swarm.frames` expects: ``b""`` at its end (the library raises)."""

    def __init__(self, stream: INetStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._stream.read(max_bytes)
        except (StreamEOF, StreamReset):
            return b""

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)


def _identities(authority: SwarmAuthority, count: int) -> list[dict[str, str]]:
    """Key pairs (the 32-byte Ed25519 seed and public key, base64) with certificates of
    ``authority``, for dial loops in other processes."""
    identities = []
    for _ in range(count):
        key_pair = create_new_key_pair()
        seed, public = key_pair.private_key.to_bytes(), key_pair.public_key.to_bytes()
        cert = authority.issue(peer_id_of(key_pair)).to_text()
        identities.append({"key": base64.b64encode(seed + public).decode(), "cert": cert})  # js-libp2p's 64-byte form
    return identities


async def _stranger_process(strangers: str, target: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    if strangers == "py":
        command = [sys.executable, "-m", "bench.accept", "--client", target, "--mode", mode]
        command += ["--seconds", str(args.seconds), "--concurrency", str(args.concurrency)]
        return await _child(f"a {strangers} stranger", command)
    identities = _identities(SwarmAuthority.generate(), args.concurrency)  # of another swarm
    job = {"target": target, "mode": mode, "seconds": args.seconds, "identities": identities}
    return await _child(f"a {strangers} stranger", ["node", str(JS_STRANGER)], job)


async def _member_process(authority: SwarmAuthority, target: str, seconds: float) -> dict[str, Any]:
    swarm_key = authority.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    job = {"target": target, "seconds": seconds, "identities": _identities(authority, 40)}
    job["swarm_key"] = base64.b64encode(swarm_key).decode()
    return await _child("the member", [sys.executable, "-m", "bench.accept", "--member"], job)


async def _child(what: str, command: list[str], job: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one process of the bench (a stranger, the member) to its end, ``job`` on its stdin;
    its last stdout line is its JSON result."""
    stdin = json.dumps(job).encode() if job is not None else None
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE if stdin is not None else None, stdout=asyncio.subprocess.PIPE
    )
    output = (await process.communicate(stdin))[0]
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {process.returncode})")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def _install_js_stranger() -> None:
    script = Path(__file__).parents[1] / "scripts" / "install-js-stranger"
    if subprocess.run([str(script)], check=False).returncode != 0:
        raise SystemExit("bench.accept: scripts/install-js-stranger failed; --strangers py needs no npm")


async def _member_joins(
    target: str, seconds: float, identities: list[dict[str, str]], verifier: CertificateVerifier
) -> dict[str, Any]:
    """The member process: a member joins every 0.5 s for ``seconds`` (connect + handshake,
    then it leaves), through `swarm.gate` as a node does. Its own process: the node's CPU
    column is then the node's alone, as a member would be another machine."""
    latencies: list[float] = []
    failures = 0
    end = time.monotonic() + seconds
    for identity in itertools.cycle(identities):
        if time.monotonic() >= end:
            break
        key_pair = create_new_key_pair(base64.b64decode(identity["key"])[:32])
        certificate = Certificate.from_text(identity["cert"])
        async with open_host(key_pair=key_pair, members_only=True) as member:
            gate = MembershipGate(member, certificate, verifier, handshake_timeout_s=10)
            started = time.monotonic()
            try:
                await gate.join(target)
                latencies.append(time.monotonic() - started)
            except ConnectionError:
                failures += 1
            await gate.close()
        await asyncio.sleep(0.5)
    return {"latencies": latencies, "failures": failures}


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
            joins = asyncio.ensure_future(_member_process(authority, target, args.seconds))
            cpu_before = sum(psutil.Process().cpu_times()[:2])
            runs = [_stranger_process(args.strangers, target, mode, args) for _ in range(args.clients)]
            outputs = await asyncio.gather(*runs)
            node_cpu_s = sum(psutil.Process().cpu_times()[:2]) - cpu_before  # from the strangers' start: an upper bound
            member = await joins
            latencies, join_failures = member["latencies"], member["failures"]
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
    parser.add_argument("--member", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="connect", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("swarm").setLevel(logging.ERROR)
    if args.member:
        job = json.load(sys.stdin)
        identities, target, seconds = job["identities"], job["target"], job["seconds"]
        verifier = CertificateVerifier(Ed25519PublicKey.from_public_bytes(base64.b64decode(job["swarm_key"])))
        print(json.dumps(asyncio.run(_member_joins(target, seconds, identities, verifier))))
        return
    if args.client:
        gc_policy.tune_for_a_server()  # py-libp2p hosts, as this project's nodes run them
        print(json.dumps(_client(args.client, args.mode, args.seconds, args.concurrency)))
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
