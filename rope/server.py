"""The ROPE server: one object table, one numbered change log, many connections.

Every change to a registered object gets the next sequence number of this
server instance (its ``epoch``) and is pushed to every open session; the last
``replay_size`` changes stay in a ring buffer. A reconnecting client says
which (epoch, seq) it has applied: if the buffer still holds everything after
it, the server replays exactly the missing changes, else it sends a full
snapshot. Because sending is a synchronous ``Outbox.put`` and the server is
single-threaded, "take the snapshot" and "start pushing" happen in the same
event-loop step: nothing falls between them. A snapshot is taken as references
to the objects' state dicts (never changed in place) and encoded page by page
only when the writer reaches it, so its size is not bounded by a message or
by memory. Every change is encoded before anything is changed: a value that
cannot travel raises to whoever made the change and leaves no trace.

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
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rope.channel import DEFAULT_MAX_OUTBOX_BYTES, MessageChannel, Outbox, Peer
from rope.errors import ErrorCode, FrameError, RopeError, UnknownObject
from rope.framing import DEFAULT_MAX_FRAME
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
from rope.values import MAX_DEPTH, SCALARS

log = logging.getLogger("rope.server")

PROTOCOL_VERSION = 1
_CHANGE_PREFIX = '{"jsonrpc":"2.0","method":"rope.change","params":{"session":'
_PAGE_PREFIX = '{"jsonrpc":"2.0","method":"rope.snapshot","params":{"session":'
MAX_SESSION_ID = 64
PAGE_BYTES = 256 << 10
"""A snapshot page's target size: a quarter of the 1 MiB frame limit."""


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


class UnencodableChange(ValueError):
    """A state, event or new object that cannot travel as JSON (NaN, a set, too large...).

    Raised to whoever made the change, before the server changed anything.
    """


def _change_subject(change: dict[str, Any]) -> str:
    record = change.get("object")
    return repr(record["id"] if isinstance(record, dict) else change.get("id"))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _pages(records: list[tuple[RopeObject, dict[str, Any]]], page_bytes: int) -> Iterator[tuple[str, bool]]:
    """The records' JSON in pages of about ``page_bytes`` (an array's inside, and whether more
    follow); always at least one page, possibly empty. Encoded as drawn."""
    page: list[str] = []
    size = 0
    for index, (obj, state) in enumerate(records):
        text = dumps(object_record(obj, state))
        page.append(text)
        size += len(text) + 1
        if size >= page_bytes and index + 1 < len(records):
            yield ",".join(page), True
            page, size = [], 0
    yield ",".join(page), False


