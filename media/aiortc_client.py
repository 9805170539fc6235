"""A real WebRTC client (pymediasoup + aiortc) for tests, demos and simulations.

It signals straight to a Router of any back-end (local media, remote, vertical:
they share one API), so the same client checks all of them. Known sharp edges
of the client stack are handled here once:
- aioice never gathers 127.0.0.1; on loopback the host candidate is forced.
- `iceServers=[]`, or aiortc would contact a public STUN server.
- pymediasoup's "connect" handler runs in the background: produce() may reach
  the server first, which mediasoup accepts.
- received tracks are always drained (undrained tracks grow without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from pymediasoup import AiortcHandler, Device
from pymediasoup.models.transport import DtlsParameters, IceCandidate, IceParameters
from pymediasoup.rtp_parameters import RtpCapabilities, RtpParameters

from media.synthetic_tracks import SyntheticAudioTrack, SyntheticVideoTrack

logger = logging.getLogger("media.aiortc_client")

LOOPBACK = "127.0.0.1"


def gather_loopback_only() -> None:
    """Make aioice offer 127.0.0.1 as its host candidate (it skips loopback by default)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [LOOPBACK]


@dataclass
class ReceivedTrack:
    """What arrived on one consumed track: frames counted by a drain task."""

    kind: str
    producer_id: str
    consumer_id: str
    frames: int = 0
    width: int | None = None
    height: int | None = None
    last_frame_at: float | None = None
    ended: bool = False
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_for_frames(self, count: int, within: float = 20.0) -> None:
        """Wait until `count` frames in total have arrived."""
        async with asyncio.timeout(within):
            while self.frames < count:
                self._arrived.clear()
                await self._arrived.wait()

    def _on_frame(self, frame: Any) -> None:
        self.frames += 1
        self.last_frame_at = asyncio.get_running_loop().time()
        if self.kind == "video":
            self.width, self.height = frame.width, frame.height
        self._arrived.set()


class AiortcClient:
    """One participant: a pymediasoup Device with a send and a receive transport on one router."""

    def __init__(self, router: Any, *, name: str = "client", listen_ip: str = LOOPBACK) -> None:
        self._router = router
        self.name = name
        self._listen_ip = listen_ip
        self._device: Device | None = None
        self._send_transport: Any = None
        self._recv_transport: Any = None
        self._recv_server: Any = None
        self._server_transports: list[Any] = []
        self.producers: dict[str, Any] = {}
        """Server-side producers of this client, by id."""
        self.consumers: dict[str, Any] = {}
        """Server-side consumers of this client, by id."""
        self.received: dict[str, ReceivedTrack] = {}
        """Tracks received, by producer id."""
        self._tracks: list[MediaStreamTrack] = []
        self._drains: set[asyncio.Task[None]] = set()
        self._receiving = asyncio.Lock()
        """One receive() at a time: the first creates the receive transport, and pymediasoup's
        transport is not safe for overlapping consume() calls."""
        if listen_ip == LOOPBACK:
            gather_loopback_only()

    @property
    def rtp_capabilities(self) -> dict[str, Any]:
        assert self._device is not None, "join() first"
        return self._device.rtpCapabilities.model_dump(exclude_none=True)

    async def join(self) -> None:
        self._device = Device(handlerFactory=AiortcHandler.createFactory(tracks=[]))
        await self._device.load(RtpCapabilities.model_validate(self._router.rtp_capabilities))

    async def _server_transport(self) -> Any:
        transport = await self._router.create_webrtc_transport(
            listen_infos=[{"protocol": "udp", "ip": self._listen_ip}], enable_tcp=False
        )
        self._server_transports.append(transport)
        return transport

    def _client_options(self, transport: Any) -> dict[str, Any]:
        return {
            "id": transport.id,
            "iceParameters": IceParameters(**transport.ice_parameters),
            "iceCandidates": [IceCandidate(**c) for c in transport.ice_candidates],
            "dtlsParameters": DtlsParameters(**transport.dtls_parameters),
            "sctpParameters": None,
            "iceServers": [],
        }

    def _wire_connect(self, client_transport: Any, server_transport: Any) -> None:
        @client_transport.on("connect")
        async def on_connect(dtls_parameters: DtlsParameters) -> None:
            await server_transport.connect(dtls_parameters=dtls_parameters.model_dump(exclude_none=True))

    async def send(self, *, video: bool = True, audio: bool = True, width: int = 320, height: int = 240,
                   fps: int = 15) -> list[Any]:
        """Produce a synthetic VP8 video and/or opus audio track; returns the server-side producers."""
        assert self._device is not None, "join() first"
        if self._send_transport is None:
            server = await self._server_transport()
            self._send_transport = self._device.createSendTransport(**self._client_options(server))
            self._wire_connect(self._send_transport, server)

            @self._send_transport.on("produce")
            async def on_produce(kind: str, rtp_parameters: RtpParameters, app_data: Any) -> str:
                producer = await server.produce(
                    kind=kind, rtp_parameters=rtp_parameters.model_dump(exclude_none=True)
                )
                self.producers[producer.id] = producer
                return str(producer.id)

        tracks: list[MediaStreamTrack] = []
        if video:
            tracks.append(SyntheticVideoTrack(width, height, fps))
        if audio:
            tracks.append(SyntheticAudioTrack())
        produced = []
        for track in tracks:
            self._tracks.append(track)
            client_producer = await self._send_transport.produce(track=track, stopTracks=True)
            produced.append(self.producers[client_producer.id])
        return produced

    async def receive(self, producer_id: str) -> ReceivedTrack:
        """Consume a producer of the router: server consumer paused, client ready, then resumed.

        Safe to call concurrently; a producer already received returns its track again."""
        assert self._device is not None, "join() first"
        async with self._receiving:
            if producer_id in self.received:
                return self.received[producer_id]
            if self._recv_transport is None:
                self._recv_server = await self._server_transport()
                self._recv_transport = self._device.createRecvTransport(**self._client_options(self._recv_server))
                self._wire_connect(self._recv_transport, self._recv_server)
            consumer = await self._recv_server.consume(
                producer_id=producer_id, rtp_capabilities=self.rtp_capabilities, paused=True
            )
            self.consumers[consumer.id] = consumer
            client_consumer = await self._recv_transport.consume(
                id=consumer.id,
                producerId=producer_id,
                kind=consumer.kind,
                rtpParameters=RtpParameters.model_validate(consumer.rtp_parameters),
            )
            received = ReceivedTrack(kind=consumer.kind, producer_id=producer_id, consumer_id=consumer.id)
            self.received[producer_id] = received
            task = asyncio.create_task(self._drain(client_consumer.track, received), name=f"{self.name}-drain")
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        await consumer.resume()
        return received

    async def _drain(self, track: MediaStreamTrack, received: ReceivedTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                received._on_frame(frame)
        except MediaStreamError:
            received.ended = True
            received._arrived.set()

    async def close(self) -> None:
        """Close both sides: client transports, drain tasks, then this client's server transports."""
        for task in list(self._drains):
            task.cancel()
        for task in list(self._drains):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in (self._send_transport, self._recv_transport):
            if transport is not None:
                with contextlib.suppress(Exception):
                    await transport.close()
        for track in self._tracks:
            track.stop()
        for server_transport in self._server_transports:
            await server_transport.close()
