"""``mafalda-swarm simulate --media``: one room across a local swarm, real WebRTC clients, one node killed.

What it shows, with real parts only: N node processes (``mafalda-swarm node
--media --entry-port``) on 127.0.0.1, created and admitted on the fly; one
aiortc client per node, each entering the **same room** ("demo": the same id
through every entry) through its own entry node, sending a synthetic VP8
video and receiving everyone else's. Every second it prints, per client, the
frames received from each other client and which node serves it (the node
whose worker holds its receive transport, found from the UDP port). Then it
SIGKILLs one node: the others' consumers of the clients it served close
("producerclose"), the room goes on, and the client whose entry died joins
again through another entry (same room id) and everyone re-consumes it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:  # aiortc and libp2p load in run(): `simulate --help` and argument errors answer before that
    from media.aiortc_client import AiortcClient
    from media.remote.client import RemoteMediasoup
    from swarm.local_swarm import LocalSwarm, NodeProcess

__all__ = ["add_arguments", "run"]

NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
ROOM = "demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``simulate --media`` (the control-plane options of ``simulate`` are ignored with it)."""
    group = parser.add_argument_group("media (simulate --media)")
    group.add_argument("--media", action="store_true",
                       help="one room across a local swarm of media nodes, real aiortc clients, then kill a node")
    group.add_argument("--media-nodes", type=int, default=3, help="node processes, one client each (default 3)")
    group.add_argument("--seconds", type=float, default=4.0, help="seconds of media printed per phase (default 4)")
    group.add_argument("--kill-node", type=int, default=1, help="index of the node to SIGKILL (default 1)")


def _progress(message: str) -> None:
    print(f"[simulate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class _Client:
    name: str
    entry: NodeProcess
    app: RemoteMediasoup
    router: Any
    rtc: AiortcClient
    producer_of: dict[str, str] = field(default_factory=dict)
    """Producer id -> the client that sent it (every client's, for labels)."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def own(self) -> set[str]:
        return set(self.rtc.producers)

    def frames_from(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for producer_id, track in self.rtc.received.items():
            consumer = self.rtc.consumers.get(track.consumer_id)
            if track.ended or consumer is None or consumer.closed:
                continue  # its producer (or the node serving it) is gone: not part of the room any more
            sender = self.producer_of.get(producer_id, producer_id[:8])
            found[sender] = found.get(sender, 0) + track.frames
        return found


def _serving_node(client: _Client, swarm: LocalSwarm) -> str:
    """The node whose worker holds this client's receive transport (from the transport's UDP port)."""
    server = client.rtc._recv_server
    return "-" if server is None else _node_of(server, swarm)


def _node_of(transport: Any, swarm: LocalSwarm) -> str:
    """The node whose worker listens on this WebRTC transport's UDP port."""
    ports = {candidate["port"] for candidate in transport.ice_candidates or ()}
    for node in swarm.nodes.values():
        if not node.alive:
            continue
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(node.pid).children():
                with contextlib.suppress(psutil.Error):
                    if any(conn.laddr and conn.laddr.port in ports for conn in child.net_connections(kind="udp")):
                        return node.name
    return "?"


class _Room:
    def __init__(self, swarm: LocalSwarm) -> None:
        self.swarm = swarm
        self.clients: dict[str, _Client] = {}
        self.senders: dict[str, str] = {}
        """Producer id -> client name, as clients announce what they send."""

    async def join(self, name: str, entry: NodeProcess) -> _Client:
        assert entry.entry_url is not None
        from media.aiortc_client import AiortcClient
        from media.remote.client import connect_websocket
        from swarm.room import enter_room

        app = await connect_websocket(entry.entry_url, token=self.swarm.token)
        router = await enter_room(app, ROOM)
        rtc = AiortcClient(router, name=name)
        await rtc.join()
        client = _Client(name, entry, app, router, rtc, self.senders)
        for producer in await rtc.send(video=True, audio=False):
            self.senders[producer.id] = name
        self.clients[name] = client
        router.on("newproducer", lambda record: self._consume(client, record["id"]))
        for record in router.room_producers or ():
            self._consume(client, record["id"])
        return client

    def _consume(self, client: _Client, producer_id: str) -> None:
        if self.clients.get(client.name) is not client:
            return  # a client that left (its router's late events)
        if producer_id in client.own or producer_id in client.rtc.received:
            return
        if self.senders.get(producer_id) == client.name:
            return  # its own, from before it entered again (it went with the dead entry)

        async def consume() -> None:
            try:
                await client.rtc.receive(producer_id)
            except Exception as error:  # the producer left meanwhile, or its node died: the room goes on
                if self.clients.get(client.name) is client:  # not a client that left (entered again) meanwhile
                    _progress(f"{client.name} could not consume {producer_id[:8]}: {error}")

        task = asyncio.get_running_loop().create_task(consume())
        client.tasks.add(task)
        task.add_done_callback(client.tasks.discard)

    async def leave(self, name: str, *, entry_dead: bool = False) -> None:
        client = self.clients.pop(name)
        for task in list(client.tasks):
            task.cancel()
        if entry_dead:
            await client.app.close()  # first: calls to a dead entry then fail at once instead of timing out
        with contextlib.suppress(Exception):
            await client.rtc.close()
        await client.app.close()

    def line(self) -> str:
        parts = []
        for client in self.clients.values():
            frames = client.frames_from()
            received = ", ".join(f"{sender} {count}" for sender, count in sorted(frames.items())) or "nothing yet"
            parts.append(f"{client.name}@{client.entry.name} served by {_serving_node(client, self.swarm)}: "
                         f"{received}")
        return " | ".join(parts)

    def snapshot(self) -> dict[str, Any]:
        return {
            client.name: {"entry": client.entry.name, "served_by": _serving_node(client, self.swarm),
                          "frames_from": client.frames_from()}
            for client in self.clients.values()
        }