class RopeServer:
    def __init__(
        self,
        *,
        authorize: Authorizer | None = None,
        replay_size: int = 1024,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
        max_sessions: int = 64,
        max_calls: int = 1024,
        handshake_timeout: float = 10.0,
        max_protocol_errors: int = 100,
        max_change: int = DEFAULT_MAX_FRAME - 1024,
        page_bytes: int = PAGE_BYTES,
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
        self._limits = _Limits(max_outbox_bytes, max_sessions, max_calls, handshake_timeout, max_protocol_errors,
                               page_bytes)
        self.max_change = max_change
        """The largest change (JSON characters) the server publishes: below the 1 MiB frame limit
        with room for the notification around it (a session id is at most 64 characters)."""
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
        wire_state = self.export({**obj.state}) if obj.STATE_HOLDS_OBJECTS else {**obj.state}
        self._publish({"kind": "add", "object": object_record(obj, wire_state)})  # raises before any change
        obj._server = self
        self._objects[obj.id] = obj
        self._wire_state[obj.id] = wire_state
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
        kind = type(value)
        if kind is dict:
            return {
                key if type(key) is str else str(key): item if type(item) in SCALARS else self.export(item)
                for key, item in value.items()
            }
        if kind is list or kind is tuple:
            return [item if type(item) in SCALARS else self.export(item) for item in value]
        if isinstance(value, RopeObject):
            if value.server is not self:
                self.register(value)
            return {"$ref": value.id}
        if isinstance(value, dict):
            return {str(key): self.export(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.export(item) for item in value]
        return value

    def resolve(self, value: Any, depth: int = 1) -> Any:
        """Replace every ``{"$ref": id}`` from a client by the object it names.

        Recursive, hence bounded: arguments nest at most `MAX_DEPTH` arrays/objects deep.
        """
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            raise RopeError(f"arguments nest deeper than {MAX_DEPTH} arrays/objects", code=ErrorCode.INVALID_PARAMS)
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("$ref"), str):
                return self.get(value["$ref"])
            return {
                key: item if type(item) in SCALARS else self.resolve(item, depth + 1) for key, item in value.items()
            }
        if isinstance(value, list):
            return [item if type(item) in SCALARS else self.resolve(item, depth + 1) for item in value]
        return value

    def _state_changed(self, obj: RopeObject, changed: dict[str, Any]) -> None:
        wire = self.export(changed) if obj.STATE_HOLDS_OBJECTS else changed
        self._publish({"kind": "state", "id": obj.id, "state": wire})
        # Copy on write: a snapshot being sent page by page holds the old dict, unchanged.
        self._wire_state[obj.id] = {**self._wire_state[obj.id], **wire}

    def _event(self, obj: RopeObject, event: str, args: tuple[Any, ...]) -> None:
        self._publish({"kind": "event", "id": obj.id, "event": event, "args": self.export(args)})

    def _closed_object(self, obj: RopeObject) -> None:
        if self._objects.pop(obj.id, None) is None:
            return
        self._wire_state.pop(obj.id, None)
        self._publish({"kind": "close", "id": obj.id})

    def _publish(self, change: dict[str, Any]) -> None:
        """Number, encode and send one change; raises `UnencodableChange` (changing nothing) first
        if it cannot reach clients: one such value logged would break every later snapshot."""
        seq = self.seq + 1
        try:
            text = dumps({"seq": seq, **change})
        except (TypeError, ValueError, RecursionError) as error:
            raise UnencodableChange(f"{change['kind']} of {_change_subject(change)} cannot be sent: {error}") from None
        if len(text) > self.max_change:
            raise UnencodableChange(
                f"{change['kind']} of {_change_subject(change)} is {len(text)} bytes of JSON, over {self.max_change}"
            )
        self.seq = seq
        self._log.append((seq, text))
        for connection in list(self._connections):
            connection.push(text)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every live object, parents before children (registration order guarantees it)."""
        return [object_record(obj, state) for obj, state in self._snapshot_refs()]

    def _snapshot_refs(self) -> list[tuple[RopeObject, dict[str, Any]]]:
        # The state dicts are never changed in place (copy on write), so this is a consistent
        # snapshot that costs one tuple per object.
        return [(obj, self._wire_state[obj.id]) for obj in self._objects.values()]

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
            await channel.close(connection.close_reason)
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
    max_outbox_bytes: int
    max_sessions: int
    max_calls: int
    handshake_timeout: float
    max_protocol_errors: int
    page_bytes: int


class _Connection:
    """One carrier connection: handshake, sessions, calls, and its outbox."""

    def __init__(self, server: RopeServer, channel: MessageChannel) -> None:
        self.server = server
        self.channel = channel
        self.limits = server._limits
        self.outbox = Outbox(channel, self.limits.max_outbox_bytes, on_overflow=self._overflowed)
        self.sessions: dict[str, str] = {}
        """session id -> the JSON-encoded id, ready to splice into notifications."""
        self.opened: set[str] = set()
        """Sessions opened and not closed on this connection (told to session listeners)."""
        self.snapshots: dict[str, object] = {}
        """session id -> a token for the snapshot still being sent to it (a reopen cancels it)."""
        self.close_reason: str | None = None
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
        self.outbox.put(_CHANGE_PREFIX + encoded_session + ',"change":' + change + "}}")

    def _overflowed(self) -> None:
        # The writer may be stuck in a send to a peer that does not read: stop it; the
        # connection ends and the client catches up after reconnecting.
        self.close_reason = f"client too slow: over {self.outbox.max_bytes} bytes unsent"
        log.warning("dropping %s: %s", self.channel.peer, self.close_reason)
        self.sessions.clear()
        self.snapshots.clear()
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
            self.snapshots.clear()
            self.outbox.finish()

    async def _write(self) -> None:
        try:
            await self.outbox.run()
        except (ConnectionError, OSError, RopeError) as error:
            log.debug("write to %s failed: %r", self.channel.peer, error)
        self.sessions.clear()

    async def _receive_one(self) -> Request | Response | FrameError | MessageError | None:
        """The next message, or the error it amounts to; None at EOF."""
        try:
            text = await self.channel.receive()
        except FrameError as error:
            return error
        if text is None:
            return None
        try:
            return parse(text)
        except MessageError as error:
            return error

    async def _receive(self) -> Request | None:
        """The next request of a greeted peer; answers and skips what cannot be parsed. None at EOF."""
        while True:
            message = await self._receive_one()
            if message is None or isinstance(message, Request):
                return message
            if isinstance(message, Response):
                continue  # clients never answer anything of ours: ignore
            if isinstance(message, FrameError):
                self._error(None, message.to_json())
                if message.fatal:
                    return None
            elif message.answerable:
                self._error(message.request_id, message.to_json())
            if not self._count_error():
                return None

    def _count_error(self) -> bool:
        self.protocol_errors += 1
        if self.protocol_errors > self.limits.max_protocol_errors:
            log.info("dropping %s: too many protocol errors", self.channel.peer)
            return False
        return True

    async def _handshake(self) -> bool:
        """The first message must be ``rope.hello``: anything else gets one error, then we hang up.

        Before the handshake the peer is a stranger: it gets no second chance, so junk costs
        the server one short answer, never one per message.
        """
        try:
            async with asyncio.timeout(self.limits.handshake_timeout):
                request = await self._receive_one()
        except TimeoutError:
            log.info("no handshake from %s", self.channel.peer)
            return False
        if request is None:
            return False
        if isinstance(request, FrameError):
            self._error(None, request.to_json())
            return False
        if isinstance(request, MessageError):
            self._error(request.request_id, request.to_json())
            return False
        if isinstance(request, Response) or request.method != "rope.hello" or not isinstance(request.params, dict):
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
        if not isinstance(session, str) or len(session) > MAX_SESSION_ID:
            raise RopeError(f'"session" must be a string of at most {MAX_SESSION_ID} characters',
                            code=ErrorCode.INVALID_PARAMS)
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
            self.snapshots.pop(session, None)
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
        self.snapshots.pop(session, None)  # nor the rest of an older snapshot
        encoded = dumps(session)
        if replay is not None:
            self.outbox.put(encode_result(request.id, {"mode": "resume", "epoch": server.epoch, "seq": server.seq}))
            for change in replay:
                self._notify(encoded, change)
        else:
            self._send_snapshot(request, session, encoded)
        self.sessions[session] = encoded
        if session not in self.opened:
            self.opened.add(session)
            self.server._session_event("open", self, session)

    def _send_snapshot(self, request: Request, session: str, encoded_session: str) -> None:
        """The answer holds the first page; the others follow as ``rope.snapshot`` notifications,
        encoded only when the writer gets to them, so a snapshot of any size costs one page of
        memory (plus references to the objects' current state dicts, which are copied on write)."""
        server = self.server
        records = server._snapshot_refs()
        pages = _pages(records, self.limits.page_bytes)
        first, more = next(pages)
        self.outbox.put(
            '{"jsonrpc":"2.0","id":' + dumps(request.id) + ',"result":{"mode":"snapshot","epoch":' + dumps(server.epoch)
            + ',"seq":' + str(server.seq) + ',"objects":[' + first + '],"more":' + _bool(more) + "}}"
        )
        if more:
            token = self.snapshots[session] = object()
            self.outbox.put_lazy(self._rest(session, encoded_session, token, pages))

    def _rest(self, session: str, encoded_session: str, token: object,
              pages: Iterator[tuple[str, bool]]) -> Iterator[str]:
        for page, more in pages:
            if self.snapshots.get(session) is not token:
                return  # reopened or closed meanwhile: the client no longer wants this one
            if not more:
                del self.snapshots[session]
            yield _PAGE_PREFIX + encoded_session + ',"objects":[' + page + '],"more":' + _bool(more) + "}}"

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
        if not request.untagged:  # else nothing in them to import
            args, kwargs = obj.import_arguments(args), obj.import_arguments(kwargs)
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
