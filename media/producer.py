"""A Producer: media a client sends into a transport.

Events: "transportclose", "score", "videoorientationchange", "trace".
Observer: "close", "pause", "resume", "score", "videoorientationchange", "trace".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs, wire
from media.channel import Channel
from media.errors import closed_error
from media.events import EventEmitter
from media.transport_child import TransportChild

if TYPE_CHECKING:
    from media.transport import Transport


class Producer(TransportChild, EventEmitter):
    KIND = "Producer"

    def __init__(
        self,
        *,
        producer_id: str,
        kind: str,
        rtp_parameters: dict[str, Any],
        producer_type: str,
        consumable_rtp_parameters: dict[str, Any],
        paused: bool,
        transport: Transport,
        channel: Channel,
        app_data: dict[str, Any] | None,
    ) -> None:
        super().__init__()
        self._id = producer_id
        self._kind = kind
        self._rtp_parameters = rtp_parameters
        self._type = producer_type
        self._consumable_rtp_parameters = consumable_rtp_parameters
        self._paused = paused
        self._transport = transport
        self._channel = channel
        self._closed = False
        self._score: list[dict[str, Any]] = []
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        channel.subscribe(producer_id, self._on_notification)

    id = property(lambda self: self._id)
    kind = property(lambda self: self._kind)
    rtp_parameters = property(lambda self: self._rtp_parameters)
    type = property(lambda self: self._type)
    consumable_rtp_parameters = property(lambda self: self._consumable_rtp_parameters)
    paused = property(lambda self: self._paused)
    score = property(lambda self: self._score)
    closed = property(lambda self: self._closed)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error("Producer", worker_closed=self._channel.closed)

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return wire.producer_dump_from_fbs(await self._channel.request("PRODUCER_DUMP", handler_id=self._id))

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        response = await self._channel.request("PRODUCER_GET_STATS", handler_id=self._id)
        return wire.rtp_stream_stats_from_fbs(response.stats)

    async def enable_trace_event(self, types: list[str] | None = None) -> None:
        """Trace "rtp", "keyframe", "nack", "pli", "fir", "sr"; unknown names are ignored, as in mediasoup."""
        self._check_open()
        events = wire.trace_event_types_to_fbs("Producer.TraceEventType", [] if types is None else types)
        body = fbs.new("Producer.EnableTraceEventRequest", events=events)
        await self._channel.request(
            "PRODUCER_ENABLE_TRACE_EVENT", "Producer_EnableTraceEventRequest", body, self._id
        )

    def send(self, rtp_packet: bytes) -> None:
        """Inject one RTP packet (DirectTransport producers only)."""
        self._check_open()
        body = fbs.new("Producer.SendNotification", data=list(rtp_packet))
        self._channel.notify("PRODUCER_SEND", "Producer_SendNotification", body, self._id)

    def _on_notification(self, event: int, body: Any) -> None:
        events = fbs.enum("Notification.Event")
        if event == events.PRODUCER_SCORE:
            self._score = fbs.to_plain(body.scores)
            self.emit("score", self._score)
            self.observer.emit("score", self._score)
        elif event == events.PRODUCER_VIDEO_ORIENTATION_CHANGE:
            orientation = fbs.to_plain(body)
            self.emit("videoorientationchange", orientation)
            self.observer.emit("videoorientationchange", orientation)
        elif event == events.PRODUCER_TRACE:
            trace = fbs.to_plain(body)
            self.emit("trace", trace)
            self.observer.emit("trace", trace)
