"""A media node of the swarm: real workers, shared with members, and rooms that span peers.

Every node is equal and any node is an entry point. A node
- runs mediasoup workers and serves them to swarm members over ROPE on its
  libp2p host (members only: libp2p peer identities are the trust root);
- gossips its load (consumers and capacity per worker, CPU) through `SwarmNode`;
- announces that it serves media (placement ``media:<peer id>`` with its
  worker cap), so only media nodes are placement candidates: a monitor never
  gets a worker;
- offers applications mediasoup's API whose routers are vertical routers:
  each worker such a router needs is started on the media member that looks
  least loaded from the gossiped view (this node, with its own CPU, or a
  peer), never past any node's ``--workers`` (a full swarm is a clear
  `CapacityError`), so one room is not limited by one machine; producers are
  piped between workers on demand.
- publishes which rooms it hosts as placements ("room" → its peer id).

Ownership: everything made through either server belongs to the session
that made it (`media.remote.sessions`); a session gone past the grace
(``grace_s``) has its objects closed where they live. So workers an entry
started here close when the entry dies or leaves the view, and a node back
from a freeze closes what the others gave up on (they closed their sessions).

Failover: when a peer leaves the view (killed, frozen past its TTL, or its
ROPE stream cannot be re-opened), its remote workers "die"; the vertical
layer closes what lived on them with their events, and clients re-consume on
the workers that remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psutil

from media.horizontal import Candidate, Horizontal
from media.remote.client import RemoteMediasoup, connect_libp2p
from media.remote.server import MediasoupServer
from media.remote.sessions import SESSION_GRACE_S
from media.stats import count_worker, transport_stats
from media.vertical import Capacity, CapacityError, Vertical
from rope import members_only
from rope.client import ReconnectPolicy
from rope.libp2p import serve_libp2p
from swarm.node import SwarmNode
from swarm.records import MACHINE_CPU_POINTS, LoadReport, WorkerLoad, process_memory_bytes
from swarm.room import Rooms
from swarm.view import SwarmView, ViewEvent

log = logging.getLogger("swarm.media_node")

BITRATE_REFRESH_S = 2.0
BITRATE_MAX_TRANSPORTS = 1000

PEER_RECONNECT = ReconnectPolicy(initial_delay=0.05, max_delay=0.5, max_attempts=4)
"""A peer whose ROPE stream cannot be re-opened in 4 tries is treated as gone: ~1 s when its address
refuses. A dial that hangs (a machine gone) waits for the membership handshake's timeout, but the
view gives such a peer up sooner, and that ends the session at once (`MediaPeer.lost`)."""


MEDIA_PLACEMENT = "media:"
"""A node that serves media announces the placement ``media:<its peer id>`` with
``{"max_workers": N}``: only such members are placement candidates (a monitor, or a
control-plane-only node, never gets a worker), and N is that node's own hard cap."""


class LocalWorkers:
    """The `media` back-end, remembering the workers it started (for load reports), at most ``max_workers``."""

    def __init__(self, backend: Any, capacity: Capacity) -> None:
        self._backend = backend
        self.capacity = capacity
        self.workers: list[Any] = []
        self._starting = 0
        self._bitrates_at = -BITRATE_REFRESH_S
        self._bitrate = (0.0, 0.0)

    async def create_worker(self, **settings: Any) -> Any:
        if len(self.workers) + self._starting >= self.capacity.max_workers:
            raise CapacityError(f"this node runs its maximum of {self.capacity.max_workers} worker(s)")
        self._starting += 1
        try:
            worker = await self._backend.create_worker(**settings)
        finally:
            self._starting -= 1
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


class _CpuMeter:
    """This machine's CPU share since the last reading, as peers measure theirs (psutil, all cores).

    Kept apart from ``psutil.cpu_percent()``, whose module-wide baseline the node's
    load publisher owns (two callers would halve each other's interval)."""

    def __init__(self) -> None:
        self._last = psutil.cpu_times()
        self._percent = 0.0

    def percent(self) -> float:
        now = psutil.cpu_times()
        busy = sum(now) - now.idle - (sum(self._last) - self._last.idle)
        total = sum(now) - sum(self._last)
        if total >= 0.2 * (psutil.cpu_count() or 1):  # at least ~0.2 s of samples, else keep the last figure
            self._percent = max(0.0, min(100.0, 100.0 * busy / total))
            self._last = now
        return self._percent


