"""ROPE against careless and hostile input, on a real Remote Mediasoup server over the real worker.

Values that cannot travel as JSON, arguments nested too deep, a server with thousands of objects,
a client that never reads. Every wait is bounded and waits for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import psutil
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote import MediasoupServer, RemoteMediasoup
from rope import ErrorCode, ReconnectPolicy, RopeConnection, RopeObject, RopeServer
from rope.channel import DEFAULT_MAX_OUTBOX_BYTES
from rope.libp2p import PROTOCOL_ID, libp2p_connector, serve_libp2p
from rope.server import MAX_DEPTH, UnencodableChange
from rope.websocket import WebSocketListener, websocket_connector
from swarm.bridge import P2PHost, open_host

WAIT = 10.0
FAST_RECONNECT = ReconnectPolicy(initial_delay=0.01, max_delay=0.2)


async def eventually(condition: Callable[[], bool], limit: float = WAIT) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - state crosses a connection: no local event to wait on
            await asyncio.sleep(0.005)


def worker_processes() -> set[int]:
    return {child.pid for child in psutil.Process().children() if "mediasoup-worker" in " ".join(child.cmdline())}


class Site:
    """A Remote Mediasoup server over the real `media` module, reachable over one carrier."""

    def __init__(self, carrier: str, rope: RopeServer | None = None, server: MediasoupServer | None = None) -> None:
        self.carrier = carrier
        self.server = server if server is not None else MediasoupServer(media, rope)
        self.listener: WebSocketListener | None = None
        self.hosts: list[P2PHost] = []
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> Site:
        if self.carrier == "websocket":
            self.listener = await WebSocketListener(self.server.rope).start()
            self._stack.push_async_callback(self.listener.close)
        else:
            self.hosts = [await self._stack.enter_async_context(open_host()) for _ in range(2)]
            serve_libp2p(self.server.rope, self.hosts[0])
            await self.hosts[1].connect(self.hosts[0].listen_addrs[0])
        return self

    def connection(self, gate: asyncio.Event | None = None, **options: Any) -> RopeConnection:
        """A client connection; with ``gate``, each (re)connection waits until the gate is set."""
        if self.listener is not None:
            connector = websocket_connector(self.listener.url)
        else:
            connector = libp2p_connector(self.hosts[1], self.hosts[0].peer_id)

        async def connect() -> Any:
            if gate is not None:
                await gate.wait()
            return await connector()

        options = {"reconnect": FAST_RECONNECT, "call_timeout": WAIT, **options}
        return RopeConnection(options.pop("connector", connect), **options)

    async def raw(self) -> Raw:
        if self.listener is not None:
            return Raw(ws=await ws_connect(self.listener.url, proxy=None, compression=None, max_size=None))
        return Raw(stream=await self.hosts[1].open_stream(self.hosts[0].peer_id, PROTOCOL_ID))

    async def close(self) -> None:
        await self.server.close()
        await self._stack.aclose()


class Raw:
    """Bytes straight to the server over either carrier, bypassing the client library."""

    def __init__(self, ws: ClientConnection | None = None, stream: Any = None) -> None:
        self.ws, self.stream = ws, stream
        self.buffer = bytearray()

    async def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        if self.ws is not None:
            await self.ws.send(text)
        else:
            await self.stream.write(struct.pack(">I", len(text.encode())) + text.encode())

    async def recv(self) -> dict[str, Any] | None:
        """The next message, None once the server has hung up."""
        async with asyncio.timeout(WAIT):
            if self.ws is not None:
                try:
                    return json.loads(await self.ws.recv())  # type: ignore[no-any-return]
                except ConnectionClosed:
                    return None
            while True:
                if len(self.buffer) >= 4:
                    (length,) = struct.unpack_from(">I", self.buffer)
                    if len(self.buffer) >= 4 + length:
                        frame = bytes(self.buffer[4 : 4 + length])
                        del self.buffer[: 4 + length]
                        return json.loads(frame)  # type: ignore[no-any-return]
                data = await self.stream.read()
                if not data:
                    return None
                self.buffer.extend(data)

    async def answer(self, request_id: Any) -> dict[str, Any]:
        while True:
            message = await self.recv()
            assert message is not None, "the server hung up"
            if message.get("id") == request_id and "method" not in message:
                return message

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.ws is not None:
                await self.ws.close()
            else:
                await self.stream.close()


def request(request_id: int, rope_method: str, /, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": rope_method, "params": params}


HELLO = request(0, "rope.hello", version=1)


@pytest.fixture(params=["websocket", "libp2p"])
async def site(request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    site = await Site(request.param, RopeServer(replay_size=64)).start()
    try:
        yield site
    finally:
        await site.close()


# -- values that cannot travel -------------------------------------------------------------------


async def test_unencodable_numbers_are_refused_before_anything_changes(site: Site) -> None:
    raw = await site.raw()
    await raw.send(HELLO)
    assert "result" in await raw.answer(0)
    await raw.send(request(1, "rope.open", session="s"))
    assert (await raw.answer(1))["result"]["mode"] == "snapshot"
    seq, objects, workers = site.server.rope.seq, len(site.server.rope.objects), worker_processes()
    for n, literal in enumerate(("NaN", "Infinity", "-Infinity", "1e400", "-1e400"), start=2):
        await raw.send(f'{{"jsonrpc":"2.0","id":{n},"method":"rope.call","params":{{"session":"s",'
                       f'"object":"mediasoup","method":"create_worker","kwargs":{{"app_data":{{"x":[{literal}]}}}}}}}}')
        error = (await raw.answer(n))["error"]
        assert error["code"] == ErrorCode.INVALID_PARAMS and literal in error["message"], error
    assert worker_processes() == workers  # no worker was started for a call that could not be answered
    assert (site.server.rope.seq, len(site.server.rope.objects)) == (seq, objects)
    create_worker, _ = site.server.root.lookup("create_worker") or (None, None)
    assert create_worker is not None
    with pytest.raises(UnencodableChange):  # an in-process caller skips the parser: the worker is closed again
        await create_worker(app_data={"x": math.nan})
    assert worker_processes() == workers and site.server.mirror_count == 0
    assert (site.server.rope.seq, len(site.server.rope.objects)) == (seq, objects)
    await raw.send(request(9, "rope.ping"))
    assert "result" in await raw.answer(9)  # the connection lives on
    await raw.close()

    async with site.connection() as connection:  # newcomers still get the state...
        remote = RemoteMediasoup(await connection.client())
        with pytest.raises(ValueError, match="JSON"):  # ...and the Python client refuses to send such a value
            await remote.create_worker(app_data={"x": math.nan})
        assert not connection._pending  # nothing was kept waiting for an answer that cannot come
        worker = await remote.create_worker(app_data={"x": 1.5})
        assert worker.app_data == {"x": 1.5}
        await worker.close()


async def test_server_side_values_that_cannot_be_sent_are_refused_to_the_application(site: Site) -> None:
    rope = site.server.rope
    thing = rope.register(RopeObject("Thing", id="thing", state={"n": 1}))
    seq = rope.seq
    with pytest.raises(UnencodableChange, match="Out of range float"):
        thing.update_state(n=math.nan, other=2)
    with pytest.raises(UnencodableChange):
        thing.emit("event", {1, 2})  # a set
    with pytest.raises(UnencodableChange, match="bytes of JSON"):
        thing.update_state(blob="x" * (1 << 20))  # larger than any client would take
    with pytest.raises(UnencodableChange):
        rope.register(RopeObject("Thing", id="bad", state={"x": math.inf}))
    assert rope.seq == seq and dict(thing.state) == {"n": 1} and "bad" not in {o.id for o in rope.objects}
    thing.update_state(n=2)
    async with site.connection() as connection:
        client = await connection.client()
        assert client.get("thing").state == {"n": 2} and client.seq == rope.seq


async def test_deep_arguments_get_an_error_and_the_connection_stays_up(site: Site) -> None:
    raw = await site.raw()
    await raw.send(HELLO)
    await raw.answer(0)
    await raw.send(request(1, "rope.open", session="s"))
    await raw.answer(1)
    workers = worker_processes()
    for n, depth in enumerate((MAX_DEPTH, MAX_DEPTH * 2, 900), start=2):
        app_data: Any = 1
        for _ in range(depth - 2):  # args (an array) and app_data's own dict count too
            app_data = [app_data]
        await raw.send(request(n, "rope.call", session="s", object="mediasoup", method="create_worker",
                               args=[], kwargs={"app_data": {"x": app_data}}))
        answer = await raw.answer(n)
        if depth <= MAX_DEPTH:
            assert "result" in answer, answer  # at the limit: served
        else:
            assert answer["error"]["code"] == ErrorCode.INVALID_PARAMS, answer
            assert f"deeper than {MAX_DEPTH}" in answer["error"]["message"]
    assert len(worker_processes() - workers) == 1  # only the call within the limit started a worker
    await raw.send(request(9, "rope.ping"))
    assert "result" in await raw.answer(9)
    await raw.close()


async def test_a_reference_written_with_an_escaped_dollar_is_still_a_reference(site: Site) -> None:
    """The server reads off a call's text that no tag is in it (`rope.values.untagged_text`), to skip the
    walk of its arguments: a tag's ``$`` written as the JSON escape ``\\u0024`` is a tag all the same."""

    class Probe(RopeObject):
        def __init__(self) -> None:
            super().__init__("Probe", id="probe")
            self.method(self.kind)

        async def kind(self, value: Any) -> str:
            return type(value).__name__

    site.server.rope.register(Probe())
    raw = await site.raw()
    await raw.send(HELLO)
    await raw.answer(0)
    await raw.send(request(1, "rope.open", session="s"))
    await raw.answer(1)
    call = json.dumps(request(2, "rope.call", session="s", object="probe", method="kind", args=[{"$ref": "probe"}]))
    await raw.send(call.replace('"$ref"', '"\\u0024ref"'))
    assert (await raw.answer(2))["result"]["value"] == "Probe"
    await raw.send(request(3, "rope.call", session="s", object="probe", method="kind", args=[{"ref": "probe"}]))
    assert (await raw.answer(3))["result"]["value"] == "dict"
    await raw.close()


