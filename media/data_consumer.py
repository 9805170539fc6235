"""A DataConsumer: one data producer's messages delivered out of a transport.

Events: "transportclose", "dataproducerclose", "dataproducerpause",
"dataproducerresume", "message" (payload, ppid), "sctpsendbufferfull",
"bufferedamountlow". Observer: "close", "pause", "resume".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs, wire
from media.channel import Channel
from media.data_producer import decode_message, encode_message
from media.errors import closed_error
from media.events import EventEmitter
from media.transport_child import TransportChild

if TYPE_CHECKING:
    from media.transport import Transport


class DataConsumer(TransportChild, EventEmitter):
    UPSTREAM = "dataproducer"
    KIND = "DataConsumer"

    def __init__(
        self,
        *,
        data_consumer_id: str,
        dump: Any,
        transport: Transport,
        channel: Channel,
        app_data: dict[str, Any] | None,
    ) -> None:
        super().__init__()
        self._id = data_consumer_id
        self._data_producer_id = dump.dataProducerId.decode()
        self._type = fbs.enum_names(wire.data_consumer_type_path())[dump.type].lower()
        self._sctp_stream_parameters = wire.sctp_stream_parameters_from_fbs(dump.sctpStreamParameters)
        self._label = dump.label.decode() if dump.label else ""
        self._protocol = dump.protocol.decode() if dump.protocol else ""
        self._buffered_amount_low_threshold = dump.bufferedAmountLowThreshold
        self._paused = bool(dump.paused)
        self._upstream_paused = bool(dump.dataProducerPaused)
        self._subchannels = [int(s) for s in dump.subchannels or []]
        self._transport = transport
        self._channel = channel
        self._closed = False
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        channel.subscribe(data_consumer_id, self._on_notification)

    id = property(lambda self: self._id)
    data_producer_id = property(lambda self: self._data_producer_id)
    type = property(lambda self: self._type)
    sctp_stream_parameters = property(lambda self: self._sctp_stream_parameters)
    label = property(lambda self: self._label)
    protocol = property(lambda self: self._protocol)
    paused = property(lambda self: self._paused)
    data_producer_paused = property(lambda self: self._upstream_paused)
    subchannels = property(lambda self: list(self._subchannels))
    closed = property(lambda self: self._closed)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error("DataConsumer", worker_closed=self._channel.closed)

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return wire.data_dump_from_fbs(
            await self._channel.request("DATACONSUMER_DUMP", handler_id=self._id), wire.data_consumer_type_path()
        )

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        stats = fbs.to_plain(await self._channel.request("DATACONSUMER_GET_STATS", handler_id=self._id))
        return [{"type": "data-consumer", **stats}]

    async def get_buffered_amount(self) -> int:
        self._check_open()
        response = await self._channel.request("DATACONSUMER_GET_BUFFERED_AMOUNT", handler_id=self._id)
        return int(response.bufferedAmount)

    async def set_buffered_amount_low_threshold(self, threshold: int) -> None:
        self._check_open()
        body = fbs.new("DataConsumer.SetBufferedAmountLowThresholdRequest", threshold=threshold)
        await self._channel.request(
            "DATACONSUMER_SET_BUFFERED_AMOUNT_LOW_THRESHOLD",
            "DataConsumer_SetBufferedAmountLowThresholdRequest",
            body,
            self._id,
        )
        self._buffered_amount_low_threshold = threshold

    async def send(self, message: str | bytes, ppid: int | None = None) -> int | None:
        """Send a message to this consumer's endpoint directly (SCTP data consumers).

        Returns the stream's buffered amount after queueing it (3.27+; None on 3.14, whose worker
        answers with no body)."""
        self._check_open()
        ppid, data = encode_message(message, ppid)
        body = fbs.new("DataConsumer.SendRequest", ppid=ppid, data=list(data))
        response = await self._channel.request("DATACONSUMER_SEND", "DataConsumer_SendRequest", body, self._id)
        return int(response.bufferedAmount) if response is not None else None

    async def set_subchannels(self, subchannels: list[int]) -> None:
        self._check_open()
        body = fbs.new("DataConsumer.SetSubchannelsRequest", subchannels=wire.subchannels_to_fbs(subchannels))
        response = await self._channel.request(
            "DATACONSUMER_SET_SUBCHANNELS", "DataConsumer_SetSubchannelsRequest", body, self._id
        )
        self._subchannels = [int(s) for s in response.subchannels or []]

    async def add_subchannel(self, subchannel: int) -> None:
        self._check_open()
        body = fbs.new("DataConsumer.AddSubchannelRequest", subchannel=subchannel)
        response = await self._channel.request(
            "DATACONSUMER_ADD_SUBCHANNEL", "DataConsumer_AddSubchannelRequest", body, self._id
        )
        self._subchannels = [int(s) for s in response.subchannels or []]

    async def remove_subchannel(self, subchannel: int) -> None:
        self._check_open()
        body = fbs.new("DataConsumer.RemoveSubchannelRequest", subchannel=subchannel)
        response = await self._channel.request(
            "DATACONSUMER_REMOVE_SUBCHANNEL", "DataConsumer_RemoveSubchannelRequest", body, self._id
        )
        self._subchannels = [int(s) for s in response.subchannels or []]

    def _on_notification(self, event: int, body: Any) -> None:
        events = fbs.enum("Notification.Event")
        if event == events.DATACONSUMER_DATAPRODUCER_CLOSE:
            self._upstream_closed()
        elif event in (events.DATACONSUMER_DATAPRODUCER_PAUSE, events.DATACONSUMER_DATAPRODUCER_RESUME):
            self._upstream_pause_changed(event == events.DATACONSUMER_DATAPRODUCER_PAUSE)
        elif event == events.DATACONSUMER_MESSAGE:
            data = bytes(body.data)
            self.emit("message", decode_message(body.ppid, data), body.ppid)
        elif event == events.DATACONSUMER_BUFFERED_AMOUNT_LOW:
            self.emit("bufferedamountlow", body.bufferedAmount)
        elif event == events.DATACONSUMER_SCTP_SENDBUFFER_FULL:
            self.emit("sctpsendbufferfull")