CPU_TIE_PERCENT = MACHINE_CPU_POINTS
"""CPU readings closer than this count as equal: they are sampled over different windows, and a
peer's gossiped figure may lag its present one by up to this much (smaller moves wait for the
heartbeat, `swarm.records.significant_change`), so a finer margin would place by noise."""


def media_peers(view: SwarmView | None) -> dict[str, int]:
    """Members that announced they serve media, with the worker cap each announced."""
    found: dict[str, int] = {}
    for peer_id, state in (view.peers() if view is not None else {}).items():
        placement = state.placements.placements.get(MEDIA_PLACEMENT + peer_id) if state.placements else None
        if placement is None:
            continue
        cap = placement.info.get("max_workers")
        if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
            found[peer_id] = cap
    return found


async def member_session(node: SwarmNode, peer_id: str, **options: Any) -> RemoteMediasoup:
    """A session with ``peer_id``'s member server (Remote Mediasoup over libp2p). Its gate admits
    proved members only, and we may hold no proved connection to it: before it first connects and
    before each reconnection, `SwarmNode.connect_member` makes one if need be (from the address its
    load record gossips), so the session does not wait for someone else to redial."""
    return await connect_libp2p(node.host, peer_id, dial=lambda: node.connect_member(peer_id), **options)


class MediaPeer:
    """One media member as a back-end: our member session with it (Remote Mediasoup over libp2p), opened
    on first use and again after it ended, shared by placement and by the rooms piping from it."""

    def __init__(self, node: SwarmNode, peer_id: str) -> None:
        self._node = node
        self.peer_id = peer_id
        self._remote: RemoteMediasoup | None = None
        self._connecting: asyncio.Future[RemoteMediasoup] | None = None

    def __repr__(self) -> str:
        return f"<media peer {self.peer_id}>"

    @property
    def remote(self) -> RemoteMediasoup | None:
        """The open session, if any."""
        return self._remote

    async def session(self) -> RemoteMediasoup:
        if self._remote is not None:
            return self._remote
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        pending = self._connecting = asyncio.get_running_loop().create_future()
        try:
            remote = await member_session(self._node, self.peer_id, reconnect=PEER_RECONNECT)
        except BaseException as error:
            pending.set_exception(error)
            pending.exception()
            raise
        finally:
            self._connecting = None
        self._remote = remote
        remote.client.on("close", lambda: self._ended(remote))
        pending.set_result(remote)
        return remote

    def _ended(self, remote: RemoteMediasoup) -> None:
        if self._remote is remote:
            self._remote = None

    async def create_worker(self, **settings: Any) -> Any:
        return await (await self.session()).create_worker(**settings)

    async def lost(self) -> None:
        """The view dropped this peer: its workers die for us now, not when TCP notices."""
        remote, self._remote = self._remote, None
        if remote is not None:
            # Ending the ROPE session (not RemoteMediasoup.close(), which means "we
            # stop using it") reads as losing the server: its workers emit "died".
            await remote.client.close()
            await remote.client.connection.close()

    async def close(self) -> None:
        remote, self._remote = self._remote, None
        if remote is not None:
            await remote.close()


@dataclass(frozen=True)
class NodeLoad:
    """A placement candidate as the swarm sees it."""

    peer_id: str
    workers: int
    """Its workers: as its gossiped load report shows them, or as many as we run there if more,
    plus those we are starting there (this node's own: exact)."""
    cpu_percent: float
    max_workers: int
    is_self: bool = False
    candidate: Candidate | None = field(default=None, compare=False, repr=False)