# -- large state -------------------------------------------------------------------------------------


TRANSPORTS = 5_000
SLOW = 120.0
"""Bound for what 5,000 real transports make slow on a loaded 2-core machine (~8x a quiet one)."""


@pytest.mark.timeout(600)  # 5,000 real transports: ~15 s on a quiet machine, minutes under heavy load
async def test_a_client_opens_a_server_holding_5000_transports_and_resumes_after_a_drop() -> None:
    websocket = await Site("websocket", RopeServer(replay_size=64)).start()
    libp2p = await Site("libp2p", server=websocket.server).start()  # one server, both carriers
    rope = websocket.server.rope
    try:
        async with websocket.connection() as first:
            remote = RemoteMediasoup(await first.client())
            remote_router = await (await remote.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            router = websocket.server.find_target(remote_router._proxy.id)
            webrtc_server = await router._worker.create_webrtc_server(
                listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}]
            )
            for _ in range(0, TRANSPORTS, 500):  # server-side, as a node's own clients would have made them
                await asyncio.gather(*(router.create_webrtc_transport(webrtc_server=webrtc_server)
                                       for _ in range(500)))
        size = sum(len(json.dumps(record)) for record in rope.snapshot())
        assert len(rope.objects) > TRANSPORTS and size > 8 << 20  # far over the 1 MiB frame limit
        for site in (websocket, libp2p):
            await _open_and_resume(site, router)
    finally:
        await libp2p.close()
        await websocket.close()


