"""A Router: a mediasoup router on one worker, holding transports and their producers.

Events: "workerclose". Observer: "close", "newtransport".
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from media import fbs, ortc, wire
from media.channel import Channel
from media.errors import InvalidStateError
from media.events import EventEmitter
from media.webrtc_transport import WebRtcTransport

if TYPE_CHECKING:
    from media.producer import Producer
    from media.transport import Transport
    from media.worker import Worker

DEFAULT_SCTP_STREAMS = {"OS": 1024, "MIS": 1024}


class Router(EventEmitter):
    def __init__(
        self,
        *,
        router_id: str,
        rtp_capabilities: dict[str, Any],
        channel: Channel,
        app_data: dict[str, Any] | None,
        worker: Worker,
    ) -> None:
        super().__init__()
        self._id = router_id
        self._rtp_capabilities = rtp_capabilities
        self._channel = channel
        self._worker = worker
        self._closed = False
        self._transports: dict[str, Transport] = {}
        self._producers: dict[str, Producer] = {}
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        self._pending_close: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def worker(self) -> Worker:
        return self._worker

    @property
    def rtp_capabilities(self) -> dict[str, Any]:
        return self._rtp_capabilities

    @property
    def transports(self) -> dict[str, Transport]:
        return dict(self._transports)

    @property
    def producers(self) -> dict[str, Producer]:
        return dict(self._producers)

    def get_producer(self, producer_id: str) -> Producer | None:
        return self._producers.get(producer_id)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidStateError("Router closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        body = fbs.new("Worker.CloseRouterRequest", routerId=self._id)
        try:
            await self._channel.request("WORKER_CLOSE_ROUTER", "Worker_CloseRouterRequest", body)
        except Exception:  # the worker may be gone already; the router is closed either way
            pass
        self._close_children()
        self.emit("@close")
        self.observer.emit("close")

    def worker_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_children()
        self.emit("workerclose")
        self.observer.emit("close")

    def _close_children(self) -> None:
        for transport in list(self._transports.values()):
            transport.router_closed()
        self._transports.clear()
        self._producers.clear()

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return fbs.to_plain(await self._channel.request("ROUTER_DUMP", handler_id=self._id))  # type: ignore[no-any-return]

    def can_consume(self, *, producer_id: str, rtp_capabilities: dict[str, Any]) -> bool:
        producer = self._producers.get(producer_id)
        if producer is None:
            return False
        try:
            caps = ortc.clone(rtp_capabilities)
            ortc.validate_rtp_capabilities(caps)
            return ortc.can_consume(producer.consumable_rtp_parameters, caps)
        except (TypeError, ValueError):
            return False

    async def create_webrtc_transport(
        self,
        *,
        listen_infos: list[dict[str, Any]],
        enable_udp: bool = True,
        enable_tcp: bool = True,
        prefer_udp: bool = False,
        prefer_tcp: bool = False,
        initial_available_outgoing_bitrate: int = 600_000,
        enable_sctp: bool = False,
        num_sctp_streams: dict[str, int] | None = None,
        max_sctp_message_size: int = 262_144,
        sctp_send_buffer_size: int = 262_144,
        ice_consent_timeout: int = 30,
        app_data: dict[str, Any] | None = None,
    ) -> WebRtcTransport:
        self._check_open()
        if not isinstance(listen_infos, list) or not listen_infos:
            raise TypeError("listen_infos must be a non-empty list of {protocol, ip, ...}")
        for info in listen_infos:
            if not isinstance(info, dict) or not isinstance(info.get("ip"), str):
                raise TypeError(f"invalid listen info {info!r}: needs at least an 'ip' string")
            if info.get("protocol", "udp") not in ("udp", "tcp"):
                raise TypeError(f"invalid listen info protocol {info.get('protocol')!r} (udp or tcp)")
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        transport_id = str(uuid.uuid4())
        listen = fbs.enum("WebRtcTransport.Listen")
        options = fbs.new(
            "WebRtcTransport.WebRtcTransportOptions",
            base=fbs.new(
                "Transport.Options",
                direct=False,
                initialAvailableOutgoingBitrate=initial_available_outgoing_bitrate,
                enableSctp=enable_sctp,
                numSctpStreams=wire.num_sctp_streams_to_fbs(num_sctp_streams or DEFAULT_SCTP_STREAMS),
                maxSctpMessageSize=max_sctp_message_size,
                sctpSendBufferSize=sctp_send_buffer_size,
                isDataChannel=True,
            ),
            listenType=listen.ListenIndividual,
            listen=fbs.new(
                "WebRtcTransport.ListenIndividual",
                listenInfos=[wire.listen_info_to_fbs(info) for info in listen_infos],
            ),
            enableUdp=enable_udp,
            enableTcp=enable_tcp,
            preferUdp=prefer_udp,
            preferTcp=prefer_tcp,
            iceConsentTimeout=ice_consent_timeout,
        )
        body = fbs.new("Router.CreateWebRtcTransportRequest", transportId=transport_id, options=options)
        dump = await self._channel.request(
            "ROUTER_CREATE_WEBRTCTRANSPORT", "Router_CreateWebRtcTransportRequest", body, self._id
        )
        transport = WebRtcTransport(
            transport_id=transport_id, dump=dump, router=self, channel=self._channel, app_data=app_data
        )
        self._register_transport(transport)
        return transport

    def _register_transport(self, transport: Transport) -> None:
        self._transports[transport.id] = transport
        transport.on("@close", lambda: self._transports.pop(transport.id, None))
        transport.on("@newproducer", lambda producer: self._producers.__setitem__(producer.id, producer))
        transport.on("@producerclose", lambda producer: self._producers.pop(producer.id, None))
        self.observer.emit("newtransport", transport)

    async def _close_transport(self, transport_id: str) -> None:
        """Ask the worker to close a transport; a gone router or worker makes it moot."""
        if self._closed:
            return
        body = fbs.new("Router.CloseTransportRequest", transportId=transport_id)
        try:
            await self._channel.request("ROUTER_CLOSE_TRANSPORT", "Router_CloseTransportRequest", body, self._id)
        except Exception:
            pass
