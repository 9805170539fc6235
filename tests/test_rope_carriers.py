"""ROPE behaviour over both carriers: the same tests against real servers on 127.0.0.1.

Every wait is bounded and waits for a condition, never for time to pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from rope import (
    CallTimeout,
    ClientState,
    ConnectionLost,
    Credentials,
    ErrorCode,
    InvalidParams,
    ReconnectPolicy,
    RemoteError,
    RemoteObject,
    RopeConnection,
    RopeObject,
    RopeServer,
    Unauthorized,
    UnknownMethod,
    UnknownObject,
    current_caller,
    exposed,
    members_only,
)
from rope.libp2p import PROTOCOL_ID, libp2p_connector, serve_libp2p
from rope.websocket import WebSocketListener, websocket_connector
from swarm.bridge import P2PHost, open_host

CARRIERS = ["websocket", "libp2p"]
WAIT = 10.0
"""Upper bound for any condition to become true (never reached when things work)."""

FAST_RECONNECT = ReconnectPolicy(initial_delay=0.01, max_delay=0.2)


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (bounded): the conditions span processes and threads."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# -- the objects under test -----------------------------------------------------------


class Item(RopeObject):
    def __init__(self, name: str, parent: RopeObject) -> None:
        super().__init__("Item", state={"name": name, "count": 0, "closed": False}, events=["bumped"], parent=parent)
        self.method(self.close, name="close")

    @exposed
    async def bump(self, by: int = 1) -> int:
        count = self.state["count"] + by
        self.update_state(count=count)
        self.emit("bumped", count)
        return count


class Room(RopeObject):
    """A root object with one method per behaviour the tests need."""

    def __init__(self) -> None:
        super().__init__("Room", id="room", state={"items": 0}, events=["tick"])
        self.release = asyncio.Event()
        self.gate = asyncio.Event()
        for fn in (self.echo, self.add, self.fail, self.wait_release, self.create_item, self.tick, self.ticks):
            self.method(fn)
        self.method(lambda: current_caller.get().peer.peer_id, name="whoami")

    async def echo(self, value: Any) -> Any:
        return value

    async def add(self, a: int, b: int = 0) -> int:
        return a + b

    async def fail(self, kind: str, message: str) -> None:
        raise {"value": ValueError, "key": KeyError, "custom": _CustomError}[kind](message)

    async def wait_release(self) -> str:
        await self.release.wait()
        return "released"

    async def create_item(self, name: str) -> Item:
        item = Item(name, self)
        self.update_state(items=self.state["items"] + 1)
        return item

    def tick(self, n: int) -> None:
        self.emit("tick", n)

    async def ticks(self, start: int, count: int, pause_after: int | None = None) -> None:
        """Emit ticks over several event-loop steps; after ``pause_after``, wait for ``gate``."""
        for n in range(start, start + count):
            self.emit("tick", n)
            await asyncio.sleep(0)
            if n == pause_after:
                await self.gate.wait()
                self.gate.clear()


class _CustomError(Exception):
    pass


# -- one server reachable over one carrier --------------------------------------------


class Site:
    """A RopeServer served over ``carrier``, restartable at the same address."""

    def __init__(self, carrier: str) -> None:
        self.carrier = carrier
        self.server = RopeServer()
        self.listener: WebSocketListener | None = None
        self.host: P2PHost | None = None
        self.client_host: P2PHost | None = None
        self._stack: list[Any] = []

    async def start(self, server: RopeServer) -> None:
        self.server = server
        if self.carrier == "websocket":
            port = self.listener.port if self.listener is not None else 0
            self.listener = await WebSocketListener(server, port=port).start()
        else:
            if self.host is None:
                self.host = await self._enter(open_host())
                self.client_host = await self._enter(open_host())
                await self.client_host.connect(self.host.listen_addrs[0])
            serve_libp2p(server, self.host)

    async def _enter(self, manager: Any) -> Any:
        self._stack.append(manager)
        return await manager.__aenter__()

    async def stop_server(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        await self.server.close()

    async def restart(self, server: RopeServer) -> None:
        await self.stop_server()
        await self.start(server)

    def connector(self) -> Any:
        if self.carrier == "websocket":
            assert self.listener is not None
            return websocket_connector(self.listener.url)
        assert self.host is not None and self.client_host is not None
        client, address = self.client_host, self.host.listen_addrs[0]
        return libp2p_connector(client, self.host.peer_id, dial=lambda: client.connect(address))

    def connection(self, **options: Any) -> RopeConnection:
        options.setdefault("reconnect", FAST_RECONNECT)
        options.setdefault("call_timeout", WAIT)
        return RopeConnection(self.connector(), **options)

    @property
    def client_identity(self) -> str | None:
        return self.client_host.peer_id if self.client_host is not None else None

    async def close(self) -> None:
        await self.stop_server()
        while self._stack:
            await self._stack.pop().__aexit__(None, None, None)


@pytest.fixture(params=CARRIERS)
async def site(request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    site = Site(request.param)
    room = Room()
    server = RopeServer(replay_size=64)
    server.register(room)
    await site.start(server)
    try:
        yield site
    finally:
        room.release.set()
        await site.close()
    # Structured concurrency: nothing ROPE started outlives its owners.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leftovers, leftovers


def room_of(site: Site) -> Room:
    room = site.server.get("room")
    assert isinstance(room, Room)
    return room


# -- calls and errors -------------------------------------------------------------------


async def test_calls_results_and_errors(site: Site) -> None:
    async with site.connection() as connection:
        client = await connection.client()
        assert client.state is ClientState.CONNECTED
        room = client.get("room")
        assert room.type == "Room" and room.items == 0 and "echo" in room.methods
        value = {"a": [1, 2.5, "x", None, True], "nested": {"k": "é"}}
        assert await room.echo(value) == value
        assert await room.add(2, b=3) == 5
        assert await room.whoami() == site.client_identity  # the authenticated libp2p peer (None on WebSocket)

        with pytest.raises(ValueError, match="bad value") as info:
            await room.fail("value", "bad value")
        assert isinstance(info.value, RemoteError) and info.value.remote_type == "ValueError"
        with pytest.raises(KeyError):
            await room.fail("key", "k")
        with pytest.raises(RemoteError) as custom:
            await room.fail("custom", "mine")
        assert custom.value.remote_type == "_CustomError" and custom.value.message == "mine"

        with pytest.raises(UnknownObject):
            await client.call("nope", "echo", 1)
        with pytest.raises(UnknownMethod):
            await room.call("nope")
        with pytest.raises(InvalidParams):
            await room.add()  # missing a
        with pytest.raises(InvalidParams):
            await room.add(1, c=2)
        with pytest.raises(AttributeError):
            _ = room.nothing_like_this

        with pytest.raises(CallTimeout):
            await room.call("wait_release", timeout=0.05)
        pending = asyncio.ensure_future(room.wait_release())
        room_of(site).release.set()
        assert await asyncio.wait_for(pending, WAIT) == "released"
        assert await room.add(1, 1) == 2  # still serving after all that


async def test_values_larger_than_one_read_travel_whole(site: Site) -> None:
    """A carrier reads 64 KiB at a time (`rope.reads`): a call and its result of over half a MB each
    arrive whole, in order with a small call behind them."""
    async with site.connection() as connection:
        room = (await connection.client()).get("room")
        big = {"blob": "é" * 1_000 + "x" * 500_000, "list": list(range(10_000))}
        result, small = await asyncio.gather(room.echo(big), room.add(1, 2))
        assert result == big and small == 3


# -- state, events, objects across clients ------------------------------------------------


async def test_objects_state_and_events_seen_by_two_clients(site: Site) -> None:
    async with site.connection() as conn_a, site.connection() as conn_b:
        a, b = await conn_a.client(), await conn_b.client()
        added: list[RemoteObject] = []
        b.on("objectadd", added.append)

        item_a = await a.get("room").create_item("one")
        assert isinstance(item_a, RemoteObject) and item_a.type == "Item" and item_a.name == "one"
        assert item_a.parent is a.get("room") and a.get("room").items == 1
        await eventually(lambda: item_a.id in b.objects)
        item_b = b.get(item_a.id)
        assert added == [item_b] and b.get("room").items == 1

        bumps_a: list[int] = []
        bumps_b: list[int] = []
        changes_b: list[dict[str, Any]] = []
        item_a.on("bumped", bumps_a.append)
        item_b.on("bumped", bumps_b.append)
        item_b.observer.on("statechange", changes_b.append)
        assert await item_a.bump(2) == 2
        assert item_a.count == 2  # the state change precedes the answer
        await eventually(lambda: bumps_b == [2])
        assert bumps_a == [2] and item_b.count == 2 and changes_b == [{"count": 2}]

        closed: list[str] = []
        item_a.observer.on("close", lambda: closed.append("a"))
        b.on("objectclose", lambda proxy: closed.append(f"b:{proxy.id == item_a.id}"))
        await item_b.close()  # closed by the other client
        await eventually(lambda: item_a.closed and len(closed) == 2)
        assert sorted(closed) == ["a", "b:True"]
        assert item_a.id not in a.objects and item_a.id not in b.objects
        with pytest.raises(UnknownObject):
            await item_a.bump()


async def test_async_handlers_and_refs_in_arguments(site: Site) -> None:
    async with site.connection() as connection:
        client = await connection.client()
        room = client.get("room")
        seen: asyncio.Queue[int] = asyncio.Queue()

        async def on_tick(n: int) -> None:
            await seen.put(n)

        room.on("tick", on_tick)
        await room.tick(7)
        assert await asyncio.wait_for(seen.get(), WAIT) == 7
        item = await room.create_item("x")
        assert await room.echo([item, {"k": item}]) == [item, {"k": item}]  # proxies travel as references


async def test_sessions_multiplexed_on_one_connection(site: Site) -> None:
    async with site.connection() as connection:
        first, second = await connection.client(), await connection.client()
        assert first.session != second.session and len(connection.clients) == 2
        ticks: dict[str, list[int]] = {"first": [], "second": []}
        first.get("room").on("tick", ticks["first"].append)
        second.get("room").on("tick", ticks["second"].append)
        item = await first.get("room").create_item("shared")
        await eventually(lambda: item.id in second.objects)
        await second.get("room").tick(1)
        await eventually(lambda: ticks == {"first": [1], "second": [1]})

        closed: list[bool] = []
        first.on("close", lambda: closed.append(True))
        await first.close()
        assert first.state is ClientState.CLOSED and closed == [True]
        await second.get("room").tick(2)
        await eventually(lambda: ticks["second"] == [1, 2])
        assert ticks["first"] == [1]
        assert site.server.connection_count == 1


# -- reconnection -----------------------------------------------------------------------------


async def test_reconnection_mid_stream_loses_and_duplicates_nothing(site: Site) -> None:
    async with site.connection() as connection:
        client = await connection.client()
        room = client.get("room")
        got: list[int] = []
        room.on("tick", got.append)
        states: list[str] = []
        for event in ("disconnected", "open", "connected"):
            client.on(event, lambda event=event: states.append(event))

        server_room = room_of(site)
        total = 0
        for drop in range(1, 4):
            stream = asyncio.ensure_future(room.ticks(total, 40, pause_after=total + 9))
            await eventually(lambda total=total: len(got) == total + 10)
            await connection.drop()  # mid-stream: 30 more ticks come while the client is away
            server_room.gate.set()
            with contextlib.suppress(ConnectionLost):  # the answer may be lost with the connection
                await stream
            total += 40
            await eventually(lambda n=drop: client.state is ClientState.CONNECTED and connection.reconnections == n)
        await room.ticks(total, 10)  # a call after the last reconnect
        total += 10
        await eventually(lambda: len(got) >= total)
        assert got == list(range(total))  # in order, none lost, none twice
        assert client.snapshots == 1  # every reconnection resumed from the replay buffer
        assert states.count("disconnected") == 3 and states.count("connected") == 3


async def test_reconnection_after_a_long_gap_takes_a_snapshot(site: Site) -> None:
    site.server._log = type(site.server._log)(site.server._log, maxlen=4)  # a tiny replay buffer
    async with site.connection() as connection:
        client = await connection.client()
        server_room = room_of(site)
        survivor = await client.get("room").create_item("survivor")
        victim = await client.get("room").create_item("victim")
        await connection.drop()
        # No await between the drop and these changes: the client cannot be back yet.
        server_item = site.server.get(survivor.id)
        assert isinstance(server_item, Item)
        server_item.update_state(count=41)
        site.server.get(victim.id).close()
        for n in range(10):
            server_room.tick(n)
        newcomer = site.server.register(await server_room.create_item("newcomer"))
        await eventually(lambda: client.snapshots == 2 and client.state is ClientState.CONNECTED)
        assert survivor.count == 41 and not survivor.closed
        assert victim.closed and victim.id not in client.objects
        assert client.get(newcomer.id).name == "newcomer"
        assert client.seq == site.server.seq


async def test_server_restart_resynchronises(site: Site) -> None:
    async with site.connection() as connection:
        client = await connection.client()
        old_item = await client.get("room").create_item("old")
        old_epoch = client.epoch
        events: list[str] = []
        client.on("disconnected", lambda: events.append("disconnected"))
        client.on("connected", lambda: events.append("connected"))

        fresh = RopeServer()
        fresh_room = fresh.register(Room())
        assert isinstance(fresh_room, Room)
        fresh.register(await fresh_room.create_item("new"))
        await site.restart(fresh)

        await eventually(lambda: events[-1:] == ["connected"] and client.epoch == fresh.epoch)
        assert client.epoch != old_epoch and client.snapshots == 2
        assert old_item.closed and old_item.id not in client.objects
        assert [item.name for item in client.find("Item")] == ["new"]
        assert events == ["disconnected", "connected"]
        assert await client.get("room").add(20, 22) == 42


async def test_authorization_refusal(site: Site) -> None:
    allowed_token = "let-me-in"
    member = site.client_identity  # the libp2p peer id the server sees

    def authorize(credentials: Credentials) -> bool:
        if credentials.peer.carrier == "libp2p":
            return credentials.peer.peer_id == member and credentials.token == allowed_token
        return credentials.token == allowed_token

    await site.restart(RopeServer(authorize=authorize))
    with pytest.raises(Unauthorized):
        await site.connection(token="wrong").open()
    async with site.connection(token=allowed_token) as connection:
        await connection.client()
    if site.carrier == "libp2p":  # a non-member identity is refused even with the token
        await site.restart(RopeServer(authorize=members_only(lambda peer_id: peer_id != member)))
        with pytest.raises(Unauthorized):
            await site.connection(token=allowed_token).open()


# -- malformed input never hurts other clients -------------------------------------------------


class RawPipe:
    """Speaks bytes straight to the server, bypassing the client library."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], recv: Callable[[], Awaitable[Any]],
                 close: Callable[[], Awaitable[None]]) -> None:
        self.send, self.recv, self.close = send, recv, close

    async def request(self, payload: bytes) -> dict[str, Any]:
        await self.send(payload)
        answer = await asyncio.wait_for(self.recv(), WAIT)
        assert answer is not None, "server closed the connection"
        result: dict[str, Any] = json.loads(answer)
        return result