async def _open_and_resume(site: Site, router: Any) -> None:
    rope = site.server.rope
    gate = asyncio.Event()
    gate.set()
    async with site.connection(gate) as connection:
        client = await connection.client()
        assert len(client.objects) == len(rope.objects) and client.seq == rope.seq
        transports = client.find("WebRtcTransport")
        assert len(transports) == len(router.transports) >= TRANSPORTS - 20
        assert all(t.state["ice_parameters"]["usernameFragment"] for t in transports[-10:])

        gate.clear()
        await connection.drop()  # changes while away are replayed, not re-sent as a snapshot
        for transport in list(router.transports.values())[:5]:
            await transport.close()
        gate.set()
        await eventually(lambda: connection.reconnections == 1 and client.seq == rope.seq, SLOW)
        assert client.snapshots == 1 and len(client.find("WebRtcTransport")) == len(router.transports)

        gate.clear()
        await connection.drop()
        await next(iter(router.transports.values())).close()
        rope._log.clear()  # too long a gap: the reconnection takes a fresh (paged) snapshot
        gate.set()
        await eventually(lambda: connection.reconnections == 2 and client.snapshots == 2 and client.seq == rope.seq,
                         SLOW)
        assert len(client.find("WebRtcTransport")) == len(router.transports)
        assert len(client.objects) == len(rope.objects)


