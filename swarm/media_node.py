"""A media node of the swarm: real workers, shared with members, and rooms that span peers.

Every node is equal and any node is an entry point. A node
- runs mediasoup workers and serves them to swarm members over ROPE on its
  libp2p host (members only: libp2p peer identities are the trust root);
- gossips its load (consumers and capacity per worker, CPU) through `SwarmNode`;
- offers applications mediasoup's API whose routers are vertical routers:
  each worker such a router needs is started on the swarm member that looks
  least loaded from the gossiped view (this node or a peer), so one room is
  not limited by one machine; producers are piped between workers on demand.
- publishes which rooms it hosts as placements ("room" → its peer id).

Failover: when a peer leaves the view (killed, frozen past its TTL, or its
ROPE stream cannot be re-opened), its remote workers "die"; the vertical
layer closes what lived on them with their events, and clients re-consume on
the workers that remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from media.remote.client import RemoteMediasoup, connect_libp2p
from media.remote.server import MediasoupServer
from media.stats import count_worker, transport_stats
from media.vertical import Capacity, Vertical
from rope import members_only
from rope.client import ReconnectPolicy
from rope.libp2p import serve_libp2p
from swarm.node import SwarmNode
from swarm.records import LoadReport, WorkerLoad, process_memory_bytes
from swarm.view import ViewEvent

log = logging.getLogger("swarm.media_node")

BITRATE_REFRESH_S = 2.0
BITRATE_MAX_TRANSPORTS = 1000

PEER_RECONNECT = ReconnectPolicy(initial_delay=0.05, max_delay=0.5, max_attempts=4)
"""A peer whose ROPE stream cannot be re-opened within ~1 s is treated as gone."""


class LocalWorkers:
    """The `media` back-end, remembering the workers it started (for load reports)."""

    def __init__(self, backend: Any, capacity: Capacity) -> None:
        self._backend = backend
        self.capacity = capacity
        self.workers: list[Any] = []
        self._bitrates_at = -BITRATE_REFRESH_S
        self._bitrate = (0.0, 0.0)

    async def create_worker(self, **settings: Any) -> Any:
        worker = await self._backend.create_worker(**settings)
        self.workers.append(worker)
        worker.observer.on("close", lambda: self.workers.remove(worker) if worker in self.workers else None)
        return worker

    async def report(self) -> LoadReport:
        """Per worker: client consumers against capacity and pipe consumers apart; the node's
        memory (this process and its workers) and bitrate in/out (every transport, pipes too)."""
        loads = []
        memory = process_memory_bytes()
        for worker in self.workers:
            counts = count_worker(worker)
            cpu = None
            with contextlib.suppress(Exception):
                cpu = worker.cpu_percent()
            with contextlib.suppress(psutil.Error):
                memory += psutil.Process(worker.pid).memory_info().rss
            loads.append(WorkerLoad(str(worker.pid), counts["consumers"], self.capacity.max_consumers_per_worker,
                                    cpu, counts["pipe_consumers"]))
        bitrate_in, bitrate_out = await self._bitrates()
        return LoadReport(tuple(loads), bitrate_in, bitrate_out, memory)

    async def _bitrates(self) -> tuple[float, float]:
        """Summed transport bitrates, asked of the workers at most every BITRATE_REFRESH_S:
        load reports can come every 0.2 s under churn and each transport costs a request."""
        now = time.monotonic()
        if now - self._bitrates_at >= BITRATE_REFRESH_S:
            self._bitrates_at = now
            stats = await transport_stats(self.workers, max_transports=BITRATE_MAX_TRANSPORTS)
            self._bitrate = (float(sum(t["recv_bitrate"] or 0 for t in stats)),
                             float(sum(t["send_bitrate"] or 0 for t in stats)))
        return self._bitrate

    async def close(self) -> None:
        for worker in list(self.workers):
            await worker.close()


@dataclass
class _Candidate:
    peer_id: str
    workers: int
    cpu_percent: float
    max_workers: int
    is_self: bool = field(default=False)

    def key(self) -> tuple[float, float, int]:
        # Fewest workers first (the vertical layer fills a worker before asking
        # for another, so this spreads load), then lowest CPU, this node on ties.
        return (self.workers, self.cpu_percent, 0 if self.is_self else 1)


class SwarmMediasoup:
    """mediasoup's `create_worker()` over the whole swarm: each worker goes to the least loaded member."""

    def __init__(self, node: SwarmNode, local: LocalWorkers, *, max_workers_per_node: int | None = None) -> None:
        self._node = node
        self._local = local
        self._max_workers = max_workers_per_node
        self._remotes: dict[str, RemoteMediasoup] = {}
        self._connecting: dict[str, asyncio.Future[RemoteMediasoup]] = {}
        self._pending: dict[str, int] = {}
        """Workers we started on a peer that its gossip may not show yet."""

    def candidates(self) -> list[_Candidate]:
        local_max = self._max_workers or os.cpu_count() or 1
        found = [_Candidate(self._node.peer_id, len(self._local.workers), 0.0, local_max, is_self=True)]
        view = self._node.view
        for peer_id in view.peers() if view is not None else {}:
            record = view.load(peer_id) if view is not None else None
            if record is None or "monitor" in record.roles:  # a monitor never hosts workers
                continue
            shown = len(record.workers)
            ours = len(self._remote_workers(peer_id))
            found.append(_Candidate(
                peer_id, max(shown, ours) + self._pending.get(peer_id, 0), record.cpu_percent,
                self._max_workers or record.cpu_count,
            ))
        return found

    def peer_of(self, worker: Any) -> str | None:
        """The member whose process runs this real worker (for monitoring)."""
        if worker in self._local.workers:
            return self._node.peer_id
        return next((peer for peer, remote in self._remotes.items() if worker in remote.workers), None)

    def _remote_workers(self, peer_id: str) -> list[Any]:
        remote = self._remotes.get(peer_id)
        return remote.workers if remote is not None else []

    def choose(self) -> str:
        candidates = self.candidates()
        with_room = [c for c in candidates if c.workers < c.max_workers] or candidates
        return min(with_room, key=_Candidate.key).peer_id

    async def create_worker(self, **settings: Any) -> Any:
        peer_id = self.choose()
        if peer_id == self._node.peer_id:
            worker = await self._local.create_worker(**settings)
        else:
            remote = await self._remote(peer_id)
            self._pending[peer_id] = self._pending.get(peer_id, 0) + 1
            try:
                worker = await remote.create_worker(**settings)
            finally:
                self._pending[peer_id] -= 1
        log.info("new worker on %s", "this node" if peer_id == self._node.peer_id else peer_id)
        return worker

    async def _remote(self, peer_id: str) -> RemoteMediasoup:
        remote = self._remotes.get(peer_id)
        if remote is not None:
            return remote
        pending = self._connecting.get(peer_id)
        if pending is not None:
            return await pending
        pending = asyncio.get_running_loop().create_future()
        self._connecting[peer_id] = pending
        try:
            remote = await connect_libp2p(self._node.host, peer_id, reconnect=PEER_RECONNECT)
        except BaseException as error:
            pending.set_exception(error)
            pending.exception()
            raise
        finally:
            self._connecting.pop(peer_id, None)
        self._remotes[peer_id] = remote
        remote.client.on("close", lambda: self._remotes.pop(peer_id, None))
        pending.set_result(remote)
        return remote

    async def peer_gone(self, peer_id: str) -> None:
        """The view dropped this peer: its workers die for us now, not when TCP notices."""
        remote = self._remotes.pop(peer_id, None)
        if remote is not None:
            # Ending the ROPE session (not RemoteMediasoup.close(), which means "we
            # stop using it") reads as losing the server: its workers emit "died".
            await remote.client.close()
            await remote.client.connection.close()

    async def close(self) -> None:
        for remote in list(self._remotes.values()):
            await remote.close()
        self._remotes.clear()


