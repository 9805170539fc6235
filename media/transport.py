"""What every transport kind shares: produce, consume, stats and the close cascade.

Events: "routerclose". Observer: "close", "newproducer", "newconsumer".
Subclasses add their connect() and handle their own notifications.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from media import fbs, ortc, wire
from media.channel import Channel
from media.consumer import Consumer
from media.errors import InvalidStateError
from media.events import EventEmitter
from media.producer import Producer

if TYPE_CHECKING:
    from media.router import Router

MEDIA_KINDS = ("audio", "video")
MAX_MID = 100_000_000


class Transport(EventEmitter):
    STATS_TYPE = "transport"

    def __init__(
        self, *, transport_id: str, router: Router, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self._id = transport_id
        self._router = router
        self._channel = channel
        self._closed = False
        self._producers: dict[str, Producer] = {}
        self._consumers: dict[str, Consumer] = {}
        self._cname_for_producers: str | None = None
        self._next_mid = 0
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        channel.subscribe(transport_id, self._on_notification)

    @property
    def id(self) -> str:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def router(self) -> Router:
        return self._router

    @property
    def producers(self) -> dict[str, Producer]:
        return dict(self._producers)

    @property
    def consumers(self) -> dict[str, Consumer]:
        return dict(self._consumers)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidStateError(f"{type(self).__name__} closed")

    def _on_notification(self, event: int, body: Any) -> None:
        """Subclasses handle their transport-specific notifications."""

    # --- closing -------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        await self._router._close_transport(self._id)
        self.emit("@close")
        self.observer.emit("close")

    def router_closed(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        self.emit("routerclose")
        self.observer.emit("close")

    def _mark_closed(self) -> None:
        self._closed = True
        self._channel.unsubscribe(self._id)
        for producer in list(self._producers.values()):
            producer.transport_closed()
            self.emit("@producerclose", producer)
        self._producers.clear()
        for consumer in list(self._consumers.values()):
            consumer.transport_closed()
        self._consumers.clear()

    # --- stats ---------------------------------------------------------------

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return wire.flatten(fbs.to_plain(await self._channel.request("TRANSPORT_DUMP", handler_id=self._id)))

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        response = await self._channel.request("TRANSPORT_GET_STATS", handler_id=self._id)
        stats = wire.flatten(fbs.to_plain(response))
        return [{"type": self.STATS_TYPE, **wire.name_enums(stats)}]

    async def set_max_incoming_bitrate(self, bitrate: int) -> None:
        self._check_open()
        body = fbs.new("Transport.SetMaxIncomingBitrateRequest", maxIncomingBitrate=bitrate)
        await self._channel.request(
            "TRANSPORT_SET_MAX_INCOMING_BITRATE", "Transport_SetMaxIncomingBitrateRequest", body, self._id
        )

    async def set_max_outgoing_bitrate(self, bitrate: int) -> None:
        self._check_open()
        body = fbs.new("Transport.SetMaxOutgoingBitrateRequest", maxOutgoingBitrate=bitrate)
        await self._channel.request(
            "TRANSPORT_SET_MAX_OUTGOING_BITRATE", "Transport_SetMaxOutgoingBitrateRequest", body, self._id
        )

    # --- media ---------------------------------------------------------------

    async def produce(
        self,
        *,
        kind: str,
        rtp_parameters: dict[str, Any],
        paused: bool = False,
        key_frame_request_delay: int = 0,
        id: str | None = None,
        app_data: dict[str, Any] | None = None,
    ) -> Producer:
        self._check_open()
        if id is not None and id in self._router.producers:
            raise TypeError(f'a Producer with same id "{id}" already exists')
        if kind not in MEDIA_KINDS:
            raise TypeError(f'invalid kind "{kind}" (audio or video)')
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        params = ortc.clone(rtp_parameters)
        ortc.validate_rtp_parameters(params)
        if not params.get("encodings"):
            params["encodings"] = [{}]
        self._apply_producer_cname(params)
        caps = self._router.rtp_capabilities
        mapping = ortc.get_producer_rtp_parameters_mapping(params, caps)
        consumable = ortc.get_consumable_rtp_parameters(kind, params, caps, mapping)
        producer_id = id or str(uuid.uuid4())
        body = fbs.new(
            "Transport.ProduceRequest",
            producerId=producer_id,
            kind=wire.media_kind_to_fbs(kind),
            rtpParameters=wire.rtp_parameters_to_fbs(params),
            rtpMapping=wire.rtp_mapping_to_fbs(mapping),
            keyFrameRequestDelay=key_frame_request_delay,
            paused=paused,
        )
        response = await self._channel.request("TRANSPORT_PRODUCE", "Transport_ProduceRequest", body, self._id)
        producer = Producer(
            producer_id=producer_id,
            kind=kind,
            rtp_parameters=params,
            producer_type=wire.rtp_type_from_fbs(response.type),
            consumable_rtp_parameters=consumable,
            paused=paused,
            transport=self,
            channel=self._channel,
            app_data=app_data,
        )
        self._producers[producer_id] = producer

        def on_producer_close() -> None:
            self._producers.pop(producer_id, None)
            self.emit("@producerclose", producer)

        producer.on("@close", on_producer_close)
        self.emit("@newproducer", producer)
        self.observer.emit("newproducer", producer)
        return producer

    def _apply_producer_cname(self, params: dict[str, Any]) -> None:
        """All producers of a transport share one RTCP CNAME, as mediasoup does."""
        rtcp = params.setdefault("rtcp", {})
        if self._cname_for_producers is None:
            self._cname_for_producers = rtcp.get("cname") or uuid.uuid4().hex[:8]
        rtcp["cname"] = self._cname_for_producers

    async def consume(
        self,
        *,
        producer_id: str,
        rtp_capabilities: dict[str, Any],
        paused: bool = False,
        mid: str | None = None,
        preferred_layers: dict[str, Any] | None = None,
        ignore_dtx: bool = False,
        enable_rtx: bool | None = None,
        pipe: bool = False,
        app_data: dict[str, Any] | None = None,
    ) -> Consumer:
        self._check_open()
        if not producer_id or not isinstance(producer_id, str):
            raise TypeError("missing producer_id")
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        if mid is not None and (not isinstance(mid, str) or not mid):
            raise TypeError("if given, mid must be a non-empty string")
        caps = ortc.clone(rtp_capabilities)
        ortc.validate_rtp_capabilities(caps)
        producer = self._router.get_producer(producer_id)
        if producer is None:
            raise KeyError(f'Producer with id "{producer_id}" not found')
        if enable_rtx is None:
            enable_rtx = producer.kind == "video"
        rtp_parameters = ortc.get_consumer_rtp_parameters(
            producer.consumable_rtp_parameters, caps, pipe, enable_rtx
        )
        if not pipe:
            rtp_parameters["mid"] = mid or self._allocate_mid()
        consumer_id = str(uuid.uuid4())
        consumer_type = "pipe" if pipe else producer.type
        body = fbs.new(
            "Transport.ConsumeRequest",
            consumerId=consumer_id,
            producerId=producer_id,
            kind=wire.media_kind_to_fbs(producer.kind),
            rtpParameters=wire.rtp_parameters_to_fbs(rtp_parameters),
            type=wire.rtp_type_to_fbs(consumer_type),
            consumableRtpEncodings=wire.encodings_to_fbs(producer.consumable_rtp_parameters["encodings"]),
            paused=paused,
            preferredLayers=wire.consumer_layers_to_fbs(preferred_layers),
            ignoreDtx=ignore_dtx,
        )
        status = await self._channel.request("TRANSPORT_CONSUME", "Transport_ConsumeRequest", body, self._id)
        consumer = Consumer(
            consumer_id=consumer_id,
            producer_id=producer_id,
            kind=producer.kind,
            rtp_parameters=rtp_parameters,
            consumer_type=consumer_type,
            paused=bool(status.paused),
            producer_paused=bool(status.producerPaused),
            score=fbs.to_plain(status.score),
            preferred_layers=wire.consumer_layers_from_fbs(status.preferredLayers),
            transport=self,
            channel=self._channel,
            app_data=app_data,
        )
        self._consumers[consumer_id] = consumer
        consumer.on("@close", lambda: self._consumers.pop(consumer_id, None))
        self.observer.emit("newconsumer", consumer)
        return consumer

    def _allocate_mid(self) -> str:
        mid = str(self._next_mid)
        self._next_mid = (self._next_mid + 1) % MAX_MID
        return mid

    async def _close_child(self, method: str, body_type: str, body: Any) -> None:
        """Ask the worker to close a producer/consumer; a closed transport makes it moot."""
        if self._closed:
            return
        try:
            await self._channel.request(method, body_type, body, self._id)
        except Exception:
            pass
