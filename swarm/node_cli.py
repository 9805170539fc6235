"""``mafalda-swarm node`` (and ``python -m swarm.node_cli``): run one swarm node.

The node directory holds ``node.key`` (the libp2p identity, created on first
start, mode 0600) and ``node.cert`` (issued by ``mafalda-swarm admit``). With
``--control`` the node also speaks a line protocol for the local simulation:
JSON events on stdout, JSON commands on stdin (see `_Control`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm import gc_policy, logs
from swarm.bootstrap import BootstrapError, load_bootstrap
from swarm.membership import (
    Certificate,
    CertificateError,
    CertificateVerifier,
    identity_peer_id,
    load_or_create_identity,
    load_swarm_public_key,
    peer_id_of,
)
from swarm.monitor import options as http_options
from swarm.records import LoadReport, WorkerLoad
from swarm.view import ViewEvent

if TYPE_CHECKING:  # swarm.node imports libp2p (about a second): argument errors answer before that
    from swarm.node import SwarmNode

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("."), help="node directory (node.key, node.cert)")
    parser.add_argument("--swarm-pub", type=Path, default=None, help="the swarm's public key (default: DIR/swarm.pub)")
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", help="listen multiaddr")
    parser.add_argument("--bootstrap", type=Path, default=Path("bootstrap-peers.txt"), help="bootstrap peers file")
    parser.add_argument("--load-interval", type=float, default=5.0, help="seconds between load messages")
    parser.add_argument("--ttl", type=float, default=None, help="seconds others keep us without news (3 periods)")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="GossipSub heartbeat, seconds")
    parser.add_argument("--degree", type=int, default=4, help="GossipSub mesh degree D")
    parser.add_argument("--target-peers", type=int, default=4, help="connections kept through peer exchange")
    parser.add_argument("--swim", choices=("local", "lan", "wan"), default="local",
                        help="failure-detection preset (swarm.swim.SwimConfig): one machine, a LAN, a WAN")
    parser.add_argument("--print-peer-id", action="store_true", help="create the identity if needed, print its id")
    parser.add_argument("--control", action="store_true", help="JSON events on stdout, commands on stdin")
    media = parser.add_argument_group("media (an SFU node)")
    media.add_argument("--media", action="store_true", help="run mediasoup workers and share them with members")
    media.add_argument("--workers", type=int, default=None, help="workers this node runs at most (default: CPUs)")
    media.add_argument("--consumers-per-worker", type=int, default=500, help="consumers a worker takes at most")
    media.add_argument("--entry-port", type=int, default=None,
                       help="serve mediasoup's API to application servers over WebSocket on this port (with --media)")
    media.add_argument("--entry-host", default="127.0.0.1", help="address of the WebSocket entry point")
    media.add_argument("--session-grace", type=float, default=None, metavar="SECONDS",
                       help="how long a session (an application's, or an entry node's) may be gone before what it "
                            "made here is closed (default 10)")
    media.add_argument("--token-file", type=Path, default=None,
                       help="file holding the token application servers present (default: DIR/entry.token)")
    http_options.add_arguments(parser)


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.time(), **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class _Control:
    """The simulation's line protocol.

    Commands: ``{"cmd": "load", "consumers": N}`` (simulate a load change),
    ``{"cmd": "stats"}`` (answers a ``stats`` event), ``{"cmd": "quit"}``.
    Events: ``ready``, ``added``/``removed`` (view membership, with its size),
    ``suspect``/``alive`` (a suspicion raised / refuted),
    ``load`` (a peer's worker figures changed), ``stats``.
    """

    def __init__(self, node: SwarmNode, stop: asyncio.Event) -> None:
        self.node = node
        self.stop = stop
        self.consumers = 0

    def on_view(self, event: ViewEvent) -> None:
        view = self.node.view
        assert view is not None
        if event.kind in ("added", "removed", "suspect", "alive"):
            _emit(event.kind, peer=event.peer_id, size=len(view))
        elif event.kind == "load":
            load = view.load(event.peer_id)
            _emit("load", peer=event.peer_id, consumers=load.consumers if load else None)

    def report(self) -> LoadReport:
        return LoadReport(workers=(WorkerLoad("sim-worker", self.consumers, 500),))

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while line := await reader.readline():
                try:
                    command = json.loads(line)
                    name = command["cmd"]
                except (ValueError, KeyError, TypeError):
                    log.warning("bad control line %r", line)
                    continue
                if name == "load":
                    self.consumers = int(command["consumers"])
                    self.node.notify_load_changed()
                elif name == "stats":
                    view = self.node.view
                    _emit(
                        "stats",
                        gossip_bytes_sent=self.node.gossip_bytes_sent,
                        probe_bytes_sent=self.node.probe_bytes_sent,
                        incarnation=self.node.incarnation,
                        probe=self.node.probe_stats(),
                        view=len(view) if view else 0,
                        members=len(self.node.members()),
                        published=dict(self.node.published),
                    )
                elif name == "quit":
                    break
        finally:
            transport.close()
            self.stop.set()


def build_node(args: argparse.Namespace, key_pair: Any) -> SwarmNode:
    """A SwarmNode from the node directory and the common options (also used by `monitor`)."""
    from swarm.node import NodeOptions, SwarmNode
    from swarm.swim import SwimConfig

    directory: Path = args.dir
    certificate = Certificate.load(directory / "node.cert")
    verifier = CertificateVerifier(load_swarm_public_key(args.swarm_pub or directory / "swarm.pub"))
    verifier.verify(certificate, peer_id_of(key_pair))
    options = NodeOptions(
        listen=args.listen,
        bootstrap=load_bootstrap(args.bootstrap),
        gossip_heartbeat_s=args.heartbeat,
        load_interval_s=args.load_interval,
        ttl_s=args.ttl,
        target_peers=args.target_peers,
        gossip_degree=args.degree,
        swim=getattr(SwimConfig, getattr(args, "swim", "local"))(),
    )
    return SwarmNode(key_pair, certificate, verifier, options)


SHUTDOWN_DEADLINE_S = 10.0
"""A node asked to stop exits within this, closed or not. Closing waits on peers and workers
(seen once: nodes of a killed simulation hung in close for good, ignoring SIGTERM); a node
that outlives its stop request is a process no one controls."""


async def _exit_past_deadline(stop: asyncio.Event) -> None:
    """Once stop is asked for, a daemon thread (not the event loop, which a hung close may
    block) ends the process if it is still there after SHUTDOWN_DEADLINE_S."""
    await stop.wait()

    def force() -> None:
        print(f"mafalda-swarm node: not closed {SHUTDOWN_DEADLINE_S:.0f} s after the stop request; exiting",
              file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(SHUTDOWN_DEADLINE_S, force)
    timer.daemon = True
    timer.start()


async def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        peer_id = identity_peer_id(directory / "node.key")
    except (OSError, ValueError) as error:
        print(f"mafalda-swarm node: {error}", file=sys.stderr)
        return 2
    if args.print_peer_id:
        print(peer_id)
        return 0
    # The first line, before libp2p is imported (about a second, more on a busy box).
    logs.announce(__name__, f"node {peer_id} starting")
    key_pair = load_or_create_identity(directory / "node.key")
    try:
        http = http_options.http_config(args)
        node = build_node(args, key_pair)
    except (OSError, CertificateError, BootstrapError, ValueError) as error:
        print(f"mafalda-swarm node: {error}", file=sys.stderr)
        return 2
    from media.cpus import shared_cpu

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    deadline = asyncio.create_task(_exit_past_deadline(stop))
    try:
        async with shared_cpu(), node:
            assert node.view is not None
            logs.set_peer_id(node.peer_id)
            gc_policy.tune_for_a_server()  # the host is up: what it imported and built stays
            if args.control:
                control = _Control(node, stop)
                node.set_load_provider(control.report)
                node.view.add_listener(control.on_view)
                _emit("ready", peer=node.peer_id, addrs=node.listen_addrs)
                async with asyncio.TaskGroup() as group:
                    serving = group.create_task(control.serve())
                    await stop.wait()
                    serving.cancel()
            elif args.media:
                return await _run_media_node(node, args, stop, http)
            else:
                async with http_options.page(http, node):
                    logs.announce(__name__, f"node {node.peer_id} listening on {' '.join(node.listen_addrs)}")
                    await stop.wait()
    finally:
        deadline.cancel()  # stopped without a stop request (an error): no deadline to keep
    return 0


async def _run_media_node(node: SwarmNode, args: argparse.Namespace, stop: asyncio.Event,
                          http: http_options.HttpConfig | None) -> int:
    """An SFU node: workers for members; with --entry-port, an entry point for application servers."""
    import os

    import media
    from media.stats import get_stats
    from media.vertical import Capacity
    from rope import token_auth
    from rope.websocket import WebSocketListener
    from swarm.media_node import MediaNode
    from swarm.monitor.rooms import RoomSpans

    capacity = Capacity(max_workers=args.workers or os.cpu_count() or 1,
                        max_consumers_per_worker=args.consumers_per_worker)
    from media.remote.sessions import SESSION_GRACE_S

    grace = SESSION_GRACE_S if args.session_grace is None else args.session_grace
    media_node = MediaNode(node, media, capacity, grace_s=grace)
    await media_node.start()
    spans = RoomSpans(media_node)
    spans.start()
    listener = entry = None
    try:
        if args.entry_port is not None:
            token_path = args.token_file or args.dir / "entry.token"
            try:
                token = token_path.read_text().strip()
            except OSError as error:
                print(f"mafalda-swarm node: cannot read the entry token: {error}", file=sys.stderr)
                return 2
            entry = media_node.entry_server(token_auth(token))
            listener = await WebSocketListener(entry.rope, host=args.entry_host, port=args.entry_port).start()
        logs.announce(__name__, f"media node {node.peer_id} listening on {' '.join(node.listen_addrs)}"
                      + (f"; applications: {listener.url}" if listener else ""))
        async with http_options.page(http, node, lambda: get_stats(media_node.local.workers)):
            await stop.wait()
    finally:
        await spans.close()
        if listener is not None:
            await listener.close()
        if entry is not None:
            await entry.close(close_workers=True)
        await media_node.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m swarm.node_cli", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_arguments(parser)
    logs.add_arguments(parser)
    args = parser.parse_args()
    logs.configure(args.verbose, args.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