async def raw_pipe(site: Site) -> RawPipe:
    if site.carrier == "websocket":
        assert site.listener is not None
        ws = await ws_connect(site.listener.url, proxy=None, compression=None)

        async def ws_send(payload: bytes) -> None:
            try:
                await ws.send(payload.decode())
            except UnicodeDecodeError:
                await ws.send(payload)  # a binary frame

        async def ws_recv() -> Any:
            try:
                return await ws.recv()
            except Exception:
                return None

        return RawPipe(ws_send, ws_recv, ws.close)

    assert site.host is not None and site.client_host is not None
    stream = await site.client_host.open_stream(site.host.peer_id, PROTOCOL_ID)
    buffer = bytearray()

    async def p2p_send(payload: bytes) -> None:
        await stream.write(struct.pack(">I", len(payload)) + payload)

    async def p2p_recv() -> Any:
        while True:
            if len(buffer) >= 4:
                (length,) = struct.unpack_from(">I", buffer)
                if len(buffer) >= 4 + length:
                    frame = bytes(buffer[4 : 4 + length])
                    del buffer[: 4 + length]
                    return frame
            data = await stream.read()
            if not data:
                return None
            buffer.extend(data)

    pipe = RawPipe(p2p_send, p2p_recv, stream.close)
    pipe.raw_write = stream.write  # type: ignore[attr-defined]
    return pipe


