"""The ROPE server: one object table, one numbered change log, many connections.

Every change to a registered object gets the next sequence number of this
server instance (its ``epoch``) and is pushed to every open session; the last
``replay_size`` changes stay in a ring buffer. A reconnecting client says
which (epoch, seq) it has applied: if the buffer still holds everything after
it, the server replays exactly the missing changes, else it sends a full
snapshot. Because sending is a synchronous ``Outbox.put`` and the server is
single-threaded, "take the snapshot" and "start pushing" happen in the same
event-loop step: nothing falls between them.

A connection is driven by whichever carrier accepted it (`serve` is its
handler); in-flight calls belong to the connection's task group, and
`RopeServer.close` cancels every connection and waits for it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rope.channel import MessageChannel, Outbox, Peer
from rope.errors import ErrorCode, FrameError, RopeError, UnknownObject
from rope.messages import (
    MessageError,
    Request,
    Response,
    dumps,
    encode_error,
    encode_result,
    error_object,
    parse,
)
from rope.objects import RopeObject

log = logging.getLogger("rope.server")

PROTOCOL_VERSION = 1
_CHANGE_PREFIX = '{"jsonrpc":"2.0","method":"rope.change","params":{"session":'


@dataclass(frozen=True)
class Credentials:
    """What the authorization hook decides on."""

    peer: Peer
    token: str | None = None
    """The ``token`` the client sent in ``rope.hello`` (WebSocket's credential)."""


Authorizer = Callable[[Credentials], bool | Awaitable[bool]]

current_caller: ContextVar[Credentials] = ContextVar("rope_current_caller")
"""Set while a remote call runs: which connection asked for it."""

current_session: ContextVar[str] = ContextVar("rope_current_session")
"""Set while a remote call runs: the session (client-chosen id) it came in."""

SessionListener = Callable[[str, int, Credentials, str], None]
"""``listener(kind, connection, credentials, session)``: kind "open" when a connection opens a session
(a reconnection re-opening it included), "end" when it closes it or the connection ends; ``connection``
tells connections apart (a reconnection's new one may open before the old one is noticed gone)."""


def members_only(is_member: Callable[[str], bool]) -> Authorizer:
    """Admit libp2p peers for which ``is_member(peer_id)`` holds, and nobody else."""

    def authorize(credentials: Credentials) -> bool:
        peer_id = credentials.peer.peer_id
        return credentials.peer.carrier == "libp2p" and peer_id is not None and is_member(peer_id)

    return authorize


def token_auth(*tokens: str) -> Authorizer:
    """Admit connections that present one of ``tokens`` (any carrier)."""
    allowed = [token.encode() for token in tokens]

    def authorize(credentials: Credentials) -> bool:
        if credentials.token is None:
            return False
        presented = credentials.token.encode()
        return any(secrets.compare_digest(presented, token) for token in allowed)

    return authorize


def object_record(obj: RopeObject, wire_state: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": obj.id,
        "type": obj.type,
        "parent": obj.parent.id if obj.parent is not None else None,
        "state": wire_state,
        "methods": obj.method_names,
        "events": list(obj.events),
    }


class RopeServer:
    def __init__(
        self,
        *,
        authorize: Authorizer | None = None,
        replay_size: int = 1024,
        max_pending: int = 10_000,
        max_sessions: int = 64,
        max_calls: int = 1024,
        handshake_timeout: float = 10.0,
        max_protocol_errors: int = 100,
    ) -> None:
        self.epoch = secrets.token_hex(8)
        """Names this server instance: a client resuming with another epoch gets a snapshot."""
        self.seq = 0
        self._authorize = authorize
        self._objects: dict[str, RopeObject] = {}
        self._wire_state: dict[str, dict[str, Any]] = {}
        self._log: deque[tuple[int, str]] = deque(maxlen=replay_size)
        self._connections: set[_Connection] = set()
        self._session_listeners: list[SessionListener] = []
        self._limits = _Limits(max_pending, max_sessions, max_calls, handshake_timeout, max_protocol_errors)
        self._closed = False

    # -- objects -------------------------------------------------------------------

    def register(self, obj: RopeObject) -> RopeObject:
        """Make ``obj`` (and its unregistered parents) visible to every client."""
        if obj.server is self:
            return obj
        if obj.server is not None:
            raise ValueError(f"{obj!r} is registered with another server")
        if obj.closed:
            raise ValueError(f"{obj!r} is closed")
        if obj.id in self._objects:
            raise ValueError(f"object id {obj.id!r} is already registered")
        if obj.parent is not None and obj.parent.server is not self:
            self.register(obj.parent)
        obj._server = self
        self._objects[obj.id] = obj
        self._wire_state[obj.id] = self.export({**obj.state})
        self._publish({"kind": "add", "object": object_record(obj, self._wire_state[obj.id])})
        return obj

    def get(self, object_id: str) -> RopeObject:
        obj = self._objects.get(object_id)
        if obj is None:
            raise UnknownObject(f"no object {object_id!r}")
        return obj

    @property
    def objects(self) -> list[RopeObject]:
        return list(self._objects.values())

    def export(self, value: Any) -> Any:
        """Replace every `RopeObject` inside ``value`` by a reference (registering it)."""
        if isinstance(value, RopeObject):
            if value.server is not self:
                self.register(value)
            return {"$ref": value.id}
        if isinstance(value, dict):
            return {str(key): self.export(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.export(item) for item in value]
        return value

    def _import(self, value: Any) -> Any:
        """Replace every ``{"$ref": id}`` from a client by the object it names."""
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("$ref"), str):
                return self.get(value["$ref"])
            return {key: self._import(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._import(item) for item in value]
        return value

    def _state_changed(self, obj: RopeObject, changed: dict[str, Any]) -> None:
        wire = self.export(changed)
        self._wire_state[obj.id].update(wire)
        self._publish({"kind": "state", "id": obj.id, "state": wire})

    def _event(self, obj: RopeObject, event: str, args: tuple[Any, ...]) -> None:
        self._publish({"kind": "event", "id": obj.id, "event": event, "args": self.export(args)})

    def _closed_object(self, obj: RopeObject) -> None:
        if self._objects.pop(obj.id, None) is None:
            return
        self._wire_state.pop(obj.id, None)
        self._publish({"kind": "close", "id": obj.id})

    def _publish(self, change: dict[str, Any]) -> None:
        self.seq += 1
        change = {"seq": self.seq, **change}
        text = dumps(change)
        self._log.append((self.seq, text))
        for connection in list(self._connections):
            connection.push(text)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every live object, parents before children (registration order guarantees it)."""
        return [object_record(obj, self._wire_state[obj.id]) for obj in self._objects.values()]

    def changes_since(self, seq: int) -> list[str] | None:
        """The logged changes after ``seq``, or None when the log no longer reaches back that far."""
        if seq > self.seq or seq < 0:
            return None
        if seq == self.seq:
            return []
        first = self._log[0][0] if self._log else self.seq + 1
        if seq + 1 < first:
            return None
        return [text for _, text in itertools.islice(self._log, seq + 1 - first, None)]

    # -- sessions --------------------------------------------------------------------

    def add_session_listener(self, listener: SessionListener) -> None:
        """Be told when sessions open and end (who owns what is the application's business)."""
        self._session_listeners.append(listener)

    def _session_event(self, kind: str, connection: _Connection, session: str) -> None:
        if connection.credentials is None:
            return
        for listener in list(self._session_listeners):
            try:
                listener(kind, id(connection), connection.credentials, session)
            except Exception:
                log.exception("session listener failed")

    # -- connections ---------------------------------------------------------------

    async def serve(self, channel: MessageChannel) -> None:
        """Run one connection until it ends: carriers call this for every accepted channel."""
        if self._closed:
            await channel.close()
            return
        connection = _Connection(self, channel)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            for session in list(connection.opened):
                self._session_event("end", connection, session)
            connection.opened.clear()
            await channel.close()
            connection.done.set()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def close(self) -> None:
        """Drop every connection and wait until each is gone. Objects stay the application's."""
        self._closed = True
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        for connection in connections:
            await connection.done.wait()

    async def _authorized(self, credentials: Credentials) -> bool:
        if self._authorize is None:
            return True
        verdict = self._authorize(credentials)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)


@dataclass(frozen=True)
class _Limits:
    max_pending: int
    max_sessions: int
    max_calls: int
    handshake_timeout: float
    max_protocol_errors: int


class _Connection:
    """One carrier connection: handshake, sessions, calls, and its outbox."""

    def __init__(self, server: RopeServer, channel: MessageChannel) -> None:
        self.server = server
        self.channel = channel
        self.limits = server._limits
        self.outbox = Outbox(channel, self.limits.max_pending)
        self.sessions: dict[str, str] = {}
        """session id -> the JSON-encoded id, ready to splice into notifications."""
        self.opened: set[str] = set()
        """Sessions opened and not closed on this connection (told to session listeners)."""
        self.credentials: Credentials | None = None
        self.calls = 0
        self.protocol_errors = 0
        self.done = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._writer: asyncio.Task[None] | None = None

    def push(self, change: str) -> None:
        for encoded_id in list(self.sessions.values()):
            self._notify(encoded_id, change)

    def _notify(self, encoded_session: str, change: str) -> None:
        # Spliced, not re-encoded: one change is serialised once for all sessions.
        message = _CHANGE_PREFIX + encoded_session + ',"change":' + change + "}}"
        if not self.outbox.put(message) and self.outbox.overflowed and self.sessions:
            # The writer may be stuck in a send to a peer that does not read: stop it; the
            # connection ends and the client catches up after reconnecting.
            log.warning("dropping %s: %d messages unsent (client too slow)", self.channel.peer, self.limits.max_pending)
            self.sessions.clear()
            if self._writer is not None:
                self._writer.cancel()

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> None:
        self._task = asyncio.current_task()
        peer = self.channel.peer
        log.debug("connection from %s", peer)
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(self._read_all(group))
            writer = self._writer = group.create_task(self._write())
            # The writer ends early only when the peer is gone or too slow: stop reading then.
            writer.add_done_callback(lambda _: reader.cancel())
        log.debug("connection from %s ended", peer)

    async def _read_all(self, group: asyncio.TaskGroup) -> None:
        try:
            if await self._handshake():
                await self._read(group)
        except (ConnectionError, OSError) as error:
            log.debug("read from %s failed: %r", self.channel.peer, error)
        finally:
            self.sessions.clear()
            self.outbox.finish()

    async def _write(self) -> None:
        try:
            await self.outbox.run()
        except (ConnectionError, OSError, RopeError) as error:
            log.debug("write to %s failed: %r", self.channel.peer, error)
        self.sessions.clear()

    async def _receive(self) -> Request | None:
        """The next request; answers and skips what cannot be parsed. None at EOF."""
        while True:
            try:
                text = await self.channel.receive()
            except FrameError as error:
                self._error(None, error.to_json())
                if error.fatal:
                    return None
                if not self._count_error():
                    return None
                continue
            if text is None:
                return None
            try:
                message = parse(text)
            except MessageError as error:
                if error.answerable:
                    self._error(error.request_id, error.to_json())
                if not self._count_error():
                    return None
                continue
            if isinstance(message, Response):
                continue  # clients never answer anything of ours: ignore
            return message

    def _count_error(self) -> bool:
        self.protocol_errors += 1
        if self.protocol_errors > self.limits.max_protocol_errors:
            log.info("dropping %s: too many protocol errors", self.channel.peer)
            return False
        return True

    async def _handshake(self) -> bool:
        try:
            async with asyncio.timeout(self.limits.handshake_timeout):
                request = await self._receive()
        except TimeoutError:
            log.info("no handshake from %s", self.channel.peer)
            return False
        if request is None:
            return False
        if request.method != "rope.hello" or not isinstance(request.params, dict):
            self._error(request.id, error_object(ErrorCode.HANDSHAKE_REQUIRED, "the first request must be rope.hello"))
            return False
        version = request.params.get("version")
        if version != PROTOCOL_VERSION:
            self._error(
                request.id,
                error_object(ErrorCode.UNSUPPORTED_VERSION, f"unsupported version {version!r}",
                             {"supported": [PROTOCOL_VERSION]}),
            )
            return False
        token = request.params.get("token")
        credentials = Credentials(self.channel.peer, token if isinstance(token, str) else None)
        try:
            allowed = await self.server._authorized(credentials)
        except Exception:
            log.exception("authorization hook failed; refusing %s", self.channel.peer)
            allowed = False
        if not allowed:
            log.info("refused %s", self.channel.peer)
            self._error(request.id, error_object(ErrorCode.UNAUTHORIZED, "not authorized"))
            return False
        self.credentials = credentials
        self.outbox.put(encode_result(request.id, {"version": PROTOCOL_VERSION, "epoch": self.server.epoch}))
        return True

    async def _read(self, group: asyncio.TaskGroup) -> None:
        while (request := await self._receive()) is not None:
            try:
                self._dispatch(request, group)
            except RopeError as error:
                if not request.is_notification:
                    self._error(request.id, error.to_json())

    def _error(self, request_id: Any, error: dict[str, Any]) -> None:
        self.outbox.put(encode_error(request_id, error))

    def _params(self, request: Request) -> dict[str, Any]:
        if not isinstance(request.params, dict):
            raise RopeError(f"{request.method} takes named params", code=ErrorCode.INVALID_PARAMS)
        return request.params

    def _session(self, params: dict[str, Any]) -> str:
        session = params.get("session")
        if not isinstance(session, str):
            raise RopeError('"session" must be a string', code=ErrorCode.INVALID_PARAMS)
        return session

    def _dispatch(self, request: Request, group: asyncio.TaskGroup) -> None:
        method = request.method
        if method == "rope.call":
            self._start_call(request, group)
        elif method == "rope.open":
            self._open(request)
        elif method == "rope.close":
            session = self._session(self._params(request))
            self.sessions.pop(session, None)
            if session in self.opened:
                self.opened.discard(session)
                self.server._session_event("end", self, session)
            if not request.is_notification:
                self.outbox.put(encode_result(request.id, True))
        elif method == "rope.ping":
            if not request.is_notification:
                self.outbox.put(encode_result(request.id, {"seq": self.server.seq}))
        elif method == "rope.hello":
            raise RopeError("already greeted", code=ErrorCode.INVALID_REQUEST)
        else:
            raise RopeError(f"no method {method!r}", code=ErrorCode.METHOD_NOT_FOUND)

    def _open(self, request: Request) -> None:
        """Start (or restart) a session: resume from the replay buffer, else a snapshot."""
        if request.is_notification:
            raise RopeError("rope.open must be a request", code=ErrorCode.INVALID_REQUEST)
        params = self._params(request)
        session = self._session(params)
        if session not in self.sessions and len(self.sessions) >= self.limits.max_sessions:
            raise RopeError(f"at most {self.limits.max_sessions} sessions per connection", code=ErrorCode.OVERLOADED)
        server = self.server
        resume = params.get("resume")
        replay: list[str] | None = None
        if isinstance(resume, dict) and resume.get("epoch") == server.epoch:
            seq = resume.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                replay = server.changes_since(seq)
        self.sessions.pop(session, None)  # a reopened session must not get changes before its answer
        if replay is not None:
            result: dict[str, Any] = {"mode": "resume", "epoch": server.epoch, "seq": server.seq}
        else:
            result = {"mode": "snapshot", "epoch": server.epoch, "seq": server.seq, "objects": server.snapshot()}
        self.outbox.put(encode_result(request.id, result))
        encoded = dumps(session)
        for change in replay or ():
            self._notify(encoded, change)
        self.sessions[session] = encoded
        if session not in self.opened:
            self.opened.add(session)
            self.server._session_event("open", self, session)

    def _start_call(self, request: Request, group: asyncio.TaskGroup) -> None:
        params = self._params(request)
        session = self._session(params)
        if session not in self.sessions:
            raise RopeError(f"session {session!r} is not open", code=ErrorCode.UNKNOWN_SESSION)
        object_id, name = params.get("object"), params.get("method")
        args, kwargs = params.get("args", []), params.get("kwargs", {})
        if not isinstance(object_id, str) or not isinstance(name, str):
            raise RopeError('"object" and "method" must be strings', code=ErrorCode.INVALID_PARAMS)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise RopeError('"args" must be an array and "kwargs" an object', code=ErrorCode.INVALID_PARAMS)
        obj = self.server.get(object_id)
        entry = obj.lookup(name)
        if entry is None:
            raise RopeError(f"{obj.type} {object_id!r} has no method {name!r}", code=ErrorCode.UNKNOWN_METHOD)
        fn, signature = entry
        args, kwargs = self.server._import(args), self.server._import(kwargs)
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as error:
                raise RopeError(f"{obj.type}.{name}: {error}", code=ErrorCode.INVALID_PARAMS) from None
        if self.calls >= self.limits.max_calls:
            raise RopeError(f"at most {self.limits.max_calls} calls in flight", code=ErrorCode.OVERLOADED)
        self.calls += 1
        group.create_task(self._call(request, session, fn, args, kwargs))

    async def _call(
        self, request: Request, session: str, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        assert self.credentials is not None
        current_caller.set(self.credentials)  # each task runs in its own context copy
        current_session.set(session)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            try:
                answer = encode_result(request.id, {"value": self.server.export(result)})
            except (TypeError, ValueError) as error:
                answer = encode_error(
                    request.id, error_object(ErrorCode.INTERNAL_ERROR, f"result is not JSON-serialisable: {error}")
                )
            if len(answer) > self.channel.max_message:
                answer = encode_error(
                    request.id,
                    error_object(ErrorCode.FRAME_TOO_LARGE, f"result of {len(answer)} bytes exceeds the frame limit"),
                )
        except RopeError as error:
            answer = encode_error(request.id, error.to_json())
        except Exception as error:
            log.debug("remote call raised", exc_info=True)
            answer = encode_error(
                request.id,
                error_object(ErrorCode.REMOTE_EXCEPTION, f"{type(error).__name__}: {error}",
                             {"type": type(error).__name__, "message": str(error)}),
            )
        finally:
            self.calls -= 1
        if not request.is_notification:
            self.outbox.put(answer)
