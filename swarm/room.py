"""Rooms with no owner: one room, entered through any node, with no master.

Identity: a router an application creates through any entry is a room. With
``app_data={"room": NAME}`` its id is computed, not looked up: a UUIDv5 of
the swarm id and the name (`room_id`), so two entries opening "lobby" at once
open the same room, with no directory and no race; ``app_data={"room_id":
ID}`` opens a room by id. Each entry holds its own **replica** of the room (a
vertical router with that id, on workers it places itself).

State and replication: the room's shared state is its producers. A producer's
record (room, kind, consumable RTP parameters, paused, app data, and where the
real producer lives: host peer and the ROPE id of its real router on that
peer's member server) has **one writer**: the entry the producer came
through, which publishes it as its placement ``producer:<id>``. Placements are
gossiped as each node's complete, versioned set, so merging is "the highest
version per writer wins", in any order, any number of times; a record is
removed by its writer dropping it, or by the writer leaving the view. Every
replica derives its foreign producers from the merged records and announces
changes ("newproducer"/"producerclose" on the router, ``room_producers``).

Across peers: consuming a foreign producer pipes it from its real router (on
its host, reached over the member ROPE session this node keeps with every
peer it uses) onto the consumer's real router, on demand, shared there by its
consumers and closed with the last one (`media.vertical.router`). The pipe's
transports belong to this node's sessions on those peers: if this node dies,
they close there after the grace (`media.remote.sessions`).

Failures: a dead node takes what lived on it (its producers' records leave
the view with it: every replica closes their pipes, whose consumers see
"producerclose"; consumers hosted there close with "transportclose"); the room
goes on in every other replica. A partition splits the room: each side keeps
its own producers and loses the other side's (as if those entries had died);
when it heals, the records come back and applications re-consume. A frozen
entry is, for the others, a dead one until it resumes; then its records come
back (it resends them as it refutes) and so do its producers. A pipe cut at
its source while its producer's record stays (the host gave our session up
while we were frozen) is told as the producer closing here, then, if it is
still alive where it lives, as a new producer again: the application's view
agrees with what its consumers were told, and it re-consumes (`pipe_cut`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from media.remote.server import MediasoupServer
from media.vertical import ForeignProducer, VerticalRouter
from swarm.node import SwarmNode
from swarm.view import ViewEvent

if TYPE_CHECKING:
    from swarm.media_node import SwarmMediasoup

__all__ = ["PRODUCER_PLACEMENT", "Rooms", "enter_room", "room_id"]

log = logging.getLogger("swarm.room")

PRODUCER_PLACEMENT = "producer:"
ROOM_PLACEMENT = "room:"
SOURCE_WAIT_S = 2.0


def room_id(swarm_id: str, name: str) -> str:
    """The id of the room called ``name`` in swarm ``swarm_id``: the same through every entry."""
    return str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, f"mafalda-swarm:{swarm_id}"), name))


async def enter_room(mediasoup: Any, name: str, media_codecs: list[dict[str, Any]] | None = None) -> Any:
    """What an application does to be in room ``name`` through an entry (``mediasoup``: its
    Remote Mediasoup client): a worker, then a router with ``app_data={"room": name}``,
    which is that room's replica on this entry (the same id through every entry)."""
    from media.codecs import DEFAULT_MEDIA_CODECS

    worker = await mediasoup.create_worker()
    codecs = DEFAULT_MEDIA_CODECS if media_codecs is None else media_codecs
    return await worker.create_router(media_codecs=codecs, app_data={"room": name})


