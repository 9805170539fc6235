"""``mafalda-swarm simulate``: a local swarm of N node processes on 127.0.0.1.

Measures the control plane the way an operator would see it:

- ``join_s``: N-1 nodes start together; once their views are full, node N starts:
  from it listening until it is in every view and its view holds all N-1 others
  (``initial_views_s`` is the same for the first N-1, from the last one listening);
- ``converge_s``: from a load change on one node until every other view shows it
  (median of 3 changes; timestamps taken by the nodes themselves);
- ``gossip_bytes_per_node_s``: pubsub bytes sent per node per second in steady state,
  over two load heartbeats (``load_heartbeat_s``: it grows with N, see `swarm.records.heartbeat_s`)
  (protobuf RPCs: messages, IHAVE/IWANT, GRAFT/PRUNE; not Noise/yamux/TCP framing);
- ``probe_bytes_per_node_s``: SWIM probe frames sent per node per second (pings, acks,
  indirect requests; before libp2p framing), over the same window;
- ``soak_s``: optionally (``--soak S``) S seconds of steady state, e.g. under
  ``--cpu-load 2`` (spinning processes) and ``--pulse-ms 200`` (one node SIGSTOPped
  that long, then SIGCONTed, every ``--pulse-every`` seconds);
- ``detect_partition_s``: from cutting K nodes off the network (``--partition K``: every
  node then runs in a network namespace of its own, on a bridge, see `swarm.netns`; needs
  root) until every other view dropped them (``cut_side_detect_s``: until they dropped
  the others); ``heal_s``: from the reconnection, after ``--cut-for`` s, until every
  view is whole again;
- ``detect_frozen_s``: from SIGSTOPping K nodes (``--freeze K``) until every other view
  dropped them; ``rejoin_s``: from SIGCONT until they are back in every view;
- ``detect_dead_s``: from SIGKILLing K nodes until every survivor's view dropped them;
- ``false_removals``: removals, in any view during the whole run, of a node that was
  neither killed, frozen nor cut off at the time (``false_suspicions``: suspicions of such nodes,
  which they refuted);
- ``cpu_per_node_pct``: each node process's CPU over the byte-counting window.

Every node is a separate ``python -m swarm.node_cli --control`` process with its
own identity and certificate; nodes 0 and 1 are the bootstrap peers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from swarm.membership import SwarmAuthority, load_or_create_identity, peer_id_of
from swarm.netns import NetnsLab
from swarm.records import heartbeat_s

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--peers", type=int, default=5, help="number of node processes (default 5)")
    parser.add_argument("--kill", type=int, default=1, help="nodes to SIGKILL at the end (default 1)")
    parser.add_argument("--freeze", type=int, default=0, help="nodes to SIGSTOP, then SIGCONT, before the kill")
    parser.add_argument("--frozen-for", type=float, default=5.0, help="seconds the frozen nodes stay stopped")
    parser.add_argument("--partition", type=int, default=0,
                        help="nodes to cut off from the rest, then reconnect, before the freeze (each node in a "
                             "network namespace of its own: needs root)")
    parser.add_argument("--cut-for", type=float, default=5.0, help="seconds the partition lasts")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of steady state watched for false removals")
    parser.add_argument("--cpu-load", type=int, default=0, help="spinning processes sharing the CPU for the whole run")
    parser.add_argument("--pulse-ms", type=float, default=0.0, help="SIGSTOP one node this long, repeatedly")
    parser.add_argument("--pulse-every", type=float, default=1.0, help="seconds between the starts of two pulses")
    parser.add_argument("--load-interval", type=float, default=5.0, help="seconds between load messages")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="GossipSub heartbeat, seconds")
    parser.add_argument("--degree", type=int, default=4, help="GossipSub mesh degree D")
    parser.add_argument("--swim", choices=("local", "lan", "wan"), default="local", help="failure-detection preset")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds for the mesh to settle after join")
    parser.add_argument("--window", type=float, default=None,
                        help="seconds of steady state to count bytes (default: 2 load heartbeats, at least 10)")
    parser.add_argument("--phase-timeout", type=float, default=180.0, help="give up on a phase after this")
    parser.add_argument("--logs", type=Path, default=None, help="keep the nodes' logs (info level) in this directory")
    parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object of the results")
    from swarm import simulate_media

    simulate_media.add_arguments(parser)


def _progress(message: str) -> None:
    print(f"[simulate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Node:
    index: int
    peer_id: str
    process: asyncio.subprocess.Process | None = None
    ready_at: float | None = None
    view: set[str] = field(default_factory=set)
    removed_at: dict[str, float] = field(default_factory=dict)
    added_at: dict[str, float] = field(default_factory=dict)
    removals: list[tuple[str, float]] = field(default_factory=list)
    suspicions: list[tuple[str, float]] = field(default_factory=list)
    load_seen: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    alive: bool = True


class _Swarm:
    def __init__(self, args: argparse.Namespace, directory: Path, lab: NetnsLab | None = None) -> None:
        self.args = args
        self.directory = directory
        self.lab = lab
        """With `--partition`: every node in a namespace of its own, at its address there."""
        self.nodes: list[_Node] = []
        self.changed = asyncio.Event()
        self.background: list[asyncio.Task[None]] = []

    def prepare(self) -> list[list[str]]:
        authority = SwarmAuthority.generate()
        _, public_key = authority.save(self.directory / "authority")
        commands = []
        ports = [_free_port() for _ in range(min(2, self.args.peers))]
        for index in range(self.args.peers):
            node_dir = self.directory / f"node{index}"
            peer_id = peer_id_of(load_or_create_identity(node_dir / "node.key"))
            authority.issue(peer_id).save(node_dir / "node.cert")
            self.nodes.append(_Node(index, peer_id))
        bootstrap = self.directory / "bootstrap-peers.txt"
        lines = [f"/ip4/{self._ip(i)}/tcp/{port}/p2p/{self.nodes[i].peer_id}" for i, port in enumerate(ports)]
        bootstrap.write_text("# simulation\n" + "\n".join(lines) + "\n")
        for index in range(self.args.peers):
            port = ports[index] if index < len(ports) else 0
            # fmt: off
            commands.append(
                [
                    sys.executable, "-m", "swarm.node_cli", "--control",
                    "--dir", str(self.directory / f"node{index}"),
                    "--swarm-pub", str(public_key),
                    "--bootstrap", str(bootstrap),
                    "--listen", f"/ip4/{self._ip(index)}/tcp/{port}",
                    "--load-interval", str(self.args.load_interval),
                    "--heartbeat", str(self.args.heartbeat),
                    "--degree", str(self.args.degree),
                    "--swim", self.args.swim,
                    *(["-v"] if self.args.logs else []),
                ]
            )
            # fmt: on
            if self.lab is not None:
                commands[-1] = self.lab.command(index, commands[-1])
        return commands

    def _ip(self, index: int) -> str:
        return self.lab.address(index) if self.lab is not None else "127.0.0.1"

    async def spawn(self, nodes: list[_Node], commands: list[list[str]], group: asyncio.TaskGroup) -> None:
        for node in nodes:
            log_file = (self.directory / f"node{node.index}.log").open("wb")
            node.process = await asyncio.create_subprocess_exec(
                *commands[node.index],
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,  # a terminal's Ctrl-C reaches only us; we stop them in order
            )
            log_file.close()
            group.create_task(self._read_events(node))

    async def _read_events(self, node: _Node) -> None:
        assert node.process is not None and node.process.stdout is not None
        while line := await node.process.stdout.readline():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind, t = event.get("event"), float(event.get("t", time.time()))
            if kind == "ready":
                node.ready_at = t
            elif kind == "added":
                node.view.add(event["peer"])
                node.added_at[event["peer"]] = t
            elif kind == "removed":
                node.view.discard(event["peer"])
                node.removed_at[event["peer"]] = t
                node.removals.append((event["peer"], t))
            elif kind == "suspect":
                node.suspicions.append((event["peer"], t))
            elif kind == "load":
                node.load_seen[event["peer"]] = (event.get("consumers"), t)
            elif kind == "stats":
                node.stats = event
            self.changed.set()
        node.alive = False
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(self.args.phase_timeout):
            while not predicate():
                self.changed.clear()
                crashed = [
                    n.index for n in self.nodes if n.process and n.process.returncode not in (None, -signal.SIGKILL)
                ]
                if crashed:
                    raise RuntimeError(f"node(s) {crashed} exited while waiting for {what}; see {self.directory}")
                await self.changed.wait()

    async def send(self, node: _Node, command: dict[str, Any]) -> None:
        assert node.process is not None and node.process.stdin is not None
        node.process.stdin.write(json.dumps(command).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await node.process.stdin.drain()

    async def collect_stats(self, nodes: list[_Node]) -> tuple[int, int]:
        """(gossip bytes, probe bytes) sent so far by ``nodes``."""
        for node in nodes:
            node.stats = None
            await self.send(node, {"cmd": "stats"})
        await self.until(lambda: all(n.stats is not None for n in nodes), "stats")
        gossip = sum(int(n.stats["gossip_bytes_sent"]) for n in nodes if n.stats)
        return gossip, sum(int(n.stats.get("probe_bytes_sent", 0)) for n in nodes if n.stats)

    async def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    node.process.send_signal(signal.SIGCONT)  # a stopped node cannot read "quit"
        for node in self.nodes:
            if node.process is not None and node.process.returncode is None:
                with contextlib.suppress(Exception):
                    await self.send(node, {"cmd": "quit"})
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                async with asyncio.timeout(10):
                    await node.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                await node.process.wait()


async def _measure(
    swarm: _Swarm, args: argparse.Namespace, commands: list[list[str]], group: asyncio.TaskGroup
) -> dict[str, Any]:
    nodes = swarm.nodes
    first, late = nodes[:-1], nodes[-1]
    spawned = time.time()
    await swarm.spawn(first, commands, group)
    await swarm.until(lambda: all(n.ready_at is not None for n in first), "all nodes listening")
    last_ready = max(n.ready_at or 0 for n in first)
    _progress(f"{len(first)} nodes listening after {last_ready - spawned:.1f} s; waiting for full views")

    async def report_views() -> None:
        while True:
            await asyncio.sleep(2)
            sizes = sorted(len(n.view) for n in first)
            _progress(f"  views: smallest {sizes[0]}, median {sizes[len(sizes) // 2]} of {len(first) - 1}")

    reporter = asyncio.get_running_loop().create_task(report_views())
    try:
        await swarm.until(_full_views(first), "full views")
    finally:
        reporter.cancel()
    initial_s = time.time() - last_ready
    _progress(f"every view holds all {len(first) - 1} others {initial_s:.2f} s after the last node listened")

    _progress(f"starting node {late.index} to join the running swarm")
    await swarm.spawn([late], commands, group)
    await swarm.until(lambda: late.ready_at is not None, "the late node listening")
    await swarm.until(_full_views(nodes), "the late node in every view")
    assert late.ready_at is not None
    join_s = time.time() - late.ready_at
    _progress(f"node {late.index} joined (in every view, its view full) {join_s:.2f} s after it listened")

    if args.pulse_ms > 0:
        pulsed = nodes[2] if len(nodes) - args.kill - args.freeze > 2 else nodes[0]
        _progress(f"pulsing node {pulsed.index}: SIGSTOP {args.pulse_ms:.0f} ms every {args.pulse_every} s")
        swarm.background.append(group.create_task(_pulse(pulsed, args.pulse_ms / 1000, args.pulse_every)))
    await asyncio.sleep(args.settle)  # GRAFTs still in flight right after join: measure the steady mesh
    changer = nodes[-1]
    others = [n for n in nodes if n is not changer]
    rounds = []
    for value in (101, 202, 303):
        t0 = time.time()
        await swarm.send(changer, {"cmd": "load", "consumers": value})

        def seen(value: int = value) -> bool:
            return all(n.load_seen.get(changer.peer_id, (None, 0.0))[0] == value for n in others)

        await swarm.until(seen, "load convergence")
        rounds.append(max(n.load_seen[changer.peer_id][1] for n in others) - t0)
        _progress(f"load change seen by all {len(others)} others in {rounds[-1] * 1000:.0f} ms")
        await asyncio.sleep(0.5)
    converge_s = statistics.median(rounds)

    load_heartbeat = heartbeat_s(args.load_interval, len(nodes))
    window = args.window if args.window is not None else max(10.0, 2 * load_heartbeat)  # every node's heartbeat, twice
    _progress(f"counting gossip and probe bytes over {window:.0f} s of steady state")
    gossip_before, probe_before = await swarm.collect_stats(nodes)
    published_before = _published(nodes)
    cpu_before = _cpu_seconds(nodes)
    t0 = time.time()
    await asyncio.sleep(window)
    gossip_after, probe_after = await swarm.collect_stats(nodes)
    elapsed = time.time() - t0
    published = {
        why: round((count - published_before.get(why, 0)) / elapsed / len(nodes), 3)
        for why, count in sorted(_published(nodes).items())
    }
    gossip_rate = (gossip_after - gossip_before) / elapsed / len(nodes)
    probe_rate = (probe_after - probe_before) / elapsed / len(nodes)
    cpu_pct = 100 * (_cpu_seconds(nodes) - cpu_before) / elapsed / len(nodes)
    _progress(f"{gossip_rate:.0f} gossip + {probe_rate:.0f} probe bytes/s and {cpu_pct:.1f} % of a core per node")
    _progress(f"  messages published per node per second: {published}")
    probe = [n.stats.get("probe", {}) for n in nodes if n.stats]
    p50s = sorted(p["rtt_p50_ms"] for p in probe if p.get("rtt_p50_ms") is not None)
    p99s = sorted(p["rtt_p99_ms"] for p in probe if p.get("rtt_p99_ms") is not None)
    if p50s and p99s:
        failures = sum(p.get("direct_failures", 0) for p in probe)
        _progress(f"  ping round trip: median of nodes' p50 {p50s[len(p50s) // 2]} ms, worst p99 {p99s[-1]} ms; "
                  f"{failures} direct probe failures so far, health {[p.get('health') for p in probe]}")

    kill = max(0, min(args.kill, len(nodes) - 2))
    freeze = max(0, min(args.freeze, len(nodes) - 2 - kill))
    killed, frozen = nodes[len(nodes) - kill :], nodes[len(nodes) - kill - freeze : len(nodes) - kill]
    since: dict[str, list[tuple[float, float]]] = {}
    """victim -> when it was stopped or killed (until when): removals of it then are right."""

    if args.soak > 0:
        _progress(f"soak: {args.soak:.0f} s of steady state, watching for false removals")
        end = time.time() + args.soak
        while (left := end - time.time()) > 0:
            await asyncio.sleep(min(30.0, left))
            wrong = _false(nodes, since)
            _progress(f"  {end - time.time():.0f} s left: {wrong[0]} false removals, {wrong[1]} false suspicions")

    partition = max(0, min(args.partition, len(nodes) - 2 - kill - freeze))
    detect_partition_s = cut_side_s = heal_s = None
    if partition:
        detect_partition_s, cut_side_s, heal_s = await _partition(swarm, args, nodes, partition, kill + freeze, since)
        await asyncio.sleep(args.settle)

    detect_frozen_s = rejoin_s = None
    if freeze:
        others = [n for n in nodes if n not in frozen]
        stopped = {v.peer_id for v in frozen}
        t0 = time.time()
        for victim in frozen:
            assert victim.process is not None
            since[victim.peer_id] = [(t0, float("inf"))]
            victim.process.send_signal(signal.SIGSTOP)
        _progress(f"SIGSTOPped {freeze} node(s); waiting for every other node to drop them")
        await swarm.until(lambda: all(not (n.view & stopped) for n in others), "frozen peers removed")
        detect_frozen_s = max(n.removed_at[p] for n in others for p in stopped) - t0
        _progress(f"all {len(others)} others dropped the {freeze} frozen in {detect_frozen_s:.2f} s")
        await asyncio.sleep(max(0.0, t0 + args.frozen_for - time.time()))
        t1 = time.time()
        for victim in frozen:
            assert victim.process is not None
            victim.process.send_signal(signal.SIGCONT)
        await swarm.until(_full_views(nodes), "the frozen nodes back in every view")
        rejoin_s = max(n.added_at[p] for n in others for p in stopped) - t1
        back = time.time()
        for victim in frozen:  # from now on, a removal of them is a false one again
            since[victim.peer_id] = [(t0, back)]
        _progress(f"SIGCONT after {t1 - t0:.1f} s: back in every view in {rejoin_s:.2f} s")
        if kill:  # the thawed nodes work through seconds of backlog first: measure the kill on a settled swarm
            await asyncio.sleep(args.settle)

    detect_s: float | None = None
    if kill:
        survivors = nodes[: len(nodes) - kill]
        dead = {v.peer_id for v in killed}
        t0 = time.time()
        for victim in killed:
            assert victim.process is not None
            since.setdefault(victim.peer_id, []).append((t0, float("inf")))
            victim.process.send_signal(signal.SIGKILL)
        _progress(f"SIGKILLed {kill} node(s); waiting for every survivor to drop them")
        await swarm.until(lambda: all(not (n.view & dead) for n in survivors), "dead peers removed")
        detect_s = max(n.removed_at[p] for n in survivors for p in dead) - t0
        _progress(f"all {len(survivors)} survivors dropped the {kill} dead in {detect_s:.2f} s")
    false_removals, false_suspicions = _false(nodes, since)
    return {
        "peers": len(nodes),
        "killed": kill,
        "startup_s": round(last_ready - spawned, 3),
        "initial_views_s": round(initial_s, 3),
        "join_s": round(join_s, 3),
        "converge_s": round(converge_s, 4),
        "converge_rounds_s": [round(r, 4) for r in rounds],
        "gossip_bytes_per_node_s": round(gossip_rate, 1),
        "published_per_node_s": published,
        "probe_bytes_per_node_s": round(probe_rate, 1),
        "cpu_per_node_pct": round(cpu_pct, 2),
        "soak_s": args.soak,
        "cpu_load": args.cpu_load,
        "pulse_ms": args.pulse_ms,
        "partitioned": partition,
        "detect_partition_s": None if detect_partition_s is None else round(detect_partition_s, 3),
        "cut_side_detect_s": None if cut_side_s is None else round(cut_side_s, 3),
        "heal_s": None if heal_s is None else round(heal_s, 3),
        "frozen": freeze,
        "detect_frozen_s": None if detect_frozen_s is None else round(detect_frozen_s, 3),
        "rejoin_s": None if rejoin_s is None else round(rejoin_s, 3),
        "detect_dead_s": None if detect_s is None else round(detect_s, 3),
        "false_removals": false_removals,
        "false_suspicions": false_suspicions,
        "load_interval_s": args.load_interval,
        "heartbeat_s": args.heartbeat,
        "load_heartbeat_s": load_heartbeat,
        "ttl_s": 6 * load_heartbeat,
    }


def _full_views(group_of: list[_Node]) -> Callable[[], bool]:
    everyone = {n.peer_id for n in group_of}
    return lambda: all(n.view == everyone - {n.peer_id} for n in group_of)


async def _partition(
    swarm: _Swarm, args: argparse.Namespace, nodes: list[_Node], count: int, spared: int,
    since: dict[str, list[tuple[float, float]]],
) -> tuple[float, float, float]:
    """Cut ``count`` nodes (before the last ``spared``, kept for freeze and kill) off from the rest for
    ``--cut-for`` s, then reconnect them: (seconds until the rest dropped them, until they dropped the
    rest, and after the reconnection until every view was whole again). The cut side's views are not
    judged meanwhile."""
    assert swarm.lab is not None
    cut = nodes[len(nodes) - spared - count : len(nodes) - spared]
    rest = [n for n in nodes if n not in cut]
    cut_ids, rest_ids = {n.peer_id for n in cut}, {n.peer_id for n in rest}
    t0 = time.time()
    for victim in cut:
        since[victim.peer_id] = [(t0, float("inf"))]
        swarm.lab.cut(victim.index)
    _progress(f"cut {count} node(s) off the network; waiting for both sides to drop each other")
    await swarm.until(
        lambda: all(not (n.view & cut_ids) for n in rest) and all(not (n.view & rest_ids) for n in cut),
        "the two sides of the partition dropping each other",
    )
    detect_s = max(n.removed_at[p] for n in rest for p in cut_ids) - t0
    cut_side_s = max(n.removed_at[p] for n in cut for p in rest_ids) - t0
    _progress(f"the rest dropped the cut node(s) in {detect_s:.2f} s; the cut side dropped the rest in "
              f"{cut_side_s:.2f} s (it cannot tell that it is the one cut off: Lifeguard slows its accusations)")
    await asyncio.sleep(max(0.0, t0 + args.cut_for - time.time()))
    t1 = time.time()
    for victim in cut:
        swarm.lab.heal(victim.index)
    await swarm.until(_full_views(nodes), "the partition healed")  # nobody is dead yet: the kill comes last
    heal_s = max(
        *(n.added_at[p] for n in rest for p in cut_ids), *(n.added_at[p] for n in cut for p in rest_ids)
    ) - t1
    back = time.time()
    for victim in cut:
        since[victim.peer_id] = [(t0, back)]
    _progress(f"reconnected after {t1 - t0:.1f} s: every view whole again in {heal_s:.2f} s")
    return detect_s, cut_side_s, heal_s


def _published(nodes: list[_Node]) -> dict[str, int]:
    """Messages the nodes published so far, summed by why (load heartbeat, change...)."""
    total: dict[str, int] = {}
    for node in nodes:
        for why, count in ((node.stats or {}).get("published") or {}).items():
            total[why] = total.get(why, 0) + int(count)
    return total


def _false(nodes: list[_Node], since: dict[str, list[tuple[float, float]]]) -> tuple[int, int]:
    """(removals, suspicions) of nodes that were running at the time, in the views of
    nodes that were running too (a frozen node's view is not judged until it is back)."""

    def down(peer_id: str, t: float) -> bool:
        return any(start <= t <= end for start, end in since.get(peer_id, ()))

    index = {n.peer_id: n.index for n in nodes}

    def wrong(events: list[tuple[str, float]], observer: _Node, what: str) -> int:
        bad = [(peer, t) for peer, t in events if not down(peer, t) and not down(observer.peer_id, t)]
        for peer, t in bad[:5]:
            when = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 10) % 10}"
            _progress(f"  node {observer.index}: {what} node {index.get(peer)} at {when}")
        return len(bad)

    return (
        sum(wrong(n.removals, n, "removed") for n in nodes),
        sum(wrong(n.suspicions, n, "suspected") for n in nodes),
    )


