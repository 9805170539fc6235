"""The ROPE client: one connection, several client instances, reconnection.

`RopeConnection` owns the carrier channel and everything that runs on it: a
supervisor task (connect, serve, reconnect with backoff) and, per channel, a
reader, a writer and a pinger. The reader applies every message in arrival
order and synchronously, including the answers to ``rope.open`` and to calls:
a snapshot is installed before any change that follows it is looked at, and a
call that created an object returns its proxy only after the ``add`` change
(which the server sends first) has made it.

`RopeClient` is one multiplexed session: its own copy of the objects, its own
sequence number, its own events. A dropped connection fails the calls in
flight (they may or may not have run) and, once reconnected, each session
resumes from the last change it applied; if the server no longer has that
change (too old, or the server restarted), it gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from rope.channel import DEFAULT_MAX_OUTBOX_BYTES, MessageChannel, Outbox
from rope.errors import (
    CallTimeout,
    ClientClosed,
    ConnectionLost,
    ProtocolError,
    RopeError,
    Unauthorized,
    error_from_json,
)
from rope.events import EventEmitter, Handler, TaskSet
from rope.messages import MessageError, Request, Response, dumps, encode_request, parse
from rope.proxy import RemoteObject
from rope.server import PROTOCOL_VERSION
from rope.values import SCALARS, untagged

log = logging.getLogger("rope.client")

T = TypeVar("T")

Connector = Callable[[], Awaitable[MessageChannel]]
"""Opens a fresh channel to the server; called again for every reconnection."""


class ClientState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    """The channel is up and greeted; the session's state has not arrived yet."""
    CONNECTED = "connected"
    """The session holds the server's state and receives its changes."""
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True)
class ReconnectPolicy:
    initial_delay: float = 0.05
    max_delay: float = 2.0
    factor: float = 2.0
    max_attempts: int | None = None
    """Consecutive failed attempts before giving up (None: never give up)."""

    def delays(self) -> Any:
        delay = self.initial_delay
        for _ in itertools.count() if self.max_attempts is None else range(self.max_attempts):
            yield delay
            delay = min(delay * self.factor, self.max_delay)


_Transform = Callable[[Any], Any]


@dataclass
class _Pending:
    future: asyncio.Future[Any]
    transform: _Transform | None