class GossipedLoad:
    """The swarm's placement policy: each member's load and cap as the view tells them.

    A candidate is this node (its own workers and CPU, exact) or a member announcing
    ``media:<peer id>`` with a load record (a monitor never is one), at most the workers
    it announced (its ``--workers``): a full one is left out, and when every one is
    full `CapacityError` says so. Fewest workers first (the vertical layer fills a
    worker before asking for another, so this spreads load), then the lowest CPU;
    within `CPU_TIE_PERCENT` of it, this node (no hop) first.
    """

    needs_cpu: ClassVar[bool] = False

    def __init__(self, node: SwarmNode, local: LocalWorkers) -> None:
        self._node = node
        self._local = local
        self._cpu = _CpuMeter()

    def loads(self, candidates: Sequence[Candidate]) -> list[NodeLoad]:
        view = self._node.view
        caps = media_peers(view)
        found = []
        for candidate in candidates:
            backend = candidate.backend
            if backend is self._local:
                found.append(NodeLoad(self._node.peer_id, len(self._local.workers) + candidate.starting,
                                      self._cpu.percent(), self._local.capacity.max_workers, True, candidate))
                continue
            peer_id = getattr(backend, "peer_id", None)
            record = view.load(peer_id) if view is not None and peer_id is not None else None
            if peer_id not in caps or record is None or "monitor" in record.roles:
                continue
            workers = max(len(record.workers), candidate.workers) + candidate.starting
            found.append(NodeLoad(peer_id, workers, record.cpu_percent, caps[peer_id], False, candidate))
        return found

    def choose(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        loads = self.loads(candidates)
        with_room = [load for load in loads if load.workers < load.max_workers]
        if not with_room:
            total = sum(load.max_workers for load in loads)
            raise CapacityError(f"the swarm is full: {len(loads)} media node(s) run their maximum of "
                                f"{total} worker(s) in all")
        best = _best(with_room)
        rest = sorted((load for load in with_room if load is not best),
                      key=lambda load: (load.workers, load.cpu_percent))
        return [load.candidate for load in (best, *rest) if load.candidate is not None]


def _best(loads: list[NodeLoad]) -> NodeLoad:
    fewest = min(load.workers for load in loads)
    tier = [load for load in loads if load.workers == fewest]
    lowest = min(load.cpu_percent for load in tier)
    near = [load for load in tier if load.cpu_percent <= lowest + CPU_TIE_PERCENT]
    return min(near, key=lambda load: (not load.is_self, load.cpu_percent))


class SwarmMediasoup(Horizontal):
    """mediasoup's `create_worker()` over the whole swarm: `media.horizontal.Horizontal` whose back-ends
    are this node's workers and one `MediaPeer` per media member of the view, placed by `GossipedLoad`.

    The back-ends follow the view at each placement (a member announcing media joins, one gone
    leaves); a peer dropped by the view has its workers die (`peer_gone`)."""

    def __init__(self, node: SwarmNode, local: LocalWorkers) -> None:
        self.gossiped = GossipedLoad(node, local)
        super().__init__([local], self.gossiped)
        self._node = node
        self._local = local
        self._peers: dict[str, MediaPeer] = {}
        """Every member we have a session with (or may): candidates and the rooms' piping sources."""

    def candidates(self) -> list[NodeLoad]:
        """Where a worker could go now, and how loaded each place looks (full ones included)."""
        self._follow_view()
        return self.gossiped.loads([
            Candidate(backend, index, len(self.workers_of(backend))) for index, backend in enumerate(self.backends)
        ])

    async def _candidates(self) -> list[Candidate]:
        self._follow_view()
        return await super()._candidates()

    def _follow_view(self) -> None:
        placeable = media_peers(self._node.view)
        for backend in self.backends:
            if isinstance(backend, MediaPeer) and backend.peer_id not in placeable:
                self._detach(backend)  # no longer serves media: no new workers there, the old ones run on
        for peer_id in placeable:
            if peer_id != self._node.peer_id:
                peer = self.peer(peer_id)
                if peer not in self.backends:
                    self.add(peer)

    def peer(self, peer_id: str) -> MediaPeer:
        found = self._peers.get(peer_id)
        if found is None:
            found = self._peers[peer_id] = MediaPeer(self._node, peer_id)
        return found

    def peer_of(self, obj: Any) -> str | None:
        """The member whose process holds ``obj``: this node for one of its own workers, else the
        peer whose member server holds it (a remote object of ours); None if neither."""
        if obj in self._local.workers:
            return self._node.peer_id
        owner = getattr(obj, "_mediasoup", None)
        for peer_id, peer in self._peers.items():
            if owner is not None and peer.remote is owner:
                return peer_id
        return None

    async def remote(self, peer_id: str) -> RemoteMediasoup:
        """Our member session with ``peer_id`` (one per peer, opened on first use)."""
        return await self.peer(peer_id).session()

    async def peer_gone(self, peer_id: str) -> None:
        """The view dropped this peer: its workers die for us now, not when TCP notices."""
        peer = self._peers.pop(peer_id, None)
        if peer is not None:
            await peer.lost()
            if peer in self.backends:
                await self.remove(peer)

    async def close(self) -> None:
        """Our sessions end (what we made on peers closes there after their grace); local workers stay
        the node's (`LocalWorkers.close`)."""
        for peer in list(self._peers.values()):
            await peer.close()
        self._peers.clear()


class MediaNode:
    """A `SwarmNode` plus media: workers for members, and an entry point for applications."""

    def __init__(self, node: SwarmNode, backend: Any, capacity: Capacity | None = None, *,
                 grace_s: float = SESSION_GRACE_S) -> None:
        self.node = node
        self.capacity = capacity or Capacity()
        self.grace_s = grace_s
        self.local = LocalWorkers(backend, self.capacity)
        self.mediasoup = SwarmMediasoup(node, self.local)
        self.member_server = MediasoupServer(self.local, authorize=members_only(node.is_member), grace_s=grace_s)
        """Workers for members: what an entry made here is closed when the entry is gone past the grace.
        It also exposes this node's own workers (owned by nobody there), so that other entries can pipe
        producers of our rooms out of them."""
        self.mediasoup.observer.on("newworker", self._new_worker)
        self.room_replicas = Rooms(node, self.mediasoup, self.member_server)
        self.vertical = Vertical(self.mediasoup, Capacity(
            max_workers=1_000_000,  # the swarm bounds it: each node takes at most capacity.max_workers
            max_consumers_per_worker=self.capacity.max_consumers_per_worker,
            watermark_cpu=self.capacity.watermark_cpu,
        ), router_id=self.room_replicas.router_id)
        self.rooms: dict[str, Any] = {}
        """Vertical routers entered through this node, by id (the first replica of each room here)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._entry_servers: list[MediasoupServer] = []

    def _new_worker(self, worker: Any) -> None:
        """A worker placed for our own rooms: one started here is exposed to the members too, so that
        other entries can pipe producers of our rooms out of it."""
        if worker in self.local.workers:
            self.member_server.mirror(worker, self.member_server.root)

    async def start(self) -> None:
        serve_libp2p(self.member_server.rope, self.node.host)
        self.node.set_load_provider(self.local.report)
        self.node.set_placement(MEDIA_PLACEMENT + self.node.peer_id, "media",
                                {"max_workers": self.capacity.max_workers})
        if self.node.view is not None:
            self.node.view.add_listener(self._on_view)

    def _on_view(self, event: ViewEvent) -> None:
        self.room_replicas.on_view(event)
        if event.kind == "removed":
            self.member_server.peer_gone(event.peer_id)  # its sessions here: gone, their grace starts
            for server in self._entry_servers:
                server.peer_gone(event.peer_id)
            task = asyncio.get_running_loop().create_task(self.mediasoup.peer_gone(event.peer_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def entry_server(self, authorize: Any) -> MediasoupServer:
        """mediasoup's API for applications (rooms span the swarm), to serve over WebSocket."""
        server = MediasoupServer(self, authorize=authorize, grace_s=self.grace_s)
        self._entry_servers.append(server)
        return server

    async def create_worker(self, **settings: Any) -> Any:
        """What applications get: a worker whose routers draw on the whole swarm."""
        worker = await self.vertical.create_worker(**settings)
        worker.observer.on("newrouter", self._announce_room)
        return worker

    def _announce_room(self, router: Any) -> None:
        self.rooms.setdefault(router.id, router)
        self.room_replicas.add(router)

        room = router.id

        def forget() -> None:
            if self.rooms.get(room) is router:
                del self.rooms[room]

        router.observer.on("close", forget)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.room_replicas.close()
        await self.mediasoup.close()
        await self.member_server.close(close_workers=False)
        await self.local.close()
