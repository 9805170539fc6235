"""Server-side remote objects: what an application registers to expose.

A `RopeObject` is deliberately dumb: an id, a type, a JSON-able state dict, a
table of callables and a parent. It knows nothing about connections; once
registered with a `RopeServer` every change (``update_state``, ``emit``,
``close``) becomes one numbered entry in the server's change log, which is
what clients replay. That keeps glue for mediasoup-like objects short: wrap
the real object, put its getters in ``state``, its async methods in
``methods``, and forward its events with ``emit``.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rope.values import untagged

if TYPE_CHECKING:
    from rope.server import RopeServer

Method = Callable[..., Awaitable[Any] | Any]
M = TypeVar("M", bound=Method)


@overload
def exposed(fn: M, *, name: str | None = None) -> M: ...
@overload
def exposed(fn: None = None, *, name: str | None = None) -> Callable[[M], M]: ...


def exposed(fn: Method | None = None, *, name: str | None = None) -> Any:
    """Mark a method of a `RopeObject` subclass as remotely callable (as ``name``).

    Subclass-style glue then needs no registration code: the constructor
    collects every marked method, so they are known before the object is
    registered and announced.
    """
    if fn is None:
        return lambda f: exposed(f, name=name)
    fn.__rope_name__ = name or fn.__name__  # type: ignore[attr-defined]
    return fn


def _exposed_names(cls: type) -> list[tuple[str, str]]:
    """(attribute, wire name) for every `exposed` method of ``cls``, cached per class."""
    cached = cls.__dict__.get("_rope_exposed")
    if cached is not None:
        return list(cached)
    found = []
    for attribute in dir(cls):
        wire_name = getattr(getattr(cls, attribute, None), "__rope_name__", None)
        if isinstance(wire_name, str):
            found.append((attribute, wire_name))
    cls._rope_exposed = found  # type: ignore[attr-defined]
    return found


def _signature(fn: Method) -> inspect.Signature | None:
    """``fn``'s signature, read when it is first called, once per function for bound methods.

    Reading every exposed method's signature when an object was made cost
    ``consume()`` over ROPE ~30 ``inspect.signature`` calls (a Consumer exposes
    that many methods; profiled with ``bench.remote``), for methods mostly never called.
    """
    func = getattr(fn, "__func__", None)
    if func is not None and getattr(fn, "__self__", None) is not None:
        return _bound_signature(func)
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none: let the call itself decide
        return None


@functools.cache
def _bound_signature(func: Callable[..., Any]) -> inspect.Signature | None:
    """The signature of ``func`` bound to an instance (its first parameter dropped)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].kind in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD):
        parameters = parameters[1:]  # what binding fills (a leading *args stays, as inspect does)
    return signature.replace(parameters=parameters)


class RopeObject:
    """One object clients can see, call and listen to.

    ``methods`` maps wire names to callables (async or not); a method may
    return other `RopeObject`s (alone or inside lists/dicts): they are
    registered on the way out and reach the client as proxies. ``events``
    lists the event names the object emits, for clients' information.
    A subclass that answers for many methods may override `lookup` and
    `method_names` instead of registering one callable per method.
    """

    STATE_HOLDS_OBJECTS: bool = True
    """False in a subclass whose state never holds `RopeObject`s (plain JSON-able values): the server
    then takes the state as its wire form without walking it for references."""

    def __init__(
        self,
        type: str,
        *,
        id: str | None = None,
        state: Mapping[str, Any] | None = None,
        methods: Mapping[str, Method] | None = None,
        events: Iterable[str] = (),
        parent: RopeObject | None = None,
    ) -> None:
        self.id: str = id if id is not None else str(uuid.uuid4())
        self.type = type
        self.parent = parent
        self.events: tuple[str, ...] = tuple(events)
        self._state: dict[str, Any] = dict(state or {})
        self._methods: dict[str, Method] = {}
        self._signatures: dict[str, inspect.Signature | None] = {}
        self._children: dict[str, RopeObject] = {}
        self._server: RopeServer | None = None
        self._closed = False
        for attribute, wire_name in _exposed_names(self.__class__):
            self.method(getattr(self, attribute), name=wire_name)
        for name, fn in (methods or {}).items():
            self.method(fn, name=name)
        if parent is not None:
            parent._children[self.id] = self

    def __repr__(self) -> str:
        return f"RopeObject({self.type!r}, id={self.id!r}{', closed' if self._closed else ''})"

    @property
    def state(self) -> Mapping[str, Any]:
        """A read-only view; change it with `update_state` so clients hear of it."""
        return MappingProxyType(self._state)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def server(self) -> RopeServer | None:
        return self._server

    @property
    def children(self) -> list[RopeObject]:
        return list(self._children.values())

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    @overload
    def method(self, fn: M, *, name: str | None = None) -> M: ...
    @overload
    def method(self, fn: None = None, *, name: str | None = None) -> Callable[[M], M]: ...

    def method(self, fn: Method | None = None, *, name: str | None = None) -> Any:
        """Expose ``fn`` under ``name`` (default: its ``__name__``); usable as a decorator."""
        if fn is None:
            return lambda f: self.method(f, name=name)
        wire_name = name or fn.__name__
        self._methods[wire_name] = fn
        self._signatures.pop(wire_name, None)
        return fn

    def lookup(self, name: str) -> tuple[Method, inspect.Signature | None] | None:
        fn = self._methods.get(name)
        if fn is None:
            return None
        if name not in self._signatures:
            self._signatures[name] = _signature(fn)
        return fn, self._signatures[name]

    def import_arguments(self, value: Any) -> Any:
        """A call's ``args`` (a list) or ``kwargs`` (a dict) as this object's methods get them: references
        resolved by `RopeServer.resolve` (which bounds the nesting). A subclass with argument types of its
        own overrides it to resolve references and decode its values in one walk. Not called for a call
        whose text holds no tag (`Request.untagged`): its arguments are what the methods get."""
        assert self._server is not None, "only a registered object is called"
        return value if untagged(value) else self._server.resolve(value)

    def update_state(self, **changes: Any) -> None:
        """Merge ``changes`` into the state and tell every client (only what changed)."""
        if self._closed:
            return
        changed = {key: value for key, value in changes.items() if key not in self._state or self._state[key] != value}
        if not changed:
            return
        if self._server is not None:
            self._server._state_changed(self, changed)  # raises (changing nothing) if it cannot be sent
        self._state.update(changed)

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every client's proxy, whose handlers get ``*args`` (JSON-able)."""
        if self._server is not None and not self._closed:
            self._server._event(self, event, args)

    def close(self) -> None:
        """Close this object and its children (children first); clients see them go. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for child in reversed(list(self._children.values())):
            child.close()
        if self.parent is not None:
            self.parent._children.pop(self.id, None)
        if self._server is not None:
            self._server._closed_object(self)