class RopeConnection:
    """One carrier connection shared by any number of `RopeClient` sessions.

    Events: ``open``, ``disconnected``, ``close``, ``error(exception)``.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        token: str | None = None,
        call_timeout: float = 10.0,
        reconnect: ReconnectPolicy | None = ReconnectPolicy(),
        ping_interval: float | None = 5.0,
        ping_timeout: float = 10.0,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
    ) -> None:
        self._connector = connector
        self._token = token
        self.call_timeout = call_timeout
        self._reconnect_policy = reconnect
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_outbox_bytes = max_outbox_bytes
        self._tasks = TaskSet()
        self._emitter = EventEmitter(self._tasks)
        self._clients: dict[str, RopeClient] = {}
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._outbox: Outbox | None = None
        self._channel: MessageChannel | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stop_channel: asyncio.Event | None = None
        self._channel_done = asyncio.Event()
        self._closing = False
        self._close_called = False
        self._torn_down = False
        self._closed = asyncio.Event()
        self.server_epoch: str | None = None
        self.reconnections = 0
        self._last_heard = 0.0
        """When the current channel last brought a message (for the pinger)."""

    # -- public API ------------------------------------------------------------------

    async def open(self) -> RopeConnection:
        """Connect and greet the server once; raises if that fails (`Unauthorized`, ConnectionError)."""
        if self._supervisor is not None:
            raise RuntimeError("already opened")
        channel = await self._connect_once()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(channel), name="rope supervisor")
        return self

    async def client(self, session: str | None = None) -> RopeClient:
        """A new session over this connection, returned once CONNECTED (its state has arrived)."""
        if self._closing:
            raise ClientClosed("connection is closed")
        session = session or secrets.token_hex(6)
        if session in self._clients:
            raise ValueError(f"session {session!r} already exists")
        client = RopeClient(self, session)
        self._clients[session] = client
        if self._outbox is not None:
            client._channel_open()
        loop = asyncio.get_running_loop()
        try:
            # Bounded by call_timeout of silence, not in total: a large snapshot may take longer,
            # page after page.
            async with asyncio.timeout(self.call_timeout) as scope:
                client._on_page = lambda: scope.reschedule(loop.time() + self.call_timeout)
                await client.wait_connected()
        except BaseException:
            await client.close()
            raise
        finally:
            client._on_page = None
        return client

    @property
    def is_up(self) -> bool:
        """True while a greeted channel is in place."""
        return self._outbox is not None

    @property
    def clients(self) -> list[RopeClient]:
        return list(self._clients.values())

    def on(self, event: str, handler: Handler | None = None) -> Any:
        return self._emitter.on(event, handler) if handler is not None else self._emitter.on(event)

    def off(self, event: str, handler: Handler) -> None:
        self._emitter.off(event, handler)

    async def drop(self) -> None:
        """Abandon the current channel as if the network failed: nothing more is read from it,
        and reconnection follows. For tests and tools."""
        channel = self._channel
        if channel is not None and self._stop_channel is not None:
            self._stop_channel.set()
            await self._channel_done.wait()

    async def close(self) -> None:
        """Close every session and the channel, stop reconnecting, wait for every task. Idempotent."""
        if self._close_called:
            await self._closed.wait()
            return
        self._close_called = True
        self._closing = True
        for client in list(self._clients.values()):
            client._set_state(ClientState.CLOSING)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._channel is not None:
            await self._channel.close()
        self._teardown()
        await self._tasks.close()
        self._closed.set()

    def _teardown(self) -> None:
        """Fail what is pending, close the sessions, say ``close``: once, whoever ends the connection."""
        if self._torn_down:
            return
        self._torn_down = True
        self._closing = True
        self._fail_pending(ClientClosed("connection closed"))
        for client in list(self._clients.values()):
            client._finish()
        self._clients.clear()
        self._emitter.emit("close")

    async def __aenter__(self) -> RopeConnection:
        if self._supervisor is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests -------------------------------------------------------------------------

    def _request(self, method: str, params: dict[str, Any], transform: _Transform | None = None) -> asyncio.Future[Any]:
        """Queue a request; its future settles on the reader (``transform`` runs there too)."""
        if self._outbox is None:
            raise ConnectionLost("not connected")
        request_id = next(self._ids)
        message = encode_request(request_id, method, params)  # raises ValueError (NaN...) before anything is kept
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, transform)
        if not self._outbox.put(message):
            del self._pending[request_id]
            raise ConnectionLost("connection is overloaded or closing")
        future.add_done_callback(lambda _: self._pending.pop(request_id, None))
        return future

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        if self._outbox is not None:
            self._outbox.put(dumps({"jsonrpc": "2.0", "method": method, "params": params}))

    def _fail_pending(self, error: RopeError) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(error)

    # -- channel lifecycle ------------------------------------------------------------

    async def _connect_once(self) -> MessageChannel:
        channel = await self._connector()
        try:
            hello = encode_request(0, "rope.hello", {"version": PROTOCOL_VERSION, "token": self._token})
            await channel.send_many([hello])
            async with asyncio.timeout(self.call_timeout):
                text = await channel.receive()
            if text is None:
                raise ConnectionLost("server closed the connection during the handshake")
            answer = parse(text)
            if not isinstance(answer, Response) or answer.id != 0:
                raise ProtocolError(f"unexpected handshake answer: {text[:200]!r}")
            if answer.error is not None:
                raise error_from_json(answer.error)
            if not isinstance(answer.result, dict):
                raise ProtocolError("malformed handshake answer")
            self.server_epoch = answer.result.get("epoch")
        except BaseException:
            await channel.close()
            raise
        return channel

    async def _supervise(self, channel: MessageChannel) -> None:
        while True:
            try:
                await self._run_channel(channel)
            finally:
                self._outbox = None
                self._channel = None
                self._fail_pending(ConnectionLost("connection lost"))
            if self._closing:
                return
            for client in list(self._clients.values()):
                client._channel_lost()
            self._emitter.emit("disconnected")
            next_channel = await self._reconnect()
            if next_channel is None:
                self._teardown()  # the application still calls close() to reap the tasks
                return
            channel = next_channel
            self.reconnections += 1

    async def _reconnect(self) -> MessageChannel | None:
        policy = self._reconnect_policy
        if policy is None:
            return None
        for delay in policy.delays():
            await asyncio.sleep(delay)
            try:
                return await self._connect_once()
            except Unauthorized as error:
                log.warning("reconnection refused: %s", error)
                self._emitter.emit("error", error)
                return None
            except (OSError, ConnectionError, TimeoutError, RopeError) as error:
                log.debug("reconnection failed: %r", error)
        self._emitter.emit("error", ConnectionLost("gave up reconnecting"))
        return None

    async def _run_channel(self, channel: MessageChannel) -> None:
        """Serve one channel until any of its tasks ends; then stop the others."""
        outbox = Outbox(channel, self._max_outbox_bytes)
        self._channel, self._outbox = channel, outbox
        stop = self._stop_channel = asyncio.Event()
        self._channel_done.clear()
        self._last_heard = asyncio.get_running_loop().time()
        self._emitter.emit("open")
        for client in list(self._clients.values()):
            client._channel_open()
        tasks = [
            asyncio.ensure_future(self._read(channel)),
            asyncio.ensure_future(self._write(outbox)),
            asyncio.ensure_future(stop.wait()),
        ]
        if self._ping_interval is not None:
            tasks.append(asyncio.ensure_future(self._ping(self._ping_interval)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._outbox = None
            await channel.close()
            self._channel_done.set()

    async def _write(self, outbox: Outbox) -> None:
        with contextlib.suppress(ConnectionError, OSError, RopeError):
            await outbox.run()

    async def _ping(self, interval: float) -> None:
        """A frozen server keeps TCP open forever: only hearing from it proves it is alive.

        Any message counts, not only the ping's answer, which may wait behind a large snapshot.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                ping = self._request("rope.ping", {})
            except RopeError:
                return
            ping.add_done_callback(_retrieve)
            while not ping.done():
                silent = loop.time() - self._last_heard
                if silent >= self._ping_timeout:
                    log.info("nothing from the server in %.1f s: reconnecting", silent)
                    return
                await asyncio.wait({ping}, timeout=self._ping_timeout - silent)
            if ping.cancelled() or ping.exception() is not None:
                return

    async def _read(self, channel: MessageChannel) -> None:
        while True:
            try:
                text = await channel.receive()
                self._last_heard = asyncio.get_running_loop().time()
            except ProtocolError as error:
                log.warning("bad frame from server: %s", error)
                if getattr(error, "fatal", True):
                    return
                continue
            if text is None:
                return
            try:
                message = parse(text)
            except MessageError as error:
                log.warning("bad message from server: %s", error)
                continue
            try:
                if isinstance(message, Response):
                    self._on_response(message)
                else:
                    self._on_request(message)
            except _Resync as resync:
                resync.client._reopen()
            except Exception:
                log.exception("failed to apply %.200s", text)

    def _on_response(self, response: Response) -> None:
        entry = self._pending.pop(response.id, None) if isinstance(response.id, int) else None
        if entry is None or entry.future.done():
            return  # timed out or cancelled meanwhile
        if response.error is not None:
            entry.future.set_exception(error_from_json(response.error))
            return
        try:
            value = entry.transform(response.result) if entry.transform else response.result
        except Exception as error:
            entry.future.set_exception(error)
            raise
        entry.future.set_result(value)

    def _on_request(self, request: Request) -> None:
        if request.method not in ("rope.change", "rope.snapshot") or not isinstance(request.params, dict):
            log.debug("ignoring %s from server", request.method)
            return
        client = self._clients.get(request.params.get("session"))  # type: ignore[arg-type]
        if client is None:
            return
        if request.method == "rope.snapshot":
            client._apply_page(request.params)
            return
        change = request.params.get("change")
        if isinstance(change, dict):
            client._apply_change(change, untagged=request.untagged)

    def _forget(self, client: RopeClient) -> None:
        self._clients.pop(client.session, None)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coro)

    @property
    def tasks(self) -> TaskSet:
        return self._tasks


