"""Client-side proxies: the shallow copy of one server object.

A `RemoteObject` is only ever changed by its `RopeClient` applying the
server's numbered changes, in order, on the connection's reader; the
application reads its state, calls its methods and listens to its events.
Remote events go to ``on()``; ROPE's own notifications about the proxy
(``close``, ``statechange``) go to ``observer``, as in mediasoup, so that an
object's remote "close" event and its disappearance stay distinguishable.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rope.events import EventEmitter, Handler, TaskSet

if TYPE_CHECKING:
    from rope.client import RopeClient


class RemoteObject:
    def __init__(self, client: RopeClient, record: Mapping[str, Any], tasks: TaskSet) -> None:
        self._client = client
        self.id: str = record["id"]
        self.type: str = record["type"]
        self.parent_id: str | None = record.get("parent")
        self.methods: frozenset[str] = frozenset(record.get("methods", ()))
        self.events: tuple[str, ...] = tuple(record.get("events", ()))
        self._state: dict[str, Any] = {}
        self._closed = False
        self._emitter = EventEmitter(tasks)
        self.observer = EventEmitter(tasks)
        """ROPE's own events about this proxy: ``close()``, ``statechange(changes)``, and
        ``event(name, *args)`` for every remote event, before its own handlers (one listener for
        all of an object's events, where a wrapper would otherwise register one per event name)."""

    def __repr__(self) -> str:
        return f"RemoteObject({self.type!r}, id={self.id!r}{', closed' if self._closed else ''})"

    @property
    def client(self) -> RopeClient:
        return self._client

    @property
    def parent(self) -> RemoteObject | None:
        return self._client.objects.get(self.parent_id) if self.parent_id is not None else None

    @property
    def state(self) -> Mapping[str, Any]:
        """The latest state the server sent (references decoded to proxies)."""
        return MappingProxyType(self._state)

    @property
    def closed(self) -> bool:
        """True once the server closed the object (or its state says ``closed``)."""
        return self._closed or self._state.get("closed") is True

    async def call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:  # noqa: ASYNC109
        """Call ``method`` on the server object; raises what the server raised."""
        return await self._client.call(self.id, method, *args, timeout=timeout, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not real attributes: methods first, then state.
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.methods:
            return partial(self.call, name)
        try:
            return self._state[name]
        except KeyError:
            raise AttributeError(f"{self.type} {self.id!r} has no method or state {name!r}") from None

    # -- remote events -----------------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        return self._emitter.on(event, handler) if handler is not None else self._emitter.on(event)

    def once(self, event: str, handler: Handler) -> Handler:
        return self._emitter.once(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        self._emitter.off(event, handler)

    def listeners(self, event: str) -> list[Handler]:
        return self._emitter.listeners(event)

    async def wait_for(self, event: str) -> tuple[Any, ...]:
        return await self._emitter.wait_for(event)

    # -- applied by the client -------------------------------------------------------

    def _set_state(self, state: dict[str, Any], notify: bool) -> None:
        """Replace the whole state (snapshot); ``statechange`` gets what differs."""
        changes = {key: value for key, value in state.items() if self._state.get(key, _MISSING) != value}
        self._state = dict(state)
        if notify and changes:
            self.observer.emit("statechange", changes)

    def _update_state(self, changes: dict[str, Any]) -> None:
        self._state.update(changes)
        self.observer.emit("statechange", changes)

    def _emit(self, event: str, args: list[Any]) -> None:
        self.observer.emit("event", event, *args)
        self._emitter.emit(event, *args)

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.observer.emit("close")


_MISSING: Any = object()
