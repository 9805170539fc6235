"""Remote Mediasoup server: a media back-end's objects as ROPE objects.

`MediasoupServer(backend)` registers one root object (type "Mediasoup", id
"mediasoup") whose ``create_worker`` calls ``backend.create_worker``. The
back-end is anything with mediasoup's API: the `media` module, a
`media.vertical.Vertical`, or a `media.remote.RemoteMediasoup` (a proxy).

Every object the back-end creates is mirrored by one `MediaObject`: its type
is the class name (WebRtcTransport, Consumer, ...), its state the object's
read-only properties (`media.remote.spec`), its methods the object's async
methods, its events the object's events. Children are found through the
parents' observer events ("newrouter", "newtransport", "newconsumer", ...), so
objects created behind the API's back (the pipe transports of a server-side
pipe_to_router) are exposed too. When the media object closes, its ROPE
object closes and is forgotten: nothing is kept for closed objects.

Every object made in a call belongs to the calling session and is closed
here when that session has been gone past a grace period
(`media.remote.sessions`): nothing a vanished client made keeps running.

Serving is ROPE's business: `serve_libp2p(server.rope, host)` for swarm
members, `WebSocketListener(server.rope)` for application servers with a token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from media.errors import WorkerError
from media.remote.sessions import SESSION_GRACE_S, Sessions
from media.remote.spec import (
    CHILD_EVENTS,
    FORWARDED_OBSERVER_EVENTS,
    OBSERVER_PREFIX,
    ROOT_ID,
    SPECS,
    TypeSpec,
    describe_real,
    family,
    pack,
    type_name,
    unpack_bytes,
)
from rope import ErrorCode, RopeError, RopeObject, RopeServer
from rope.server import Authorizer, Credentials
from rope.values import MAX_DEPTH, SCALARS, untagged

log = logging.getLogger("media.remote.server")


def any_of(*authorizers: Authorizer) -> Authorizer:
    """Admit a connection that any of ``authorizers`` admits (e.g. members over libp2p, tokens over WebSocket)."""

    async def authorize(credentials: Credentials) -> bool:
        for authorizer in authorizers:
            verdict = authorizer(credentials)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return True
        return False

    return authorize


class MediasoupServer:
    """Exposes ``backend`` on a `RopeServer` (given, or a new one with ``authorize``).

    ``grace_s``: how long a session may be gone before the objects it made are closed.
    """

    def __init__(self, backend: Any, rope: RopeServer | None = None, *, authorize: Authorizer | None = None,
                 grace_s: float = SESSION_GRACE_S) -> None:
        self.backend = backend
        self.rope = rope if rope is not None else RopeServer(authorize=authorize)
        self.sessions = Sessions(grace_s, on_expired=self._close_expired)
        self.rope.add_session_listener(self.sessions.session_event)
        self._closing: set[asyncio.Task[None]] = set()
        self._mirrors: dict[int, MediaObject] = {}
        """id(media object) -> its mirror, while both live."""
        self._workers: list[Any] = []
        self.root = self.rope.register(RopeObject(
            "Mediasoup",
            id=ROOT_ID,
            state={"version": _version(backend), "capacity": _capacity(backend)},
            methods={"create_worker": self._create_worker, "get_stats": self._get_stats,
                     "get_supported_rtp_capabilities": self._supported_rtp_capabilities},
        ))

    @property
    def mirror_count(self) -> int:
        """Media objects mirrored now (for leak checks and monitoring)."""
        return len(self._mirrors)

    async def _create_worker(self, **settings: Any) -> MediaObject:
        settings = unpack_bytes(settings)
        if isinstance(settings.get("capacity"), dict):  # a vertical worker's own (`Vertical.create_worker`)
            from media.vertical import Capacity

            settings["capacity"] = Capacity(**settings["capacity"])
        worker = await _guard(self.backend.create_worker, (), settings)
        self._workers.append(worker)
        worker.observer.on("close", partial(self._forget_worker, worker))
        try:
            return self.mirror(worker, self.root)
        except Exception:
            await worker.close()  # no client can see it: it must not keep running
            raise

    def _forget_worker(self, worker: Any) -> None:
        if worker in self._workers:
            self._workers.remove(worker)

    async def _get_stats(self) -> dict[str, Any]:
        """The backend's own workers when it keeps a list of them (a swarm node's local workers,
        including those it started for itself), else the workers created through this server."""
        from media.stats import get_stats

        workers = getattr(self.backend, "workers", None)
        return await get_stats(workers if isinstance(workers, list) else self._workers)

    def _supported_rtp_capabilities(self) -> Any:
        get = getattr(self.backend, "get_supported_rtp_capabilities", None)
        if get is None:
            raise RopeError("this back-end has no get_supported_rtp_capabilities()", code=ErrorCode.UNKNOWN_METHOD)
        return get()

    def mirror(self, obj: Any, parent: RopeObject) -> MediaObject:
        """The mirror of ``obj`` (made and registered on first sight, with its existing children).

        Made during a call of this server's, it belongs to the calling session; else to nobody (it lives
        as long as its parent, e.g. a worker the back-end started for its own use, exposed to clients)."""
        found = self._mirrors.get(id(obj))
        if found is not None and found.target is obj:
            return found
        name = type_name(obj)
        if name is None:
            raise TypeError(f"cannot expose {type(obj).__name__} objects")
        mirror = MediaObject(self, obj, name, parent)
        self._mirrors[id(obj)] = mirror
        try:
            self.rope.register(mirror)  # raises, changing nothing, if its state cannot be sent
        except Exception:
            mirror.target_closed()
            raise
        self.sessions.claim(obj)
        mirror.adopt_existing()
        if obj.closed:  # closed while we looked: let clients see it go
            mirror.target_closed()
        return mirror

    def find(self, obj: Any) -> MediaObject | None:
        found = self._mirrors.get(id(obj))
        return found if found is not None and found.target is obj else None

    def find_target(self, rope_id: str) -> Any:
        """The media object behind ROPE id ``rope_id`` (None if unknown or closed)."""
        try:
            found = self.rope.get(rope_id)
        except RopeError:
            return None
        return found.target if isinstance(found, MediaObject) else None

    def _forget(self, mirror: MediaObject) -> None:
        if self._mirrors.get(id(mirror.target)) is mirror:
            del self._mirrors[id(mirror.target)]
        self.sessions.forget(mirror.target)

    def peer_gone(self, peer_id: str) -> None:
        """The swarm dropped this peer: its sessions are gone (their grace starts), open connection or not."""
        self.sessions.peer_gone(peer_id)

    def _close_expired(self, objects: list[Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._close_all(objects))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_all(objects: list[Any]) -> None:
        for obj in objects:  # oldest first: a worker takes its routers and everything below with it
            if obj.closed:
                continue
            try:
                await obj.close()
            except Exception as error:  # one that cannot close must not keep the others running
                log.warning("could not close %s of a gone session: %r", type(obj).__name__, error)

    def to_wire(self, value: Any) -> Any:
        """A call result or event argument for clients: media objects become mirrors (references)."""
        if isinstance(value, RopeObject):
            return value
        if isinstance(value, dict):
            return {str(key): self.to_wire(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.to_wire(item) for item in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {field.name: self.to_wire(getattr(value, field.name)) for field in dataclasses.fields(value)}
        if hasattr(value, "observer") and type_name(value) is not None:
            mirror = self.find(value)
            if mirror is None:
                raise RopeError(f"{type(value).__name__} {getattr(value, 'id', '')} is not exposed by this server",
                                code=ErrorCode.INTERNAL_ERROR)
            return mirror
        return pack(value)

    async def close(self, *, close_workers: bool = True) -> None:
        """Close the workers created through this server (unless told not to), then every connection."""
        self.sessions.close()
        for task in list(self._closing):
            await task
        if close_workers:
            for worker in list(self._workers):
                await worker.close()
        self.root.close()
        await self.rope.close()


def _capacity(backend: Any) -> Any:
    """A vertical back-end's `Capacity` (a proxy's: its upstream's), as a dict; None for others."""
    try:
        capacity = getattr(backend, "capacity", None)
    except Exception:
        return None
    return pack(capacity) if dataclasses.is_dataclass(capacity) and not isinstance(capacity, type) else None


