"""ROPE's pure parts, fuzzed: framing, message parsing, error mapping, and the
server's dispatch fed arbitrary messages through an in-memory channel."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rope import ErrorCode, Peer, RemoteError, RopeObject, RopeServer, UnknownObject
from rope.errors import FrameError, error_from_json, remote_error_class
from rope.framing import FrameDecoder, encode_frame
from rope.messages import MessageError, Request, Response, parse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


# -- framing --------------------------------------------------------------------------------


@given(payloads=st.lists(st.binary(max_size=300), max_size=10), cuts=st.lists(st.integers(1, 64), max_size=50))
def test_frames_survive_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder()
    frames: list[bytes] = []
    offset = 0
    for cut in cuts:
        frames += decoder.feed(stream[offset : offset + cut])
        offset += cut
    frames += decoder.feed(stream[offset:])
    assert frames == payloads and decoder.buffered == 0


@given(st.binary(max_size=2000))
def test_frame_decoder_never_fails_otherwise_than_with_frame_error(data: bytes) -> None:
    decoder = FrameDecoder(max_frame=512)
    try:
        for frame in decoder.feed(data):
            assert len(frame) <= 512
    except FrameError as error:
        assert error.fatal and error.code == ErrorCode.FRAME_TOO_LARGE


def test_oversize_frame_is_refused_before_buffering_and_stays_fatal() -> None:
    decoder = FrameDecoder(max_frame=16)
    with pytest.raises(FrameError):
        decoder.feed(struct.pack(">I", 1 << 30) + b"x")
    assert decoder.buffered == 0
    with pytest.raises(FrameError):
        decoder.feed(encode_frame(b"ok"))  # the stream lost its framing for good
    with pytest.raises(FrameError):
        encode_frame(b"x" * 17, max_frame=16)


# -- messages -----------------------------------------------------------------------------


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), json_values.map(json.dumps)))
def test_parser_accepts_or_raises_message_error(text: str | bytes) -> None:
    try:
        message = parse(text)
    except MessageError as error:
        assert error.code in (ErrorCode.PARSE_ERROR, ErrorCode.INVALID_REQUEST)
    else:
        assert isinstance(message, Request | Response)


def test_parser_shapes() -> None:
    request = parse('{"jsonrpc":"2.0","id":3,"method":"rope.call","params":{"a":1}}')
    assert request == Request("rope.call", {"a": 1}, 3, False)
    assert parse('{"jsonrpc":"2.0","method":"m"}') == Request("m", {}, None, True)
    assert parse('{"jsonrpc":"2.0","id":"x","result":null}') == Response("x", None)
    cases = {
        "[1]": ErrorCode.INVALID_REQUEST,  # batches are refused
        '{"jsonrpc":"2.0","id":true,"method":"m"}': ErrorCode.INVALID_REQUEST,
        '{"jsonrpc":"2.0","id":1,"method":"m","params":3}': ErrorCode.INVALID_REQUEST,
        '{"jsonrpc":"2.0","id":1,"method":7}': ErrorCode.INVALID_REQUEST,
        '{"jsonrpc":"2.0","id":1,"error":"no"}': ErrorCode.INVALID_REQUEST,
        "[" * 100_000: ErrorCode.PARSE_ERROR,  # deep nesting must not crash the parser
    }
    for text, code in cases.items():
        with pytest.raises(MessageError) as info:
            parse(text)
        assert info.value.code == code, text


def test_remote_errors_keep_their_builtin_type() -> None:
    error = error_from_json({"code": -32000, "message": "m", "data": {"type": "ValueError", "message": "bad"}})
    assert isinstance(error, ValueError) and isinstance(error, RemoteError) and str(error) == "ValueError: bad"
    assert remote_error_class("ValueError") is remote_error_class("ValueError")
    for odd in ("UnicodeDecodeError", "SystemExit", "os.system", "not an identifier", "ExceptionGroup"):
        assert issubclass(remote_error_class(odd), RemoteError)
        remote_error_class(odd)("message")  # constructible whatever the name
    assert isinstance(error_from_json({"code": -32002, "message": "gone"}), UnknownObject)
    assert error_from_json("junk").code == ErrorCode.INTERNAL_ERROR


# -- the server's dispatch, fuzzed ------------------------------------------------------------


class MemoryChannel:
    """An in-process carrier: what the test puts in ``inbox`` the server receives."""

    def __init__(self) -> None:
        self.peer = Peer("memory")
        self.max_message = 1 << 16
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def send_many(self, messages: list[str]) -> None:
        self.sent.extend(json.loads(m) for m in messages)
        self.arrived.set()

    async def receive(self) -> str | None:
        return await self.inbox.get()

    async def close(self, reason: str | None = None) -> None:
        self.close_reason = reason
        self.inbox.put_nowait(None)

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.inbox.put_nowait(json.dumps(request))
        async with asyncio.timeout(5):
            while True:
                for message in self.sent:
                    if message.get("id") == request["id"] and "method" not in message:
                        return message
                self.arrived.clear()
                await self.arrived.wait()


def fuzz_target() -> RopeServer:
    server = RopeServer()
    counter = RopeObject("Counter", id="c", state={"n": 0})

    async def add(k: int) -> int:
        counter.update_state(n=counter.state["n"] + k)
        return int(counter.state["n"])

    counter.method(add)
    server.register(counter)
    return server


rope_fragments = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0"])},
    optional={
        "id": st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.booleans()),
        "method": st.sampled_from(["rope.call", "rope.open", "rope.close", "rope.ping", "rope.hello", "x"]),
        "params": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "session": st.sampled_from(["s", "t", 1]),
                    "object": st.sampled_from(["c", "nope", 3]),
                    "method": st.sampled_from(["add", "nope", "__init__"]),
                    "args": st.one_of(st.lists(json_values, max_size=3), json_values),
                    "kwargs": st.one_of(st.dictionaries(st.sampled_from(["k", "x"]), json_values), json_values),
                    "resume": json_values,
                },
            ),
        ),
        "result": json_values,
        "error": json_values,
    },
)


@settings(max_examples=50)
@given(st.lists(st.one_of(rope_fragments.map(json.dumps), st.text(max_size=30)), max_size=12))
def test_server_survives_arbitrary_messages(messages: list[str]) -> None:
    async def scenario() -> None:
        server = fuzz_target()
        channel = MemoryChannel()
        serving = asyncio.ensure_future(server.serve(channel))
        hello = await channel.ask({"jsonrpc": "2.0", "id": "hello", "method": "rope.hello", "params": {"version": 1}})
        assert "result" in hello
        for message in messages:
            channel.inbox.put_nowait(message)
        # Whatever came before, a well-formed session still works and sees consistent state.
        opened = await channel.ask({"jsonrpc": "2.0", "id": "open", "method": "rope.open", "params": {"session": "z"}})
        n = opened["result"]["objects"][0]["state"]["n"]
        added = await channel.ask({"jsonrpc": "2.0", "id": "add", "method": "rope.call",
                                   "params": {"session": "z", "object": "c", "method": "add", "args": [1]}})
        assert added["result"]["value"] == n + 1
        for message in channel.sent:
            assert message.get("jsonrpc") == "2.0"
            if "error" in message:
                assert isinstance(message["error"]["code"], int) and message["error"]["message"]
        await channel.close()
        await asyncio.wait_for(serving, 5)
        assert server.connection_count == 0

    asyncio.run(scenario())


async def test_slow_reader_is_dropped_not_buffered_forever() -> None:
    server = RopeServer(max_outbox_bytes=4096)
    obj = server.register(RopeObject("Thing", id="t"))
    channel = MemoryChannel()
    blocked = asyncio.Event()

    async def stuck_send(messages: list[str]) -> None:
        await blocked.wait()  # the peer never reads

    serving = asyncio.ensure_future(server.serve(channel))
    await channel.ask({"jsonrpc": "2.0", "id": 1, "method": "rope.hello", "params": {"version": 1}})
    await channel.ask({"jsonrpc": "2.0", "id": 2, "method": "rope.open", "params": {"session": "s"}})
    channel.send_many = stuck_send  # type: ignore[method-assign]
    for n in range(200):
        obj.emit("spam", n)
    await asyncio.wait_for(serving, 5)  # the connection was dropped
    assert server.connection_count == 0
    assert channel.close_reason == "client too slow: over 4096 bytes unsent"


# -- server-side object model -------------------------------------------------------------------


def test_object_tree_cascade_and_change_log() -> None:
    server = RopeServer(replay_size=100)
    worker = server.register(RopeObject("Worker", id="w", state={"pid": 1}))
    router = RopeObject("Router", id="r", parent=worker)
    transport = RopeObject("Transport", id="t", parent=router, state={"router": router})
    server.register(transport)  # registers its unregistered parent first
    assert [o.id for o in server.objects] == ["w", "r", "t"]
    assert [r["state"] for r in server.snapshot()][2] == {"router": {"$ref": "r"}}
    start = server.seq
    transport.update_state(score=3)
    transport.update_state(score=3)  # no change, no entry
    router.emit("workerclose", {"why": "test"}, 2)
    worker.close()
    kinds = [json.loads(c) for c in server.changes_since(start) or []]
    assert [(c["kind"], c.get("id")) for c in kinds] == [
        ("state", "t"), ("event", "r"), ("close", "t"), ("close", "r"), ("close", "w"),
    ]
    assert kinds[1]["args"] == [{"why": "test"}, 2]
    assert server.objects == [] and transport.closed
    assert server.changes_since(server.seq) == [] and server.changes_since(server.seq + 1) is None
    server.register(RopeObject("X", id="x"))
    with pytest.raises(ValueError, match="already registered"):
        server.register(RopeObject("X", id="x"))
    closed = RopeObject("X")
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        server.register(closed)


def test_exposed_methods_are_collected_per_subclass() -> None:
    from rope import exposed

    class Producer(RopeObject):
        def __init__(self) -> None:
            super().__init__("Producer", state={"paused": False})

        @exposed
        async def pause(self) -> None:
            self.update_state(paused=True)

        @exposed(name="getStats")
        async def get_stats(self) -> list[dict[str, Any]]:
            return []

    assert Producer().method_names == ["getStats", "pause"]