class MediaNode:
    """A `SwarmNode` plus media: workers for members, and an entry point for applications."""

    def __init__(self, node: SwarmNode, backend: Any, capacity: Capacity | None = None) -> None:
        self.node = node
        self.capacity = capacity or Capacity()
        self.local = LocalWorkers(backend, self.capacity)
        self.mediasoup = SwarmMediasoup(node, self.local, max_workers_per_node=self.capacity.max_workers)
        self.vertical = Vertical(self.mediasoup, Capacity(
            max_workers=1_000_000,  # the swarm bounds it: each node takes at most capacity.max_workers
            max_consumers_per_worker=self.capacity.max_consumers_per_worker,
            watermark_cpu=self.capacity.watermark_cpu,
        ))
        self.member_server = MediasoupServer(self.local, authorize=members_only(node.is_member))
        self.rooms: dict[str, Any] = {}
        """Vertical routers entered through this node, by id."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        serve_libp2p(self.member_server.rope, self.node.host)
        self.node.set_load_provider(self.local.report)
        if self.node.view is not None:
            self.node.view.add_listener(self._on_view)

    def _on_view(self, event: ViewEvent) -> None:
        if event.kind == "removed":
            task = asyncio.get_running_loop().create_task(self.mediasoup.peer_gone(event.peer_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def entry_server(self, authorize: Any) -> MediasoupServer:
        """mediasoup's API for applications (rooms span the swarm), to serve over WebSocket."""
        server = MediasoupServer(self, authorize=authorize)
        return server

    async def create_worker(self, **settings: Any) -> Any:
        """What applications get: a worker whose routers draw on the whole swarm."""
        worker = await self.vertical.create_worker(**settings)
        worker.observer.on("newrouter", self._announce_room)
        return worker

    def _announce_room(self, router: Any) -> None:
        self.rooms[router.id] = router
        self.node.set_placement(f"room:{router.id}", "room", {"entry": self.node.peer_id})

        def forget() -> None:
            self.rooms.pop(router.id, None)
            self.node.remove_placement(f"room:{router.id}")

        router.observer.on("close", forget)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.mediasoup.close()
        await self.member_server.close(close_workers=False)
        await self.local.close()