class _Resync(Exception):
    def __init__(self, client: RopeClient) -> None:
        super().__init__(client.session)
        self.client = client


class RopeClient:
    """One session: a synchronised copy of the server's objects.

    Events: ``open``, ``connected``, ``disconnected``, ``close``, ``error``,
    ``objectadd(proxy)``, ``objectclose(proxy)``.
    """

    def __init__(self, connection: RopeConnection, session: str) -> None:
        self.connection = connection
        self.session = session
        self.state = ClientState.CONNECTING
        self.epoch: str | None = None
        self.seq = 0
        """The last change applied: where a reconnection resumes from."""
        self.objects: dict[str, RemoteObject] = {}
        self.snapshots = 0
        """How many full snapshots were installed (1 after the first connect)."""
        self._emitter = EventEmitter(connection.tasks)
        self._connected = asyncio.Event()
        self._resyncing = False
        self._partial: dict[str, Any] | None = None
        """A snapshot whose pages are still arriving."""
        self._on_page: Callable[[], None] | None = None
        self.encode: Callable[[Any], Any] = encode
        """How `call` turns arguments into wire values (proxies into ``{"$ref": id}``): a wrapper with
        object types of its own replaces it with one walk doing both (see `encode`)."""

    def __repr__(self) -> str:
        return f"RopeClient({self.session!r}, {self.state.name}, seq={self.seq}, objects={len(self.objects)})"

    # -- public API ------------------------------------------------------------------

    def get(self, object_id: str) -> RemoteObject:
        try:
            return self.objects[object_id]
        except KeyError:
            raise KeyError(f"no object {object_id!r} (known: {len(self.objects)})") from None

    def find(self, type: str | None = None) -> list[RemoteObject]:
        return [obj for obj in self.objects.values() if type is None or obj.type == type]

    async def wait_connected(self) -> None:
        """Until the session holds the server's state (bound it with ``asyncio.timeout``)."""
        if self.state is ClientState.CLOSED:
            raise ClientClosed("client is closed")
        await self._connected.wait()
        if self.state is not ClientState.CONNECTED:
            raise ClientClosed("client is closed")

    # The bound covers waiting for a connection too, and the error names the call.
    async def call(
        self, object_id: str, method: str, *args: Any, timeout: float | None = None, **kwargs: Any  # noqa: ASYNC109
    ) -> Any:
        """Call ``method`` of object ``object_id``; waits for a connection within ``timeout``.

        Raises `CallTimeout` (a TimeoutError) when no answer comes in time.
        """
        limit = self.connection.call_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await self.wait_connected()
                params = {"session": self.session, "object": object_id, "method": method}
                if args:
                    params["args"] = self.encode(list(args))
                if kwargs:
                    params["kwargs"] = self.encode(kwargs)
                future = self.connection._request("rope.call", params, self._decode_result)
                return await future
        except TimeoutError:
            raise CallTimeout(f"{method} on {object_id} got no answer within {limit} s") from None

    def on(self, event: str, handler: Handler | None = None) -> Any:
        return self._emitter.on(event, handler) if handler is not None else self._emitter.on(event)

    def once(self, event: str, handler: Handler) -> Handler:
        return self._emitter.once(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        self._emitter.off(event, handler)

    async def wait_for(self, event: str) -> tuple[Any, ...]:
        return await self._emitter.wait_for(event)

    async def close(self) -> None:
        """End this session (the connection stays up for the others). Idempotent."""
        if self.state in (ClientState.CLOSING, ClientState.CLOSED):
            return
        self._set_state(ClientState.CLOSING)
        self.connection._notify("rope.close", {"session": self.session})
        self.connection._forget(self)
        self._finish()

    # -- driven by the connection -----------------------------------------------------

    def _set_state(self, state: ClientState) -> None:
        self.state = state
        if state is not ClientState.CONNECTED:
            self._connected.clear()

    def _channel_open(self) -> None:
        self._set_state(ClientState.OPEN)
        self._emitter.emit("open")
        self._reopen()

    def _reopen(self) -> None:
        """Ask for this session's state: a resume from ``seq`` when we have one."""
        params: dict[str, Any] = {"session": self.session}
        if self.epoch is not None:
            params["resume"] = {"epoch": self.epoch, "seq": self.seq}
        self._resyncing = True
        try:
            future = self.connection._request("rope.open", params, self._apply_open)
        except ConnectionLost:
            return
        future.add_done_callback(self._open_failed)

    def _open_failed(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        error = future.exception()
        if isinstance(error, ConnectionLost | ClientClosed):
            return
        log.warning("session %s could not open: %s", self.session, error)
        self._emitter.emit("error", error)

    def _channel_lost(self) -> None:
        self._partial = None
        if self.state in (ClientState.CLOSING, ClientState.CLOSED):
            return
        was_up = self.state in (ClientState.OPEN, ClientState.CONNECTED)
        self._set_state(ClientState.CONNECTING)
        if was_up:
            self._emitter.emit("disconnected")

    def _finish(self) -> None:
        if self.state is ClientState.CLOSED:
            return
        self._set_state(ClientState.CLOSED)
        self._connected.set()  # wake waiters: they see CLOSED and raise
        self._emitter.emit("close")

    def _apply_open(self, result: Any) -> None:
        if not isinstance(result, dict) or result.get("mode") not in ("resume", "snapshot"):
            raise ProtocolError(f"malformed rope.open answer: {result!r}"[:300])
        if self.state in (ClientState.CLOSING, ClientState.CLOSED):
            return
        self._partial = None  # an answer to a later rope.open supersedes a snapshot still arriving
        if result["mode"] == "snapshot":
            if result.get("more") is True:
                self._partial = {**result, "objects": list(result.get("objects") or [])}
                return  # CONNECTED once the last page is in
            self._install_snapshot(result)
        elif result.get("epoch") != self.epoch:
            raise ProtocolError("resume answer for another epoch")
        self._connected_now()

    def _apply_page(self, page: dict[str, Any]) -> None:
        partial = self._partial
        objects = page.get("objects")
        if partial is None or not isinstance(objects, list):
            return  # a page of a snapshot we no longer wait for
        partial["objects"].extend(objects)
        if self._on_page is not None:
            self._on_page()
        if page.get("more") is True:
            return
        self._partial = None
        self._install_snapshot(partial)
        self._connected_now()

    def _connected_now(self) -> None:
        self._resyncing = False
        self._set_state(ClientState.CONNECTED)
        self._connected.set()
        self._emitter.emit("connected")

    def _install_snapshot(self, result: dict[str, Any]) -> None:
        records = [record for record in result.get("objects", []) if _valid_record(record)]
        first = self.epoch is None
        self.epoch = result.get("epoch")
        self.seq = int(result.get("seq", 0))
        self.snapshots += 1
        alive = {record["id"] for record in records}
        for object_id in [object_id for object_id in self.objects if object_id not in alive]:
            self._remove(object_id)
        added: list[RemoteObject] = []
        for record in records:
            if record["id"] not in self.objects:
                proxy = RemoteObject(self, record, self.connection.tasks)
                self.objects[proxy.id] = proxy
                added.append(proxy)
        # States last: a state may reference an object that comes later in the list.
        for record in records:
            proxy = self.objects[record["id"]]
            proxy._set_state(self._decode(record.get("state") or {}), notify=proxy not in added)
        if not first:
            for proxy in added:
                self._emitter.emit("objectadd", proxy)

    def _apply_change(self, change: dict[str, Any], *, untagged: bool = False) -> None:
        """``untagged``: its message's text showed no tag (`Request.untagged`), so no value needs decoding."""
        seq = change.get("seq")
        if not isinstance(seq, int) or self._resyncing or self.state is not ClientState.CONNECTED:
            return
        if seq <= self.seq:
            return  # already applied (a replay overlapping what we had)
        if seq != self.seq + 1:
            log.warning("session %s: change %d after %d, resynchronising", self.session, seq, self.seq)
            raise _Resync(self)
        self.seq = seq
        kind = change.get("kind")
        decode = _as_is if untagged else self._decode
        if kind == "add":
            record = change.get("object")
            if isinstance(record, dict) and _valid_record(record):
                proxy = RemoteObject(self, record, self.connection.tasks)
                self.objects[proxy.id] = proxy
                proxy._set_state(decode(record.get("state") or {}), notify=False)
                self._emitter.emit("objectadd", proxy)
            return
        found = self.objects.get(str(change.get("id")))
        if found is None:
            return
        proxy = found
        if kind == "state" and isinstance(change.get("state"), dict):
            proxy._update_state(decode(change["state"]))
        elif kind == "event" and isinstance(change.get("event"), str):
            args = change.get("args")
            proxy._emit(change["event"], decode(args) if isinstance(args, list) else [])
        elif kind == "close":
            self._remove(proxy.id)

    def _remove(self, object_id: str) -> None:
        proxy = self.objects.pop(object_id, None)
        if proxy is not None:
            proxy._mark_closed()
            self._emitter.emit("objectclose", proxy)

    def _decode_result(self, result: Any) -> Any:
        if not isinstance(result, dict) or "value" not in result:
            raise ProtocolError(f"malformed call result: {result!r}"[:300])
        return self._decode(result["value"])

    def _decode(self, value: Any) -> Any:
        """``{"$ref": id}`` -> the proxy (left as is when this session does not know the id)."""
        return value if untagged(value) else self._resolve(value)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(ref := value.get("$ref"), str):
                return self.objects.get(ref, value)
            return {key: item if type(item) in SCALARS else self._resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [item if type(item) in SCALARS else self._resolve(item) for item in value]
        return value


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _valid_record(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("id"), str) and isinstance(record.get("type"), str)


def encode(value: Any) -> Any:
    """Call arguments for the wire: proxies become ``{"$ref": id}``, dict keys strings, tuples lists."""
    kind = type(value)
    if kind is dict:
        return {
            key if type(key) is str else str(key): item if type(item) in SCALARS else encode(item)
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in SCALARS else encode(item) for item in value]
    if isinstance(value, RemoteObject):
        return {"$ref": value.id}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


async def connect(connector: Connector, **options: Any) -> RopeConnection:
    """Open a `RopeConnection` (see its constructor for ``options``)."""
    return await RopeConnection(connector, **options).open()


def _as_is(value: Any) -> Any:
    """`RopeClient._decode` for values whose message text held no tag."""
    return value


__all__ = [
    "ClientState",
    "Connector",
    "ReconnectPolicy",
    "RopeClient",
    "RopeConnection",
    "connect",
]
