"""Plain RTP over UDP for tests and benchmarks: a paced source and counting sinks.

A PlainTransport producer fed by `RtpSource` and PlainTransport consumers
sending to `RtpSink`s exercise the worker's forwarding path without any codec
or ICE/DTLS cost on the Python side, so what is measured is the SFU.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

OPUS_PAYLOAD_TYPE = 100
OPUS_SSRC = 0x1234_5678

OPUS_RTP_PARAMETERS: dict[str, Any] = {
    "codecs": [
        {"mimeType": "audio/opus", "payloadType": OPUS_PAYLOAD_TYPE, "clockRate": 48000, "channels": 2,
         "parameters": {}, "rtcpFeedback": []}
    ],
    "encodings": [{"ssrc": OPUS_SSRC}],
}
"""What an RtpSource sends, as a PlainTransport producer's rtp_parameters."""


def rtp_packet(sequence: int, timestamp: int, ssrc: int = OPUS_SSRC, payload_type: int = OPUS_PAYLOAD_TYPE,
               payload: bytes = b"\xf8\xff\xfe" + bytes(57)) -> bytes:
    """One RTP packet (RFC 3550 fixed header, no extensions); default payload ~ a 20 ms opus frame."""
    header = struct.pack("!BBHII", 0x80, payload_type & 0x7F, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    return header + payload


def rtp_payload(data: bytes) -> bytes:
    """The payload of an RTP packet, past its CSRCs and header extension (an SFU may add one)."""
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    return data[offset:]


STAMP = struct.Struct("!d")
"""A stamped packet carries its send time (`time.monotonic()`) right after the opus TOC bytes."""
_TOC = b"\xf8\xff\xfe"


class RtpSource:
    """Sends RTP to one address at `packets_per_second`, from a task it owns.

    One socket for its whole life: a comedia PlainTransport latches onto the
    first source address it sees, so restarting must not change the port.
    With ``stamp``, each payload carries its send time, so an `RtpSink` with
    ``stamped=True`` measures one-way latency (same machine, same clock).
    """

    def __init__(self, ip: str, port: int, packets_per_second: float = 50.0, *, stamp: bool = False) -> None:
        self._address = (ip, port)
        self._stamp = stamp
        self._interval = 1.0 / packets_per_second
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rtp-source")

    async def _run(self) -> None:
        start, first = time.monotonic(), self.sent
        while True:
            if self._stamp:
                payload = _TOC + STAMP.pack(time.monotonic()) + bytes(49)
                self._socket.sendto(rtp_packet(self.sent, self.sent * 960, payload=payload), self._address)
            else:
                self._socket.sendto(rtp_packet(self.sent, self.sent * 960), self._address)
            self.sent += 1
            delay = start + (self.sent - first) * self._interval - time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    async def stop(self) -> None:
        """Stop sending; start() resumes from the same socket and sequence number."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def close(self) -> None:
        await self.stop()
        self._socket.close()


class RtpSink(asyncio.DatagramProtocol):
    """A UDP port that counts the RTP packets (and bytes) it receives.

    With ``stamped``, it also keeps each packet's latency (seconds) from the
    send time a stamping `RtpSource` put in the payload.
    """

    def __init__(self, stamped: bool = False) -> None:
        self.stamped = stamped
        self.latencies: list[float] = []
        self.packets = 0
        self.bytes = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._arrived = asyncio.Event()

    @classmethod
    async def open(cls, ip: str = "127.0.0.1", *, stamped: bool = False) -> RtpSink:
        loop = asyncio.get_running_loop()
        _, sink = await loop.create_datagram_endpoint(lambda: cls(stamped), local_addr=(ip, 0))
        return sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:  # RTP, not RTCP
            self.packets += 1
            self.bytes += len(data)
            if self.stamped:
                payload = rtp_payload(data)
                if len(payload) >= len(_TOC) + STAMP.size and payload.startswith(_TOC):
                    self.latencies.append(time.monotonic() - STAMP.unpack_from(payload, len(_TOC))[0])
            self._arrived.set()

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def wait_for_packets(self, count: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while self.packets < count:
                self._arrived.clear()
                await self._arrived.wait()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


LOOPBACK_LISTEN = {"protocol": "udp", "ip": "127.0.0.1"}


@contextlib.asynccontextmanager
async def opus_producer(router: Any) -> AsyncIterator[Any]:
    """A PlainTransport opus producer in ``router`` (any back-end), fed 50 packets/s while inside."""
    ingress = await router.create_plain_transport(listen_info=LOOPBACK_LISTEN, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    source = RtpSource("127.0.0.1", ingress.tuple["localPort"])
    source.start()
    try:
        yield producer
    finally:
        await source.close()


async def receive_everywhere(port: int, sinks: Iterable[RtpSink], packets: int) -> None:
    """Send opus RTP to the comedia PlainTransport listening on ``port`` until every one of ``sinks``
    received ``packets``; the source and the sinks are closed afterwards, whether they did or not."""
    sinks = list(sinks)
    source = RtpSource("127.0.0.1", port)
    source.start()
    try:
        for sink in sinks:
            await sink.wait_for_packets(packets)
    finally:
        await source.close()
        for sink in sinks:
            sink.close()


async def sink_consumer(router: Any, producer_id: str) -> tuple[RtpSink, Any]:
    """A PlainTransport consumer of ``producer_id`` sending to a new `RtpSink` (close the sink when done)."""
    sink = await RtpSink.open()
    transport = await router.create_plain_transport(listen_info=LOOPBACK_LISTEN, rtcp_mux=True)
    await transport.connect(ip="127.0.0.1", port=sink.port)
    consumer = await transport.consume(producer_id=producer_id, rtp_capabilities=router.rtp_capabilities)
    return sink, consumer