class SlowPages:
    """A client channel that takes ``delay`` to hand over each snapshot page (a slow link)."""

    def __init__(self, channel: Any, delay: float) -> None:
        self.channel, self.delay = channel, delay
        self.peer, self.max_message = channel.peer, channel.max_message
        self.pages = 0

    async def send_many(self, messages: list[str]) -> None:
        await self.channel.send_many(messages)

    async def receive(self) -> str | None:
        text = await self.channel.receive()
        if text is not None and '"rope.snapshot"' in text[:60]:
            self.pages += 1
            await asyncio.sleep(self.delay)
        return text

    async def close(self, reason: str | None = None) -> None:
        await self.channel.close(reason)


async def test_a_snapshot_slower_than_every_timeout_still_arrives(site: Site) -> None:
    rope = site.server.rope
    for n in range(100):  # ~400 kB of state: two pages
        rope.register(RopeObject("Blob", id=f"blob-{n}", state={"data": "x" * 4000}))
    for n in range(10):  # 2.4 MB in all: pages at 0.3 s each take far longer than the 1 s timeouts
        rope.register(RopeObject("Blob", id=f"big-{n}", state={"data": "y" * 200_000}))
    plain = site.connection().__dict__["_connector"]
    channels: list[SlowPages] = []

    async def slow() -> SlowPages:
        channels.append(SlowPages(await plain(), delay=0.3))
        return channels[-1]

    async with site.connection(connector=slow, call_timeout=1.0, ping_interval=0.1, ping_timeout=1.0) as connection:
        client = await connection.client()  # silence bounds the wait, not the whole transfer
        assert len(client.find("Blob")) == 110 and channels[0].pages * channels[0].delay > connection.call_timeout
        assert connection.reconnections == 0  # the pinger heard the pages: no reconnection


# -- a client that never reads --------------------------------------------------------------------------


async def test_a_client_that_never_reads_is_dropped_at_the_byte_bound(site: Site) -> None:
    rope = site.server.rope
    for n in range(100):  # ~400 kB of state: each snapshot answer is one 256 KiB page
        rope.register(RopeObject("Blob", id=f"blob-{n}", state={"data": "x" * 4000}))
    raw = await site.raw()
    await raw.send(HELLO)
    await raw.answer(0)
    assert rope.connection_count == 1
    # 400 opens would queue ~100 MB; the server stops at its bound and hangs up.
    for n in range(1, 401):
        try:
            await asyncio.wait_for(raw.send(request(n, "rope.open", session=f"s{n % 50}")), WAIT)
        except Exception:  # the server hung up
            break
    await eventually(lambda: rope.connection_count == 0)
    if raw.ws is not None:  # a WebSocket says why, once the client reads what came before
        while await raw.recv() is not None:
            pass
        assert raw.ws.close_code == 1008 and "too slow" in (raw.ws.close_reason or "")
        assert str(DEFAULT_MAX_OUTBOX_BYTES) in (raw.ws.close_reason or "")
    await raw.close()
    async with site.connection() as connection:  # everyone else is still served
        assert len((await connection.client()).find("Blob")) == 100


# -- strangers' junk ------------------------------------------------------------------------------------


async def test_junk_before_the_handshake_gets_one_error_then_the_server_hangs_up(site: Site) -> None:
    cases: list[tuple[str | bytes, int]] = [
        ("{not json", ErrorCode.PARSE_ERROR),
        ("{}", ErrorCode.INVALID_REQUEST),
        ("[1, 2]", ErrorCode.INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1,"result":true}', ErrorCode.HANDSHAKE_REQUIRED),
        ('{"jsonrpc":"2.0","id":1,"method":"rope.ping"}', ErrorCode.HANDSHAKE_REQUIRED),
    ]
    if site.carrier == "libp2p":
        cases.append((b"\x00" * 1800, ErrorCode.PARSE_ERROR))  # 450 empty frames in one write
    for junk, code in cases:
        raw = await site.raw()
        with contextlib.suppress(Exception):  # the server may hang up while we are still sending
            for _ in range(1 if isinstance(junk, bytes) else 50):
                if isinstance(junk, bytes):
                    await raw.stream.write(junk)
                else:
                    await raw.send(junk)
        answers = []
        while (message := await raw.recv()) is not None:
            answers.append(message)
        assert [answer["error"]["code"] for answer in answers] == [code], (junk, answers)
        await raw.close()
    async with site.connection() as connection:
        await connection.client()