async def _pulse(node: _Node, stopped_s: float, every_s: float) -> None:
    """Slow one node down the way a busy host does: stopped, then running, over and over."""
    assert node.process is not None
    with contextlib.suppress(ProcessLookupError):
        while node.process.returncode is None:
            node.process.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(stopped_s)
            finally:
                node.process.send_signal(signal.SIGCONT)
            await asyncio.sleep(max(0.0, every_s - stopped_s))


@contextlib.asynccontextmanager
async def _cpu_load(count: int) -> Any:
    """``count`` processes spinning on the CPU for the whole run (stopped on exit)."""
    spinners = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass", start_new_session=True)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            with contextlib.suppress(ProcessLookupError):
                spinner.kill()
            await spinner.wait()


def _cpu_seconds(nodes: list[_Node]) -> float:
    total = 0.0
    for node in nodes:
        if node.process is not None and node.process.returncode is None:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(node.process.pid).cpu_times()
                total += times.user + times.system
    return total


def _table(results: dict[str, Any]) -> str:
    rows = [
        ("peers (processes)", f"{results['peers']}"),
        ("load interval / load heartbeat / GossipSub heartbeat",
         f"{results['load_interval_s']} s / {results['load_heartbeat_s']} s / {results['heartbeat_s']} s"),
        (f"startup of {results['peers'] - 1} (spawn -> all listening)", f"{results['startup_s']:.2f} s"),
        ("first views (all listening -> full views)", f"{results['initial_views_s']:.2f} s"),
        ("join of one more node (listening -> in every view)", f"{results['join_s']:.2f} s"),
        ("view convergence after a load change", f"{results['converge_s'] * 1000:.0f} ms (median of 3)"),
        ("gossip bytes per node per second", f"{results['gossip_bytes_per_node_s']:.0f} B/s"),
        ("probe bytes per node per second", f"{results['probe_bytes_per_node_s']:.0f} B/s"),
        ("CPU per node (steady state)", f"{results['cpu_per_node_pct']:.1f} % of a core"),
        ("background load / pulsed node", f"{results['cpu_load']} spinning / {results['pulse_ms']:.0f} ms pulses"),
        (f"soak: {results['soak_s']:.0f} s", f"{results['false_removals']} false removals, "
                                               f"{results['false_suspicions']} false suspicions (whole run)"),
        (f"partition: {results['partitioned']} node(s) cut off, the rest drop them",
         _seconds(results["detect_partition_s"])),
        ("  the cut side drops the rest", _seconds(results["cut_side_detect_s"])),
        ("  every view whole after the reconnection", _seconds(results["heal_s"])),
        (f"detect {results['frozen']} SIGSTOPped node(s)", _seconds(results["detect_frozen_s"])),
        ("  back in every view after SIGCONT", _seconds(results["rejoin_s"])),
        (f"detect {results['killed']} SIGKILLed node(s)", _seconds(results["detect_dead_s"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _print_log_tails(directory: Path) -> None:
    for log in sorted(directory.glob("node*.log")):
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        if tail:
            print(f"--- {log.name}\n" + "\n".join(tail), file=sys.stderr)


async def run(args: argparse.Namespace) -> int:
    """SIGTERM (``timeout``, a supervisor) cancels the run instead of ending the process, so the
    cleanup still runs: every node process (a frozen one SIGCONTed first) is stopped, none outlives us."""
    task = asyncio.current_task()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await _run(args)
    except asyncio.CancelledError:
        if not terminated:
            raise
        print("mafalda-swarm simulate: terminated; every node stopped", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run(args: argparse.Namespace) -> int:
    if getattr(args, "media", False):
        from swarm import simulate_media

        return await simulate_media.run(args)
    if args.peers < 2:
        print("mafalda-swarm simulate: --peers must be at least 2", file=sys.stderr)
        return 2
    if args.partition and (why := NetnsLab.unavailable()) is not None:
        print(f"mafalda-swarm simulate: --partition {why}", file=sys.stderr)
        return 2
    namespaces = NetnsLab(args.peers) if args.partition else contextlib.nullcontext()
    with namespaces as lab, tempfile.TemporaryDirectory(prefix="mafalda-swarm-sim-") as tmp:
        swarm = _Swarm(args, Path(tmp), lab)
        commands = swarm.prepare()
        _progress(f"starting {args.peers} node processes (bootstrap: nodes 0 and 1) in {tmp}")
        results: dict[str, Any] | None = None
        failures: list[BaseException] = []
        try:
            async with _cpu_load(args.cpu_load), asyncio.TaskGroup() as group:
                try:
                    results = await _measure(swarm, args, commands, group)
                finally:
                    for task in swarm.background:
                        task.cancel()
                    _progress("stopping the nodes")
                    await swarm.stop()
        except* (TimeoutError, RuntimeError) as errors:
            failures.extend(errors.exceptions)
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in Path(tmp).glob("node*.log"):  # noqa: ASYNC240 (a few small files, at the end)
                shutil.copy(log, args.logs / log.name)
        if failures:
            for error in failures:
                print(f"mafalda-swarm simulate: failed: {error!r}", file=sys.stderr)
            _print_log_tails(Path(tmp))
            return 1
    assert results is not None
    print(_table(results))
    if args.json:
        print(json.dumps(results))
    return 0
