"""Port of mediasoup's SCTP-over-UDP cases: 3.14.16's test-node-sctp.js and 3.27.1's test-werift-sctp.js.

Upstream runs a raw SCTP client over a UDP socket against a PlainTransport with enableSctp
(Node's `sctp` package in 3.14, `werift-sctp` in 3.27). Here the client is aiortc's own SCTP
stack (`RTCSctpTransport`), which normally sits on a DTLS transport: `UdpUnderSctp` stands in
for that DTLS transport and carries its SCTP packets as plain UDP datagrams, which is what a
PlainTransport speaks. The worker's SCTP (usrsctp in 3.14, its own stack in 3.27) is what is
under test; the client is a real, independent SCTP implementation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc.rtcsctptransport import RTCSctpTransport

from tests.mediasoup.conftest import AT_LEAST_3_27, TIMEOUT_S, wait_for

WEBRTC_STRING, WEBRTC_BINARY = 51, 53
SEND_STREAM_ID = 123


class UdpUnderSctp(asyncio.DatagramProtocol):
    """The part of aiortc's RTCDtlsTransport that RTCSctpTransport uses, over a plain UDP socket."""

    state = "connected"
    _role = "client"

    def __init__(self) -> None:
        self._udp: asyncio.DatagramTransport | None = None
        self._receiver: Any = None
        self._inbound: asyncio.Queue[bytes] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._udp = transport  # type: ignore[assignment]
        self._pump = asyncio.get_running_loop().create_task(self._deliver())

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._inbound.put_nowait(data)

    async def _deliver(self) -> None:
        """One packet at a time, in arrival order, as aiortc's DTLS transport hands them up."""
        while True:
            data = await self._inbound.get()
            if self._receiver is not None:
                await self._receiver._handle_data(data)

    def _register_data_receiver(self, receiver: Any) -> None:
        self._receiver = receiver

    def _unregister_data_receiver(self, receiver: Any) -> None:
        self._receiver = None

    async def _send_data(self, data: bytes) -> None:
        assert self._udp is not None
        self._udp.sendto(data)

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._udp is not None:
            self._udp.close()


class SctpClient(RTCSctpTransport):
    """aiortc's SCTP association, raw: messages by stream id and PPID, no DataChannel layer."""

    def __init__(self, transport: Any) -> None:
        super().__init__(transport)
        self.received: asyncio.Queue[tuple[int, int, bytes]] = asyncio.Queue()

    async def _receive(self, stream_id: int, pp_id: int, data: bytes) -> None:
        self.received.put_nowait((stream_id, pp_id, data))


class Ctx:
    transport: Any
    data_producer: Any
    data_consumer: Any
    client: SctpClient


@pytest.fixture
async def ctx(worker: Any) -> AsyncIterator[Ctx]:
    c = Ctx()
    router = await worker.create_router()
    # comedia: the transport learns the client's address from its first packet (no connect()).
    c.transport = await router.create_plain_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1"}, comedia=True, enable_sctp=True
    )
    c.data_producer = await c.transport.produce_data(
        sctp_stream_parameters={"streamId": SEND_STREAM_ID, "ordered": True},
        label="node-sctp",
        protocol="foo & bar 😀😀😀",
    )
    c.data_consumer = await c.transport.consume_data(data_producer_id=c.data_producer.id)
    _, udp = await asyncio.get_running_loop().create_datagram_endpoint(
        UdpUnderSctp, remote_addr=("127.0.0.1", c.transport.tuple["localPort"])
    )
    c.client = SctpClient(udp)
    await c.client.start(None, 5000)
    await wait_for(lambda: c.transport.sctp_state == "connected" and c.client.state == "connected")
    yield c
    await c.client.stop()
    udp.close()
    await router.close()


async def test_sctp_state_is_connected(ctx: Ctx) -> None:
    assert ctx.transport.sctp_state == "connected"
    dump = await ctx.transport.dump()
    assert dump["sctpState"] == "connected"
    if AT_LEAST_3_27:
        negotiated = {"negotiatedMaxOutboundStreams": 65535, "negotiatedMaxInboundStreams": 65535}
        await wait_for(lambda: ctx.transport.sctp_negotiated_capabilities is not None)
        assert ctx.transport.sctp_negotiated_capabilities == negotiated
        assert dump["sctpNegotiatedCapabilities"] == negotiated


async def test_ordered_data_producer_delivers_all_sctp_messages_to_the_data_consumer(ctx: Ctx) -> None:
    count = 200
    # The first DataConsumer on the transport gets the first outgoing stream.
    assert ctx.data_consumer.sctp_stream_parameters["streamId"] == 0
    sent_bytes = 0
    for number in range(1, count + 1):
        data = str(number).encode()
        await ctx.client._send(SEND_STREAM_ID, WEBRTC_STRING if number < count / 2 else WEBRTC_BINARY, data)
        sent_bytes += len(data)
    received_bytes = 0
    async with asyncio.timeout(TIMEOUT_S * 2):
        for number in range(1, count + 1):
            stream_id, ppid, data = await ctx.client.received.get()
            assert stream_id == 0
            assert int(data.decode()) == number  # in order
            assert ppid == (WEBRTC_STRING if number < count / 2 else WEBRTC_BINARY)
            received_bytes += len(data)
    assert received_bytes == sent_bytes
    [producer_stats] = await ctx.data_producer.get_stats()
    assert producer_stats["type"] == "data-producer"
    assert producer_stats["label"] == ctx.data_producer.label
    assert producer_stats["protocol"] == ctx.data_producer.protocol
    assert (producer_stats["messagesReceived"], producer_stats["bytesReceived"]) == (count, sent_bytes)
    [consumer_stats] = await ctx.data_consumer.get_stats()
    assert consumer_stats["type"] == "data-consumer"
    assert (consumer_stats["messagesSent"], consumer_stats["bytesSent"]) == (count, received_bytes)
    assert await ctx.data_consumer.get_buffered_amount() == 0


async def test_data_consumer_sends_messages_to_the_sctp_endpoint(ctx: Ctx) -> None:
    """From 3.27.1's test-werift-sctp.js (3.27's send() answers the buffered amount, 3.14's nothing)."""
    assert await ctx.data_consumer.get_buffered_amount() == 0
    assert await ctx.data_consumer.send("foo") == (0 if AT_LEAST_3_27 else None)
    async with asyncio.timeout(TIMEOUT_S):
        stream_id, ppid, data = await ctx.client.received.get()
    assert (stream_id, ppid, data) == (0, WEBRTC_STRING, b"foo")