async def test_garbage_gets_clear_errors_and_others_keep_being_served(site: Site) -> None:
    async with site.connection() as connection:
        client = await connection.client()
        room = client.get("room")
        got: list[int] = []
        room.on("tick", got.append)

        raw = await raw_pipe(site)
        hello = await raw.request(b'{"jsonrpc":"2.0","id":1,"method":"rope.hello","params":{"version":1}}')
        assert hello["result"]["epoch"] == site.server.epoch
        codes = []
        for payload in (b"{not json", b"\xff\xfe garbage", b"[]", b"42", b'{"jsonrpc":"1.0","id":1,"method":"x"}',
                        b"{}"):
            codes.append((await raw.request(payload))["error"]["code"])
        assert codes == [ErrorCode.PARSE_ERROR] * 2 + [ErrorCode.INVALID_REQUEST] * 4
        for payload, code in (
            (b'{"jsonrpc":"2.0","id":2,"method":"rope.nope"}', ErrorCode.METHOD_NOT_FOUND),
            (b'{"jsonrpc":"2.0","id":3,"method":"rope.call","params":{"session":"s"}}', ErrorCode.UNKNOWN_SESSION),
            (b'{"jsonrpc":"2.0","id":4,"method":"rope.open","params":[1]}', ErrorCode.INVALID_PARAMS),
            (b'{"jsonrpc":"2.0","id":5,"method":"rope.open","params":{"session":7}}', ErrorCode.INVALID_PARAMS),
        ):
            answer = await raw.request(payload)
            assert answer["error"]["code"] == code, answer
        opened = await raw.request(b'{"jsonrpc":"2.0","id":6,"method":"rope.open","params":{"session":"s"}}')
        assert opened["result"]["mode"] == "snapshot"
        bad_call = await raw.request(
            b'{"jsonrpc":"2.0","id":7,"method":"rope.call","params":{"session":"s","object":"room","method":"add",'
            b'"args":"oops"}}'
        )
        assert bad_call["error"]["code"] == ErrorCode.INVALID_PARAMS

        oversize = b'{"jsonrpc":"2.0","id":8,"method":"rope.ping","params":{"pad":"' + b"x" * (1 << 20) + b'"}}'
        answer = await raw.request(oversize)
        assert answer["error"]["code"] == ErrorCode.FRAME_TOO_LARGE
        if site.carrier == "libp2p":  # a stream that lost its framing is closed
            assert await asyncio.wait_for(raw.recv(), WAIT) is None
        else:  # a WebSocket keeps its framing: the connection lives on
            assert "result" in await raw.request(b'{"jsonrpc":"2.0","id":9,"method":"rope.ping"}')
        await raw.close()

        await room.ticks(0, 5)
        await eventually(lambda: got == [0, 1, 2, 3, 4])
        assert await room.add(1, 2) == 3


async def test_connection_that_never_greets_is_dropped(site: Site) -> None:
    server = RopeServer(handshake_timeout=0.1)
    await site.restart(server)
    raw = await raw_pipe(site)
    assert await asyncio.wait_for(raw.recv(), WAIT) is None  # closed without a word
    answer = await raw_pipe(site)
    reply = await answer.request(b'{"jsonrpc":"2.0","id":1,"method":"rope.ping"}')
    assert reply["error"]["code"] == ErrorCode.HANDSHAKE_REQUIRED
    await raw.close()
    await answer.close()