def _version(backend: Any) -> str | None:
    try:
        version = getattr(backend, "version", None)
    except Exception:  # a back-end whose version cannot be read still serves
        return None
    return version if isinstance(version, str) else None


def from_wire(value: Any, rope: RopeServer, depth: int = 1) -> Any:
    """Call arguments from a client (JSON as parsed), in one walk: references become the media objects,
    ``$bytes`` bytes; nested at most rope's `MAX_DEPTH` deep, as rope's own `RopeServer.resolve`."""
    kind = type(value)  # exact types, scalar leaves without a call: this walks every call's arguments
    if (kind is dict or kind is list) and depth > MAX_DEPTH:
        raise RopeError(f"arguments nest deeper than {MAX_DEPTH} arrays/objects", code=ErrorCode.INVALID_PARAMS)
    if kind is dict:
        if len(value) == 1:
            if "$bytes" in value:
                return unpack_bytes(value)
            ref = value.get("$ref")
            if isinstance(ref, str):
                found = rope.get(ref)
                if not isinstance(found, MediaObject):
                    raise RopeError(f"{found.type} {found.id!r} is not a media object", code=ErrorCode.INVALID_PARAMS)
                return found.target
        return {key: item if type(item) in SCALARS else from_wire(item, rope, depth + 1) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in SCALARS else from_wire(item, rope, depth + 1) for item in value]
    return value


