"""A DataProducer: messages a client (SCTP) or the application (direct) sends into a transport.

Events: "transportclose". Observer: "close", "pause", "resume".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs, wire
from media.channel import Channel
from media.errors import InvalidStateError, closed_error
from media.events import EventEmitter
from media.transport_child import TransportChild

if TYPE_CHECKING:
    from media.transport import Transport

# WebRTC's SCTP payload protocol identifiers (RFC 8831): string, binary, and
# their "empty" variants, which carry one placeholder byte.
PPID_STRING, PPID_BINARY, PPID_STRING_EMPTY, PPID_BINARY_EMPTY = 51, 53, 56, 57


def encode_message(message: str | bytes, ppid: int | None = None) -> tuple[int, bytes]:
    """The (ppid, payload) pair the worker expects for a text or binary message."""
    if isinstance(message, str):
        data = message.encode()
        default_ppid = PPID_STRING if data else PPID_STRING_EMPTY
        data = data or b" "
    elif isinstance(message, (bytes, bytearray)):
        data = bytes(message)
        default_ppid = PPID_BINARY if data else PPID_BINARY_EMPTY
        data = data or b"\x00"
    else:
        raise TypeError("message must be str or bytes")
    return (ppid if ppid is not None else default_ppid), data


def decode_message(ppid: int, data: bytes) -> str | bytes:
    if ppid in (PPID_STRING_EMPTY, PPID_BINARY_EMPTY):
        return "" if ppid == PPID_STRING_EMPTY else b""
    return data.decode() if ppid == PPID_STRING else data


class DataProducer(TransportChild, EventEmitter):
    KIND = "DataProducer"

    def __init__(
        self,
        *,
        data_producer_id: str,
        dump: Any,
        paused: bool,
        transport: Transport,
        channel: Channel,
        app_data: dict[str, Any] | None,
    ) -> None:
        super().__init__()
        self._id = data_producer_id
        self._type = fbs.enum_names("DataProducer.Type")[dump.type].lower()
        self._sctp_stream_parameters = wire.sctp_stream_parameters_from_fbs(dump.sctpStreamParameters)
        self._label = dump.label.decode() if dump.label else ""
        self._protocol = dump.protocol.decode() if dump.protocol else ""
        self._paused = paused
        self._transport = transport
        self._channel = channel
        self._closed = False
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()

    id = property(lambda self: self._id)
    type = property(lambda self: self._type)
    sctp_stream_parameters = property(lambda self: self._sctp_stream_parameters)
    label = property(lambda self: self._label)
    protocol = property(lambda self: self._protocol)
    paused = property(lambda self: self._paused)
    closed = property(lambda self: self._closed)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error("DataProducer", worker_closed=self._channel.closed)

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return wire.data_dump_from_fbs(await self._channel.request("DATAPRODUCER_DUMP", handler_id=self._id))

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        stats = fbs.to_plain(await self._channel.request("DATAPRODUCER_GET_STATS", handler_id=self._id))
        return [{"type": "data-producer", **stats}]

    def send(
        self,
        message: str | bytes,
        ppid: int | None = None,
        subchannels: list[int] | None = None,
        required_subchannel: int | None = None,
        ignored_subchannel: int | None = None,
    ) -> None:
        """Send one message (DataProducers on a DirectTransport only).

        `ignored_subchannel` (3.27+): consumers subscribed to it do not get the message."""
        self._check_open()
        if self._type != "direct":
            raise InvalidStateError("send() is only for DataProducers on a DirectTransport")
        ppid, data = encode_message(message, ppid)
        body = fbs.new(
            "DataProducer.SendNotification",
            ppid=ppid,
            data=list(data),
            subchannels=subchannels,
            requiredSubchannel=required_subchannel,
        )
        if ignored_subchannel is not None:
            if not fbs.has("DataProducer.SendNotification", "ignoredSubchannel"):
                raise TypeError("ignored_subchannel needs mediasoup 3.27+")
            body.ignoredSubchannel = ignored_subchannel
        self._channel.notify("DATAPRODUCER_SEND", "DataProducer_SendNotification", body, self._id)