class Rooms:
    """This node's room replicas, the records of their producers, and piping foreign producers in."""

    def __init__(self, node: SwarmNode, mediasoup: SwarmMediasoup, member_server: MediasoupServer) -> None:
        self._node = node
        self._mediasoup = mediasoup
        self._member_server = member_server
        self.replicas: dict[str, set[VerticalRouter]] = {}
        self._local: dict[str, tuple[VerticalRouter, dict[str, Any]]] = {}
        """Producer id -> (its replica here, its record): what this node writes."""
        self._locks: dict[int, asyncio.Lock] = {}
        self._cut: dict[int, set[str]] = {}
        """id(replica) -> foreign producers whose pipe into it was cut at the source, left out of it until
        they are found alive there again (see `pipe_cut`)."""
        self._tasks: set[asyncio.Task[None]] = set()

    # -- identity -------------------------------------------------------------------

    def router_id(self, app_data: dict[str, Any]) -> str | None:
        """The id a new router takes: from a room name, a room id, or None (a fresh room)."""
        name, given = app_data.get("room"), app_data.get("room_id")
        if given is not None:
            try:
                return str(uuid.UUID(str(given)))
            except ValueError:
                raise TypeError(f"app_data room_id must be a UUID, not {given!r}") from None
        if name is not None:
            if not isinstance(name, str) or not name or len(name) > 200:
                raise TypeError("app_data room must be a non-empty string of at most 200 characters")
            return room_id(self._node.certificate.swarm_id, name)
        return None

    # -- replicas -------------------------------------------------------------------------

    def add(self, router: VerticalRouter) -> None:
        """A replica opened here: follow the room's records, publish its producers'."""
        replicas = self.replicas.setdefault(router.id, set())
        replicas.add(router)
        router.set_foreign_source(_Piper(self, router))
        router.observer.on("produceradd", lambda producer, real: self._produced(router, producer, real))
        router.observer.on("close", lambda: self._closed(router))
        self._node.set_placement(ROOM_PLACEMENT + router.id, "room", {"entry": self._node.peer_id})
        self._refresh(router)

    def _closed(self, router: VerticalRouter) -> None:
        replicas = self.replicas.get(router.id, set())
        replicas.discard(router)
        self._locks.pop(id(router), None)
        self._cut.pop(id(router), None)
        if not replicas:
            self.replicas.pop(router.id, None)
            self._node.remove_placement(ROOM_PLACEMENT + router.id)

    def _produced(self, router: VerticalRouter, producer: Any, real_router: Any) -> None:
        where = self._locate(real_router)
        if where is None:
            log.warning("producer %s: cannot tell where its real router lives; not shared", producer.id)
            return
        host, rope_id = where
        record = {
            "room": router.id, "kind": producer.kind, "paused": bool(producer.paused),
            "app_data": dict(producer.app_data or {}), "rtp": producer.consumable_rtp_parameters,
            "host": host, "router": rope_id,
        }
        self._local[producer.id] = (router, record)
        self._node.set_placement(PRODUCER_PLACEMENT + producer.id, "producer", record)
        producer.observer.on("close", lambda: self._unproduced(router, producer.id))
        for event in ("pause", "resume"):
            producer.observer.on(event, lambda: self._paused(router, producer))
        self._refresh_room(router.id)

    def _paused(self, router: VerticalRouter, producer: Any) -> None:
        """The writer keeps its record's ``paused`` current (a new version of its placements)."""
        mine = self._local.get(producer.id)
        if mine is None:
            return
        record = {**mine[1], "paused": bool(producer.paused)}
        self._local[producer.id] = (router, record)
        self._node.set_placement(PRODUCER_PLACEMENT + producer.id, "producer", record)
        self._refresh_room(router.id)

    def _unproduced(self, router: VerticalRouter, producer_id: str) -> None:
        if self._local.pop(producer_id, None) is not None:
            self._node.remove_placement(PRODUCER_PLACEMENT + producer_id)
            self._refresh_room(router.id)

    def _locate(self, real_router: Any) -> tuple[str, str] | None:
        """(host peer id, ROPE id on its member server) of a real router of ours."""
        peer_id = self._mediasoup.peer_of(real_router)
        if peer_id is not None:
            return peer_id, real_router.proxy.id
        mirror = self._member_server.find(real_router)
        return (self._node.peer_id, mirror.id) if mirror is not None else None

    # -- the merged records -------------------------------------------------------------

    def records(self, room: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """Producer id -> (writer, record) for every producer of ``room`` this node knows."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        view = self._node.view
        for key, (owner, placement) in (view.placements() if view is not None else {}).items():
            if placement.kind == "producer" and key.startswith(PRODUCER_PLACEMENT) and \
                    placement.info.get("room") == room:
                found[key[len(PRODUCER_PLACEMENT):]] = (owner, dict(placement.info))
        for producer_id, (_router, record) in self._local.items():
            if record["room"] == room:
                found[producer_id] = (self._node.peer_id, record)
        return found

    def on_view(self, event: ViewEvent) -> None:
        if event.kind in ("placements", "removed"):
            for room in list(self.replicas):
                self._refresh_room(room)

    def _refresh_room(self, room: str) -> None:
        for router in list(self.replicas.get(room, ())):
            self._refresh(router)

    def _refresh(self, router: VerticalRouter) -> None:
        self._spawn(self._apply(router))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, router: VerticalRouter) -> None:
        lock = self._locks.setdefault(id(router), asyncio.Lock())
        async with lock:
            foreign = {}
            records = self.records(router.id)
            cut = self._cut.get(id(router), set())
            cut &= set(records)  # a record gone ends its cut: if it comes back, it is announced as new
            for producer_id, (writer, record) in records.items():
                mine = self._local.get(producer_id)
                if (mine is not None and mine[0] is router) or producer_id in cut:
                    continue
                try:
                    foreign[producer_id] = ForeignProducer(
                        id=producer_id, kind=str(record["kind"]), consumable_rtp_parameters=dict(record["rtp"]),
                        paused=bool(record.get("paused")), app_data=dict(record.get("app_data") or {}),
                        entry=writer,
                    )
                except (KeyError, TypeError, ValueError) as error:
                    log.warning("ignoring a malformed producer record from %s: %r", writer, error)
            try:
                await router.set_foreign(foreign)
            except Exception:
                log.exception("room %s: applying the producer records failed", router.id)

    def pipe_cut(self, router: VerticalRouter, producer_id: str) -> None:
        """A pipe of a foreign producer into ``router`` was cut at the source (its transport closed there,
        e.g. its host gave our session up while we were frozen), yet its record is still here.

        Its consumers here got "producerclose": the replica says the same ("producerclose", and it
        leaves ``room_producers``), so the application's view agrees with its consumers. If the
        producer is still alive where it lives, it is announced again ("newproducer") and the
        application re-consumes, as after a partition; if not, its record goes soon (its writer
        drops it) and nothing more is said."""
        if router.closed or self.record(router.id, producer_id) is None:
            return
        cut = self._cut.setdefault(id(router), set())
        if producer_id in cut:
            return
        cut.add(producer_id)
        log.info("room %s: the pipe of producer %s was cut at its source; checking it is still there",
                 router.id, producer_id)
        self._refresh(router)
        self._spawn(self._recheck(router, producer_id))

    async def _recheck(self, router: VerticalRouter, producer_id: str) -> None:
        record = self.record(router.id, producer_id)
        try:
            if record is None:
                return
            await self.source_router(producer_id, record)
        except Exception as error:  # gone there (KeyError), or its host unreachable: wait for its record to go
            log.info("room %s: producer %s not found where it lived (%r)", router.id, producer_id, error)
            return
        cut = self._cut.get(id(router))
        if cut is not None and producer_id in cut:
            cut.discard(producer_id)
            self._refresh(router)

    def record(self, room: str, producer_id: str) -> dict[str, Any] | None:
        found = self.records(room).get(producer_id)
        return found[1] if found is not None else None

    async def source_router(self, producer_id: str, record: dict[str, Any]) -> Any:
        """The real router holding a record's producer: a local one, or a peer's through its member session.

        The record comes by gossip, the objects by our ROPE session with the host: the record may be first,
        so the router and the producer get `SOURCE_WAIT_S` to show up."""
        host, rope_id = str(record["host"]), str(record["router"])
        remote = None if host == self._node.peer_id else await self._mediasoup.remote(host)
        deadline = asyncio.get_running_loop().time() + SOURCE_WAIT_S
        while True:
            router: Any = self._member_server.find_target(rope_id) if remote is None else remote.get(rope_id)
            if router is not None and not router.closed and router.get_producer(producer_id) is not None:
                return router
            if asyncio.get_running_loop().time() > deadline:
                raise KeyError(f'Producer with id "{producer_id}" not found on its router ({rope_id} on {host})')
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class _Piper:
    """`ForeignProducers` for one replica: pipes a foreign producer from where it lives."""

    def __init__(self, rooms: Rooms, router: VerticalRouter) -> None:
        self._rooms = rooms
        self._router = router

    async def pipe(self, producer_id: str, target: Any) -> Any:
        record = self._rooms.record(self._router.id, producer_id)
        if record is None:
            raise KeyError(f'Producer with id "{producer_id}" not found')
        source = await self._rooms.source_router(producer_id, record)
        result = await source.pipe_to_router(producer_id=producer_id, router=target)
        pipe_producer = result.pipe_producer

        def transport_closed() -> None:
            # Cut at the source: its end closed while ours is open. Closing from our end (the consumer
            # released, our worker lost) closes our pipe producer first: not a cut, the room stays as it is.
            if not pipe_producer.closed:
                self._rooms.pipe_cut(self._router, producer_id)

        result.pipe_consumer.on("transportclose", transport_closed)
        return pipe_producer