async def _guard(fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; a `WorkerError` keeps its method and reason on the wire (the client rebuilds it)."""
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
    except WorkerError as error:
        raise RopeError(
            f"{type(error).__name__}: {error}",
            code=ErrorCode.REMOTE_EXCEPTION,
            data={"type": type(error).__name__, "message": str(error), "method": error.method, "reason": error.reason},
        ) from None


@functools.cache
def _method_names(cls: type, name: str) -> tuple[str, ...] | None:
    """The spec methods objects of class ``cls`` have, sorted (read once per class); None for a class
    that answers attributes dynamically (a vertical transport's ``__getattr__``): ask each object."""
    if any("__getattr__" in klass.__dict__ for klass in cls.__mro__):
        return None
    return _instance_method_names(cls, SPECS[name])


def _instance_method_names(target: Any, spec: TypeSpec) -> tuple[str, ...]:
    """The spec methods ``target`` (an object, or a class) has, sorted."""
    return tuple(sorted(method for method in spec.methods if callable(getattr(target, method, None))))


@functools.cache
def _observer_events(name: str) -> dict[str, str]:
    """What a mirror of a ``name`` does with each observer event of its object (the others: nothing)."""
    spec = SPECS[name]
    handling = {event: "forward" for event in FORWARDED_OBSERVER_EVENTS}
    handling.update({event: "vertical" for event in spec.vertical_events})
    handling["close"] = "close"
    handling.update({event: "child" for event in CHILD_EVENTS.get(family(name), ())})
    return handling


@functools.cache
def _wire_events(name: str) -> tuple[str, ...]:
    spec = SPECS[name]
    return (*spec.events, *(OBSERVER_PREFIX + event for event in (*FORWARDED_OBSERVER_EVENTS, *spec.vertical_events)))


class MediaObject(RopeObject):
    """The ROPE mirror of one media object: state, methods and events kept in step with it.

    Its state is `pack`ed values only (never a `RopeObject`): the server takes it as its own wire form.
    """

    STATE_HOLDS_OBJECTS = False

    def __init__(self, glue: MediasoupServer, target: Any, name: str, parent: RopeObject) -> None:
        self.glue = glue
        self.target = target
        self.spec = SPECS[name]
        self._method_names = _method_names(target.__class__, name) or _instance_method_names(target, self.spec)
        self._observer_events = _observer_events(name)
        super().__init__(name, state=self._read_state(), events=_wire_events(name), parent=parent)
        # One tap per emitter, not one listener per event (`media.events.EventEmitter.add_tap`).
        self._taps: tuple[tuple[Any, Callable[..., None]], ...] = (
            (target, self._on_target_event), (target.observer, self._on_observer_event))
        target.add_tap(self._on_target_event)
        target.observer.add_tap(self._on_observer_event)

    def _on_target_event(self, event: str, *args: Any) -> None:
        if event in self.spec.events:
            self._forward(event, *args)

    def _on_observer_event(self, event: str, *args: Any) -> None:
        handling = self._observer_events.get(event)
        if handling is None:
            return
        if handling == "forward":
            self._forward(OBSERVER_PREFIX + event, *args)
        elif handling == "vertical":
            self._forward_vertical(OBSERVER_PREFIX + event, *args)
        elif handling == "close":
            self.target_closed()
        elif handling == "child":
            self.glue.mirror(args[0], self)
            if self.type == "PipeTransport":
                self.refresh()  # a server-side pipe_to_router connects pipes without a call through us

    @property
    def method_names(self) -> list[str]:
        return list(self._method_names)

    def lookup(self, name: str) -> tuple[Callable[..., Any], None] | None:
        """The spec's methods the target has, made when called (not one partial per method per object);
        no signature: `_call` takes any arguments and the target's method checks them."""
        if name not in self._method_names:
            return None
        return partial(self._call, name), None

    def import_arguments(self, value: Any) -> Any:
        return value if untagged(value) else from_wire(value, self.glue.rope)

    def _read_state(self) -> dict[str, Any]:
        state = {}
        for prop in self.spec.state:
            try:
                state[prop] = pack(getattr(self.target, prop, None))
            except Exception as error:  # a property that cannot be read now is reported, not fatal
                log.debug("%s.%s unreadable: %r", self.type, prop, error)
                state[prop] = None
        for prop in self.spec.vertical_state:
            try:
                if hasattr(self.target, prop):
                    state[prop] = describe_real(getattr(self.target, prop))
            except Exception as error:
                log.debug("%s.%s unreadable: %r", self.type, prop, error)
                state[prop] = None
        return state

    def refresh(self) -> None:
        """Send clients whatever changed in the object's properties."""
        self.update_state(**self._read_state())
        if self.type == "Router" and isinstance(self.parent, MediaObject) and "real_workers" in self.parent.state:
            self.parent.refresh()  # a vertical router's real routers changed: so may its worker's real workers

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.glue.sessions.touch()
        try:
            result = await _guard(getattr(self.target, method), args, kwargs)  # arguments: `import_arguments`
        finally:
            self.refresh()
        return self.glue.to_wire(result)

    def _forward(self, event: str, *args: Any) -> None:
        self.refresh()
        try:
            wire_args = self.glue.to_wire(list(args))
        except RopeError as error:
            log.debug("event %s of %s not forwarded: %s", event, self.type, error)
            return
        self.emit(event, *wire_args)

    def _forward_vertical(self, event: str, *args: Any) -> None:
        """A vertical router's own event: exposed objects (a producer) as references, real routers described."""
        self.refresh()
        self.emit(event, *(self.glue.to_wire(arg) if isinstance(arg, str) or self.glue.find(arg) is not None
                           else describe_real(arg) for arg in args))

    def adopt_existing(self) -> None:
        """Children the object had before we looked (e.g. a proxied back-end's)."""
        if family(self.type) not in CHILD_EVENTS:
            return  # a consumer, producer...: no children (and 7 missing attributes cost 7 AttributeErrors)
        target = self.target
        for attribute in ("routers", "webrtc_servers", "transports", "producers", "consumers", "data_producers",
                          "data_consumers"):
            if self.type == "Router" and attribute != "transports":
                continue  # a router's producers belong to its transports
            children = getattr(target, attribute, None)
            values = children.values() if isinstance(children, dict) else children
            for child in list(values or ()):
                if not child.closed:
                    self.glue.mirror(child, self)

    def target_closed(self, *_: Any) -> None:
        """The media object closed: clients see it close; we forget it (and stop listening)."""
        if self.closed:
            return
        self.refresh()
        for emitter, tap in self._taps:
            emitter.remove_tap(tap)
        self._taps = ()
        for child in self.children:
            if isinstance(child, MediaObject):
                child.target_closed()
        self.glue._forget(self)
        self.close()
