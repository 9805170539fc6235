"""A Router that spans many real routers (and workers), with on-demand piping.

Transports are placed on the real router whose worker is busiest but still has
room (CPU-cache locality, fewer pipes). A producer lives on its transport's
real router; a consumer on another real router gets it through a pipe created
at consume() time and closed when its last consumer there goes, so streams
spread as a tree that follows demand rather than EduMeet's full mesh of
producers x (workers - 1) pipes.

Observer events (besides mediasoup's): "newpipe" (producer id, real router),
"pipeclose" (producer id), "produceradd" (producer, its real router) and
"realrouterclose" (a real router that closed under us, e.g. its worker died:
what reads `real_routers`, over Remote Mediasoup too, hears of it).

A router can also be one replica of a room that spans entry points: its
owner gives it `ForeignProducers` (producers that entered through other
replicas, and how to pipe one onto a real router of ours) and calls
`set_foreign` when that set changes. Consuming a foreign producer pipes it,
on demand, onto the consumer's real router, shared there by every consumer
of it and closed with the last one, as for our own producers. The property
``room_producers`` lists every producer of the room (ours and foreign), and
the application events "newproducer" (its record) and "producerclose" (its
id) tell each change.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from media import ortc
from media.errors import NotFoundError, WorkerClosedError, closed_error
from media.events import EventEmitter
from media.vertical.pool import codecs_key
from media.vertical.rtp_observer import VerticalRtpObserver
from media.vertical.transport import VerticalTransport

if TYPE_CHECKING:
    from media.vertical.pool import WorkerPool

logger = logging.getLogger("media.vertical")


@dataclass
class _Pipe:
    """One producer piped into one real router, shared by that router's consumers of it."""

    ready: asyncio.Future[Any]
    """Settles to the pipe producer on the target router (closing it undoes the pipe)."""
    users: int = 0


@dataclass(frozen=True)
class ForeignProducer:
    """What a replica knows of a producer that entered elsewhere: enough to check and consume it."""

    id: str
    kind: str
    consumable_rtp_parameters: dict[str, Any]
    paused: bool = False
    app_data: dict[str, Any] = field(default_factory=dict)
    entry: str | None = None
    """Where it entered (the writer of its record)."""


class ForeignProducers(Protocol):
    async def pipe(self, producer_id: str, target: Any) -> Any:
        """Make the foreign producer consumable on real router ``target``; returns the pipe producer there
        (closing it undoes the pipe)."""
        ...


@dataclass
class VerticalPipeResult:
    """pipe_to_router between vertical routers of one pool shares real routers: no PipeTransport."""

    pipe_consumer: Any
    pipe_producer: Any