async def _phase(room: _Room, title: str, seconds: float) -> dict[str, Any]:
    print(f"-- {title}", flush=True)
    start = time.monotonic()
    for second in range(max(1, int(seconds))):
        await asyncio.sleep(max(0.0, start + second + 1 - time.monotonic()))
        print(f"   t+{second + 1}s  {room.line()}", flush=True)
    return room.snapshot()


def _everyone_receives(room: _Room, frames: int) -> bool:
    names = set(room.clients)
    for client in room.clients.values():
        got = client.frames_from()
        if any(got.get(other, 0) < frames for other in names - {client.name}):
            return False
    return True


async def _wait(room: _Room, frames: int, what: str, within: float = 60.0) -> float:
    start = time.monotonic()
    try:
        await room.swarm.until(lambda: _everyone_receives(room, frames), what, within=within)
    except TimeoutError:
        print(f"   (still waiting for {what}: {room.line()})", file=sys.stderr)
        raise
    return time.monotonic() - start


async def run(args: argparse.Namespace) -> int:
    count = args.media_nodes
    if not 2 <= count <= len(NAMES):
        print(f"mafalda-swarm simulate --media: --media-nodes must be 2..{len(NAMES)}", file=sys.stderr)
        return 2
    if not 0 <= args.kill_node < count:
        print("mafalda-swarm simulate --media: --kill-node must name one of the nodes", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"nodes": count, "room": ROOM}
    with tempfile.TemporaryDirectory(prefix="mafalda-swarm-media-") as tmp:
        from swarm.local_swarm import LocalSwarm

        async with LocalSwarm(Path(tmp), load_interval_s=1.0, session_grace_s=5.0) as swarm:
            room = _Room(swarm)
            try:
                return await _simulate(swarm, room, args, results)
            except (TimeoutError, RuntimeError) as error:
                print(f"mafalda-swarm simulate --media: failed: {error}", file=sys.stderr)
                for node in swarm.nodes.values():
                    print(f"--- {node.name}\n{node.log_tail(5)}", file=sys.stderr)
                return 1
            finally:
                for name in list(room.clients):
                    await room.leave(name)


async def _simulate(swarm: LocalSwarm, room: _Room, args: argparse.Namespace, results: dict[str, Any]) -> int:
    count = args.media_nodes
    t0 = time.monotonic()
    nodes = []
    for index in range(count):
        node = await swarm.start_node(f"n{index}", workers=2)
        nodes.append(node)
        _progress(f"node n{index} admitted and serving media ({node.peer_id[-8:]}), entry {node.entry_url}")
    results["swarm_ready_s"] = round(time.monotonic() - t0, 2)
    for index in range(count):
        client = await room.join(NAMES[index], nodes[index])
        _progress(f"{client.name} entered room {ROOM!r} ({client.router.id}) through n{index}")
    results["room_id"] = next(iter(room.clients.values())).router.id
    results["first_media_s"] = round(await _wait(room, 5, "everyone receiving everyone"), 2)
    results["before"] = await _phase(room, f"{count} clients in one room, each through its own entry node",
                                     args.seconds)

    victim = nodes[args.kill_node]
    entered = [client.name for client in room.clients.values() if client.entry is victim]
    served = [client.name for client in room.clients.values() if client.entry is not victim and any(
        _node_of(transport, swarm) == victim.name for transport in client.rtc._server_transports)]
    _progress(f"SIGKILL node {victim.name} (entry of {', '.join(entered) or 'nobody'}; "
              f"serving {', '.join(served) or 'nobody else'})")
    killed_at = time.monotonic()
    swarm.kill(victim.name)
    survivors = [node for node in nodes if node is not victim]
    for index, name in enumerate(entered + served):  # their transports died: they join again
        old_entry = room.clients[name].entry
        await room.leave(name, entry_dead=old_entry is victim)
        entry = survivors[index % len(survivors)] if old_entry is victim else old_entry
        await room.join(name, entry)
        _progress(f"{name} entered room {ROOM!r} again through {entry.name}")
    results["media_again_s"] = round(await _wait(room, 5, "everyone receiving everyone again"), 2)
    results["kill_to_media_s"] = round(time.monotonic() - killed_at, 2)
    results["after"] = await _phase(room, f"after SIGKILL of {victim.name}: the room carries on", args.seconds)
    await swarm.until(lambda: not swarm.in_view(victim), f"{victim.name} out of the view", within=60)
    results["killed"] = victim.name
    print(f"room {results['room_id']}: {count} nodes up in {results['swarm_ready_s']} s, everyone receiving "
          f"everyone {results['first_media_s']} s after the last client joined; SIGKILL of {victim.name} -> "
          f"everyone receiving everyone again in {results['kill_to_media_s']} s")
    if args.json:
        print(json.dumps(results))
    return 0
