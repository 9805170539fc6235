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
from media.data_consumer import DataConsumer
from media.data_producer import DataProducer
from media.errors import NotFoundError, closed_error
from media.events import EventEmitter
from media.producer import Producer

if TYPE_CHECKING:
    from media.router import Router

MEDIA_KINDS = ("audio", "video")
MAX_MID = 100_000_000


class Transport(EventEmitter):
    STATS_TYPE = "transport"
    SHARES_PRODUCER_CNAME = True
    """Pipe transports keep the CNAME of the producer they carry."""

    def __init__(
        self, *, transport_id: str, dump: Any, router: Router, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        """`dump` is the worker's answer to the creation request (the kind's DumpResponse)."""
        super().__init__()
        self._id = transport_id
        self._router = router
        self._channel = channel
        self._closed = False
        self._producers: dict[str, Producer] = {}
        self._consumers: dict[str, Consumer] = {}
        self._cname_for_producers: str | None = None
        self._next_mid = 0
        self._sctp_parameters = wire.sctp_parameters_from_fbs(dump.base.sctpParameters)
        self._sctp_state: str | None = (
            fbs.enum_names("SctpAssociation.SctpState")[dump.base.sctpState].lower()
            if dump.base.sctpState is not None
            else None
        )
        self._data_producers: dict[str, DataProducer] = {}
        self._data_consumers: dict[str, DataConsumer] = {}
        self._sctp_stream_ids_in_use: set[int] = set()
        self._next_sctp_stream_id = 0
        # As mediasoup's Node layer: None until the association reports them (the creation dump's are 0/0).
        self._sctp_negotiated_capabilities: dict[str, int] | None = None
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

    @property
    def data_producers(self) -> dict[str, DataProducer]:
        return dict(self._data_producers)

    @property
    def data_consumers(self) -> dict[str, DataConsumer]:
        return dict(self._data_consumers)

    @property
    def sctp_parameters(self) -> dict[str, Any] | None:
        return self._sctp_parameters

    @property
    def sctp_negotiated_capabilities(self) -> dict[str, int] | None:
        """The SCTP association's negotiated stream counts once it is up (3.27+; None before, and on 3.14)."""
        return self._sctp_negotiated_capabilities

    @property
    def type(self) -> str:
        """"webrtc", "plain", "pipe" or "direct" (mediasoup 3.27's transport.type)."""
        return type(self).__name__.removesuffix("Transport").lower()

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error(type(self).__name__, worker_closed=self._channel.closed)

    def _on_notification(self, event: int, body: Any) -> None:
        """Notifications every transport kind gets; subclasses handle theirs first."""
        events = fbs.enum("Notification.Event")
        if event == events.TRANSPORT_SCTP_STATE_CHANGE:
            self._sctp_state = fbs.enum_names("SctpAssociation.SctpState")[body.sctpState].lower()
            self._emit_both("sctpstatechange", self._sctp_state)
        elif event == events.TRANSPORT_TRACE:
            self._emit_both("trace", fbs.to_plain(body))
        elif event == getattr(events, "TRANSPORT_SCTP_NEGOTIATED_CAPABILITIES", None):  # 3.27+
            self._sctp_negotiated_capabilities = wire.sctp_negotiated_capabilities_from_fbs(
                body.negotiatedCapabilities
            )

    def _emit_both(self, event: str, value: Any) -> None:
        """Transport state events go to the application and to monitoring alike."""
        self.emit(event, value)
        self.observer.emit(event, value)

    @property
    def sctp_state(self) -> str | None:
        return self._sctp_state

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
        if self._sctp_state is not None:
            self._sctp_state = "closed"
        self._channel.unsubscribe(self._id)
        for producer in list(self._producers.values()):
            producer.transport_closed()
            self.emit("@producerclose", producer)
        self._producers.clear()
        for consumer in list(self._consumers.values()):
            consumer.transport_closed()
        self._consumers.clear()
        for data_producer in list(self._data_producers.values()):
            data_producer.transport_closed()
            self.emit("@dataproducerclose", data_producer)
        self._data_producers.clear()
        for data_consumer in list(self._data_consumers.values()):
            data_consumer.transport_closed()
        self._data_consumers.clear()

    # --- stats ---------------------------------------------------------------

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return wire.transport_dump_from_fbs(await self._channel.request("TRANSPORT_DUMP", handler_id=self._id))

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        response = await self._channel.request("TRANSPORT_GET_STATS", handler_id=self._id)
        return [{"type": self.STATS_TYPE, **wire.transport_stats_from_fbs(response)}]

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

    async def set_min_outgoing_bitrate(self, bitrate: int) -> None:
        self._check_open()
        body = fbs.new("Transport.SetMinOutgoingBitrateRequest", minOutgoingBitrate=bitrate)
        await self._channel.request(
            "TRANSPORT_SET_MIN_OUTGOING_BITRATE", "Transport_SetMinOutgoingBitrateRequest", body, self._id
        )

    async def enable_trace_event(self, types: list[str] | None = None) -> None:
        """Trace "probation", "bwe"; unknown names are ignored, as in mediasoup."""
        self._check_open()
        events = wire.trace_event_types_to_fbs("Transport.TraceEventType", [] if types is None else types)
        body = fbs.new("Transport.EnableTraceEventRequest", events=events)
        await self._channel.request(
            "TRANSPORT_ENABLE_TRACE_EVENT", "Transport_EnableTraceEventRequest", body, self._id
        )

    # --- media ---------------------------------------------------------------

    async def produce(
        self,
        *,
        kind: str,
        rtp_parameters: dict[str, Any],
        paused: bool = False,
        key_frame_request_delay: int = 0,
        enable_mediasoup_packet_id_header_extension: bool = False,
        id: str | None = None,
        app_data: dict[str, Any] | None = None,
    ) -> Producer:
        """`enable_mediasoup_packet_id_header_extension` (3.27+): the worker stamps mediasoup's
        packet-id header extension on this producer's packets."""
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
        if self.SHARES_PRODUCER_CNAME:
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
        if enable_mediasoup_packet_id_header_extension:
            if not fbs.has("Transport.ProduceRequest", "enableMediasoupPacketIdHeaderExtension"):
                raise TypeError("enable_mediasoup_packet_id_header_extension needs mediasoup 3.27+")
            body.enableMediasoupPacketIdHeaderExtension = True
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
        caps = ortc.validated_rtp_capabilities(rtp_capabilities)
        producer = self._get_producer(producer_id)
        if enable_rtx is None:
            enable_rtx = producer.kind == "video"
        rtp_parameters = ortc.get_consumer_rtp_parameters(
            producer.consumable_rtp_parameters, caps, pipe, enable_rtx
        )
        if not pipe:
            rtp_parameters["mid"] = mid or self._allocate_mid()
        return await self._create_consumer(
            producer,
            rtp_parameters,
            consumer_type="pipe" if pipe else producer.type,
            paused=paused,
            preferred_layers=preferred_layers,
            ignore_dtx=ignore_dtx,
            app_data=app_data,
        )

    def _get_producer(self, producer_id: str) -> Producer:
        producer = self._router.get_producer(producer_id)
        if producer is None:
            raise NotFoundError(f'Producer with id "{producer_id}" not found')
        return producer

    async def _create_consumer(
        self,
        producer: Producer,
        rtp_parameters: dict[str, Any],
        *,
        consumer_type: str,
        paused: bool = False,
        preferred_layers: dict[str, Any] | None = None,
        ignore_dtx: bool = False,
        app_data: dict[str, Any] | None = None,
        initial_score: bool = True,
    ) -> Consumer:
        """`initial_score`: take the worker's score; PipeTransport's consumers start at mediasoup's default."""
        consumer_id = str(uuid.uuid4())
        body = fbs.new(
            "Transport.ConsumeRequest",
            consumerId=consumer_id,
            producerId=producer.id,
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
            producer_id=producer.id,
            kind=producer.kind,
            rtp_parameters=rtp_parameters,
            consumer_type=consumer_type,
            paused=bool(status.paused),
            producer_paused=bool(status.producerPaused),
            score=fbs.to_plain(status.score) if initial_score else None,
            preferred_layers=wire.consumer_layers_from_fbs(status.preferredLayers),
            transport=self,
            channel=self._channel,
            app_data=app_data,
        )
        self._consumers[consumer_id] = consumer
        consumer.on("@close", lambda: self._consumers.pop(consumer_id, None))
        self.observer.emit("newconsumer", consumer)
        return consumer

    # --- data ------------------------------------------------------------------

    DATA_TYPE = "sctp"
    """DirectTransport overrides: its data producers and consumers are "direct"."""

    async def produce_data(
        self,
        *,
        sctp_stream_parameters: dict[str, Any] | None = None,
        label: str = "",
        protocol: str = "",
        paused: bool = False,
        id: str | None = None,
        app_data: dict[str, Any] | None = None,
    ) -> DataProducer:
        self._check_open()
        if id is not None and id in self._router.data_producers:
            raise TypeError(f'a DataProducer with same id "{id}" already exists')
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        if self.DATA_TYPE == "sctp":
            if not isinstance(sctp_stream_parameters, dict):
                raise TypeError("sctp_stream_parameters (a dict with streamId) are required on this transport")
            sctp_stream_parameters = ortc.clone(sctp_stream_parameters)
            ortc.validate_sctp_stream_parameters(sctp_stream_parameters)
        else:
            sctp_stream_parameters = None
        data_producer_id = id or str(uuid.uuid4())
        body = fbs.new(
            "Transport.ProduceDataRequest",
            dataProducerId=data_producer_id,
            type=getattr(fbs.enum("DataProducer.Type"), self.DATA_TYPE.upper()),
            sctpStreamParameters=wire.sctp_stream_parameters_to_fbs(sctp_stream_parameters),
            label=label,
            protocol=protocol,
            paused=paused,
        )
        dump = await self._channel.request(
            "TRANSPORT_PRODUCE_DATA", "Transport_ProduceDataRequest", body, self._id
        )
        data_producer = DataProducer(
            data_producer_id=data_producer_id, dump=dump, paused=paused, transport=self,
            channel=self._channel, app_data=app_data,
        )
        self._data_producers[data_producer_id] = data_producer

        def on_close() -> None:
            self._data_producers.pop(data_producer_id, None)
            self.emit("@dataproducerclose", data_producer)

        data_producer.on("@close", on_close)
        self.emit("@newdataproducer", data_producer)
        self.observer.emit("newdataproducer", data_producer)
        return data_producer

    async def consume_data(
        self,
        *,
        data_producer_id: str,
        ordered: bool | None = None,
        max_packet_life_time: int | None = None,
        max_retransmits: int | None = None,
        paused: bool = False,
        subchannels: list[int] | None = None,
        app_data: dict[str, Any] | None = None,
    ) -> DataConsumer:
        self._check_open()
        if not data_producer_id or not isinstance(data_producer_id, str):
            raise TypeError("missing data_producer_id")
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        data_producer = self._router.get_data_producer(data_producer_id)
        if data_producer is None:
            raise NotFoundError(f'DataProducer with id "{data_producer_id}" not found')
        sctp_stream_parameters = None
        stream_id = None
        if self.DATA_TYPE == "sctp":
            stream_id = self._allocate_sctp_stream_id()
            sctp_stream_parameters = _consumer_sctp_stream_parameters(
                data_producer.sctp_stream_parameters, stream_id, ordered, max_packet_life_time, max_retransmits
            )
        data_consumer_id = str(uuid.uuid4())
        body = fbs.new(
            "Transport.ConsumeDataRequest",
            dataConsumerId=data_consumer_id,
            dataProducerId=data_producer_id,
            type=getattr(fbs.enum(wire.data_consumer_type_path()), self.DATA_TYPE.upper()),
            sctpStreamParameters=wire.sctp_stream_parameters_to_fbs(sctp_stream_parameters),
            label=data_producer.label,
            protocol=data_producer.protocol,
            paused=paused,
            subchannels=wire.subchannels_to_fbs(subchannels),
        )
        try:
            dump = await self._channel.request(
                "TRANSPORT_CONSUME_DATA", "Transport_ConsumeDataRequest", body, self._id
            )
        except BaseException:
            self._sctp_stream_ids_in_use.discard(stream_id)
            raise
        data_consumer = DataConsumer(
            data_consumer_id=data_consumer_id, dump=dump, transport=self, channel=self._channel, app_data=app_data
        )
        self._data_consumers[data_consumer_id] = data_consumer

        def on_close() -> None:
            self._data_consumers.pop(data_consumer_id, None)
            self._sctp_stream_ids_in_use.discard(stream_id)

        data_consumer.on("@close", on_close)
        self.observer.emit("newdataconsumer", data_consumer)
        return data_consumer

    def _allocate_sctp_stream_id(self) -> int:
        if not self._sctp_parameters or not isinstance(self._sctp_parameters.get("MIS"), int):
            raise TypeError("missing sctp_parameters.MIS (was the transport created with enable_sctp=True?)")
        streams = self._sctp_parameters["MIS"]
        for offset in range(streams):
            candidate = (self._next_sctp_stream_id + offset) % streams
            if candidate not in self._sctp_stream_ids_in_use:
                self._sctp_stream_ids_in_use.add(candidate)
                self._next_sctp_stream_id = candidate + 1
                return candidate
        raise RuntimeError("no sctp stream id available")

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


def _consumer_sctp_stream_parameters(
    producer_parameters: dict[str, Any] | None,
    stream_id: int,
    ordered: bool | None,
    max_packet_life_time: int | None,
    max_retransmits: int | None,
) -> dict[str, Any]:
    """A data consumer's SCTP stream parameters, as mediasoup 3.27's consumeData() derives them.

    The producer's (an ordered stream if it has none: a direct DataProducer), then the
    caller's overrides: ordered=True drops the partial-reliability limits, and a limit
    given without ordered=True makes the stream unordered.
    """
    params: dict[str, Any] = dict(producer_parameters) if producer_parameters else {"ordered": True}
    params["streamId"] = stream_id
    if ordered is not None:
        params["ordered"] = ordered
        if ordered:
            params.pop("maxPacketLifeTime", None)
            params.pop("maxRetransmits", None)
    if not ordered:
        if max_packet_life_time is not None:
            params["ordered"] = False
            params["maxPacketLifeTime"] = max_packet_life_time
        if max_retransmits is not None:
            params["ordered"] = False
            params["maxRetransmits"] = max_retransmits
    return params