class VerticalRouter(EventEmitter):
    def __init__(
        self,
        *,
        pool: WorkerPool,
        key: str,
        media_codecs: list[dict[str, Any]] | None,
        app_data: dict[str, Any] | None,
        router_id: str | None = None,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._key = key
        self._media_codecs = media_codecs
        self._rtp_capabilities = ortc.generate_router_rtp_capabilities(ortc.clone(media_codecs or []))
        self._closed = False
        self._worker_closed = False
        self._real_routers: list[Any] = []
        self._transports: dict[str, VerticalTransport] = {}
        self._homes: dict[str, tuple[Any, Any]] = {}
        """Producer id -> (the real producer, the real router its media enters)."""
        self._pipes: dict[tuple[str, int], _Pipe] = {}
        self._rtp_observers: dict[str, VerticalRtpObserver] = {}
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        self._id = router_id or str(uuid.uuid4())
        self._foreign: dict[str, ForeignProducer] = {}
        self._foreign_source: ForeignProducers | None = None

    id = property(lambda self: self._id)
    closed = property(lambda self: self._closed)
    rtp_capabilities = property(lambda self: self._rtp_capabilities)

    def update_media_codecs(self, media_codecs: list[dict[str, Any]]) -> None:
        """mediasoup 3.27's updateMediaCodecs(): new RTP capabilities for what is created from now on.
        Real routers placed from now on have these codecs; those placed already keep theirs (and what
        they carry), as a single router's existing producers and consumers do."""
        self._rtp_capabilities = ortc.generate_router_rtp_capabilities(ortc.clone(media_codecs))
        self._media_codecs = media_codecs
        self._key = codecs_key(media_codecs)

    @property
    def real_routers(self) -> list[Any]:
        """The real routers this vertical router currently uses (for monitoring and tests)."""
        return list(self._real_routers)

    @property
    def transports(self) -> dict[str, VerticalTransport]:
        return dict(self._transports)

    @property
    def producers(self) -> dict[str, Any]:
        return {producer_id: producer for producer_id, (producer, _) in self._homes.items()}

    @property
    def homes(self) -> dict[str, Any]:
        """Producer id -> the real router its media enters, for our producers (see `home_router`)."""
        return {producer_id: home for producer_id, (_, home) in self._homes.items()}

    def get_producer(self, producer_id: str) -> Any:
        """Ours (the real producer), else a foreign one (`ForeignProducer`), else None."""
        home = self._homes.get(producer_id)
        return home[0] if home else self._foreign.get(producer_id)

    @property
    def room_producers(self) -> list[dict[str, Any]]:
        """Every producer of the room, ours and foreign: id, kind, paused, app_data, entry (None: ours)."""
        ours = [_record(producer, None) for producer, _ in self._homes.values()]
        theirs = [_record(producer, producer.entry) for producer in self._foreign.values()]
        return sorted(ours + theirs, key=lambda record: record["id"])

    def set_foreign_source(self, source: ForeignProducers) -> None:
        self._foreign_source = source

    async def set_foreign(self, producers: dict[str, ForeignProducer]) -> None:
        """The room's foreign producers now: new ones are announced, gone ones closed here (their pipes,
        so their consumers see "producerclose") and announced."""
        if self._closed:
            return
        gone = [producer_id for producer_id in self._foreign if producer_id not in producers]
        added = [producer for producer_id, producer in producers.items()
                 if producer_id not in self._foreign and producer_id not in self._homes]
        for producer_id in gone:
            del self._foreign[producer_id]
        for producer in added:
            self._foreign[producer.id] = producer
        for producer_id, producer in producers.items():
            if producer_id in self._foreign and self._foreign[producer_id] != producer:
                self._foreign[producer_id] = producer  # e.g. paused changed: room_producers follows
        for producer_id in gone:
            for (piped, _), pipe in list(self._pipes.items()):
                if piped == producer_id and pipe.ready.done() and not pipe.ready.exception():
                    await pipe.ready.result().close()
            self.emit("producerclose", producer_id)
        for producer in added:
            self.emit("newproducer", _record(producer, producer.entry))

    @property
    def pipe_count(self) -> int:
        """Pipes (producer x real router) alive now."""
        return len(self._pipes)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error("Router", worker_closed=self._worker_closed)

    def as_one_router(self, attribute: Any) -> Any:
        """A real object's attribute as its caller should see it: its async methods raise as on one
        router. The pool closes a real worker once it is idle, so a real object of a closed vertical
        router may be on a closed worker while this router's (vertical) worker lives: that is mediasoup's
        `NotFoundError` (the object is gone), not `WorkerClosedError`."""
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        method: Callable[..., Any] = attribute

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except WorkerClosedError as error:
                if self._worker_closed:
                    raise
                raise NotFoundError(f"{type(getattr(method, '__self__', None)).__name__} closed") from error

        return call

    # --- transports ------------------------------------------------------------

    async def _place(self) -> Any:
        router = await self._pool.acquire_router(self._key, self._media_codecs)
        if router in self._real_routers:
            await self._pool.release_router(router)  # one reference per vertical router is enough
        else:
            self._real_routers.append(router)
            router.observer.on("close", lambda: self._real_router_gone(router))
        return router

    def _real_router_gone(self, router: Any) -> None:
        if router in self._real_routers:
            self._real_routers.remove(router)
            if not self._closed:
                self.observer.emit("realrouterclose", router)

    async def _create(self, method: str, **options: Any) -> VerticalTransport:
        self._check_open()
        real_router = await self._place()
        inner = await getattr(real_router, method)(**options)
        transport = VerticalTransport(inner, self)
        self._transports[inner.id] = transport
        inner.observer.on("close", lambda: self._transports.pop(inner.id, None))
        self.observer.emit("newtransport", transport)
        return transport

    async def create_webrtc_transport(self, **options: Any) -> VerticalTransport:
        return await self._create("create_webrtc_transport", **options)

    async def create_plain_transport(self, **options: Any) -> VerticalTransport:
        return await self._create("create_plain_transport", **options)

    async def create_direct_transport(self, **options: Any) -> VerticalTransport:
        return await self._create("create_direct_transport", **options)

    async def create_pipe_transport(self, **options: Any) -> VerticalTransport:
        return await self._create("create_pipe_transport", **options)

    # --- RTP observers ----------------------------------------------------------------

    async def create_audio_level_observer(self, **options: Any) -> VerticalRtpObserver:
        return await self._create_rtp_observer("create_audio_level_observer", options)

    async def create_active_speaker_observer(self, **options: Any) -> VerticalRtpObserver:
        return await self._create_rtp_observer("create_active_speaker_observer", options)

    async def _create_rtp_observer(self, method: str, options: dict[str, Any]) -> VerticalRtpObserver:
        """An observer lives on one real router; the producers it watches are piped there."""
        self._check_open()
        anchor = self._real_routers[0] if self._real_routers else await self._place()
        inner = await getattr(anchor, method)(**options)
        rtp_observer = VerticalRtpObserver(inner, self, anchor)
        self._rtp_observers[inner.id] = rtp_observer
        rtp_observer.on("@close", lambda: self._rtp_observers.pop(inner.id, None))
        self.observer.emit("newrtpobserver", rtp_observer)
        return rtp_observer

    # --- dump ---------------------------------------------------------------------------

    async def dump(self) -> dict[str, Any]:
        """mediasoup's Router dump, merged over the real routers and limited to this router's objects."""
        self._check_open()
        transports = set(self._transports)
        observers = set(self._rtp_observers)
        consumers = {c for t in self._transports.values() for c in t.consumers}
        producers = set(self._homes)
        merged: dict[str, Any] = {"id": self._id, "transportIds": [], "rtpObserverIds": []}
        maps = ("mapProducerIdConsumerIds", "mapConsumerIdProducerId", "mapProducerIdObserverIds",
                "mapDataProducerIdDataConsumerIds", "mapDataConsumerIdDataProducerId")
        for key in maps:
            merged[key] = []
        for router in self._real_routers:
            dump = await router.dump()
            merged["transportIds"] += [t for t in dump.get("transportIds", []) if t in transports]
            merged["rtpObserverIds"] += [o for o in dump.get("rtpObserverIds", []) if o in observers]
            for key in maps:
                for entry in dump.get(key) or []:
                    owner = entry.get("key")
                    if owner in producers or owner in consumers or owner in transports:
                        merged[key].append(entry)
        return merged

    # --- producers and on-demand pipes ------------------------------------------

    def _adopt_producer(self, producer: Any, real_router: Any) -> None:
        self._homes[producer.id] = (producer, real_router)

        def gone() -> None:
            if self._homes.pop(producer.id, None) is not None and not self._closed:
                self.emit("producerclose", producer.id)

        producer.observer.on("close", gone)
        self.observer.emit("produceradd", producer, real_router)
        self.emit("newproducer", _record(producer, None))

    def can_consume(self, *, producer_id: str, rtp_capabilities: dict[str, Any]) -> bool:
        producer = self.get_producer(producer_id)
        if producer is None:
            return False
        return ortc.can_consume_with(producer.consumable_rtp_parameters, rtp_capabilities)

    def home_router(self, producer_id: str) -> Any:
        """The real router our producer's media enters (NotFoundError, a KeyError, for a foreign or unknown one)."""
        home = self._homes.get(producer_id)
        if home is None:
            raise NotFoundError(f'Producer with id "{producer_id}" not found')
        return home[1]

    async def _acquire_pipe(self, producer_id: str, target: Any) -> None:
        """Make producer_id consumable on `target`, piping it there if needed; counted per consumer."""
        foreign = producer_id not in self._homes and producer_id in self._foreign
        home = None if foreign else self.home_router(producer_id)
        if home is target:
            return
        slot = (producer_id, id(target))
        pipe = self._pipes.get(slot)
        if pipe is None:
            pipe = _Pipe(ready=asyncio.get_running_loop().create_future())
            self._pipes[slot] = pipe
            try:
                if home is None:
                    if self._foreign_source is None:
                        raise NotFoundError(f'Producer with id "{producer_id}" not found')
                    pipe_producer = await self._foreign_source.pipe(producer_id, target)
                else:
                    pipe_producer = (await home.pipe_to_router(producer_id=producer_id, router=target)).pipe_producer
            except BaseException as error:
                del self._pipes[slot]
                pipe.ready.set_exception(error)
                pipe.ready.exception()
                raise
            if home is not None:
                self._pool.count_consumer(home.worker, +1)
            pipe_producer.observer.on("close", lambda: self._pipe_gone(slot, home))
            pipe.ready.set_result(pipe_producer)
            self.observer.emit("newpipe", producer_id, target)
        pipe.users += 1
        try:
            await pipe.ready
        except BaseException:
            pipe.users -= 1
            raise

    def _pipe_gone(self, slot: tuple[str, int], home: Any) -> None:
        if self._pipes.pop(slot, None) is not None:
            if home is not None:
                self._pool.count_consumer(home.worker, -1)
            self.observer.emit("pipeclose", slot[0])

    async def _release_pipe(self, producer_id: str, target: Any) -> None:
        """A consumer on `target` went away: drop the pipe when nobody there needs it."""
        pipe = self._pipes.get((producer_id, id(target)))
        if pipe is None:
            return
        pipe.users -= 1
        if pipe.users <= 0 and pipe.ready.done() and not pipe.ready.exception():
            await pipe.ready.result().close()

    async def pipe_to_router(self, *, producer_id: str, router: Any, **options: Any) -> Any:
        """Between vertical routers of one pool the real routers are shared: no PipeTransport."""
        self._check_open()
        producer = self.get_producer(producer_id)
        if producer is None:
            raise NotFoundError(f'Producer with id "{producer_id}" not found')
        if router is self:
            raise TypeError("cannot use this Router as destination")
        if isinstance(router, VerticalRouter) and router._pool is self._pool:
            router._adopt_producer(producer, self.home_router(producer_id))
            return VerticalPipeResult(pipe_consumer=None, pipe_producer=producer)
        return await self.home_router(producer_id).pipe_to_router(producer_id=producer_id, router=router, **options)

    # --- closing -------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        await self._close_children()
        self.emit("@close")
        self.observer.emit("close")

    async def worker_closed(self) -> None:
        """Its (vertical) worker closed: as on one worker, "workerclose" then observer "close"."""
        if self._closed:
            return
        self._worker_closed = True
        await self._close_children()
        self.emit("@close")
        self.emit("workerclose")
        self.observer.emit("close")

    async def _close_children(self) -> None:
        self._closed = True
        for rtp_observer in list(self._rtp_observers.values()):
            await rtp_observer.router_closed()
        for transport in list(self._transports.values()):
            # As on a single router: producers and consumers see "transportclose",
            # the transport "routerclose" (the real router may live on for others).
            await transport.close()
            transport.emit("routerclose")
        for pipe in list(self._pipes.values()):
            if pipe.ready.done() and not pipe.ready.exception():
                await pipe.ready.result().close()
        self._pipes.clear()
        self._homes.clear()
        self._foreign.clear()
        for router in list(self._real_routers):
            self._real_routers.remove(router)
            await self._pool.release_router(router)


def _record(producer: Any, entry: str | None) -> dict[str, Any]:
    app_data = getattr(producer, "app_data", None)
    return {"id": producer.id, "kind": producer.kind, "paused": bool(producer.paused),
            "app_data": dict(app_data) if isinstance(app_data, dict) else {}, "entry": entry}
