"""A Consumer: one producer's media forwarded out of a transport.

Events: "transportclose", "producerclose", "producerpause", "producerresume",
"score", "layerschange", "trace", "rtp". Observer: "close", "pause", "resume",
"score", "layerschange", "trace".
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


class Consumer(TransportChild, EventEmitter):
    UPSTREAM = "producer"
    KIND = "Consumer"

    def __init__(
        self,
        *,
        consumer_id: str,
        producer_id: str,
        kind: str,
        rtp_parameters: dict[str, Any],
        consumer_type: str,
        paused: bool,
        producer_paused: bool,
        score: dict[str, Any] | None,
        preferred_layers: dict[str, Any] | None,
        transport: Transport,
        channel: Channel,
        app_data: dict[str, Any] | None,
    ) -> None:
        super().__init__()
        self._id = consumer_id
        self._producer_id = producer_id
        self._kind = kind
        self._rtp_parameters = rtp_parameters
        self._type = consumer_type
        self._paused = paused
        self._upstream_paused = producer_paused
        self._score = score or {"score": 10, "producerScore": 10, "producerScores": []}
        self._preferred_layers = preferred_layers
        self._current_layers: dict[str, Any] | None = None
        self._priority = 1
        self._transport = transport
        self._channel = channel
        self._closed = False
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        channel.subscribe(consumer_id, self._on_notification)

    id = property(lambda self: self._id)
    producer_id = property(lambda self: self._producer_id)
    kind = property(lambda self: self._kind)
    rtp_parameters = property(lambda self: self._rtp_parameters)
    type = property(lambda self: self._type)
    paused = property(lambda self: self._paused)
    producer_paused = property(lambda self: self._upstream_paused)
    score = property(lambda self: self._score)
    preferred_layers = property(lambda self: self._preferred_layers)
    current_layers = property(lambda self: self._current_layers)
    priority = property(lambda self: self._priority)
    closed = property(lambda self: self._closed)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error("Consumer", worker_closed=self._channel.closed)

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return wire.consumer_dump_from_fbs(await self._channel.request("CONSUMER_DUMP", handler_id=self._id))

    async def get_stats(self) -> list[dict[str, Any]]:
        self._check_open()
        response = await self._channel.request("CONSUMER_GET_STATS", handler_id=self._id)
        return wire.rtp_stream_stats_from_fbs(response.stats)

    async def set_preferred_layers(self, *, spatial_layer: int, temporal_layer: int | None = None) -> None:
        self._check_open()
        if not isinstance(spatial_layer, int):
            raise TypeError("spatial_layer must be an int")
        layers = {"spatialLayer": spatial_layer}
        if temporal_layer is not None:
            layers["temporalLayer"] = temporal_layer
        body = fbs.new("Consumer.SetPreferredLayersRequest", preferredLayers=wire.consumer_layers_to_fbs(layers))
        response = await self._channel.request(
            "CONSUMER_SET_PREFERRED_LAYERS", "Consumer_SetPreferredLayersRequest", body, self._id
        )
        self._preferred_layers = wire.consumer_layers_from_fbs(response.preferredLayers if response else None)

    async def set_priority(self, priority: int) -> None:
        self._check_open()
        if not isinstance(priority, int) or priority < 1:
            raise TypeError("priority must be an int >= 1")
        body = fbs.new("Consumer.SetPriorityRequest", priority=priority)
        response = await self._channel.request(
            "CONSUMER_SET_PRIORITY", "Consumer_SetPriorityRequest", body, self._id
        )
        self._priority = response.priority

    async def unset_priority(self) -> None:
        await self.set_priority(1)

    async def request_key_frame(self) -> None:
        self._check_open()
        await self._channel.request("CONSUMER_REQUEST_KEY_FRAME", handler_id=self._id)

    async def enable_trace_event(self, types: list[str] | None = None) -> None:
        """Trace "rtp", "keyframe", "nack", "pli", "fir"; unknown names are ignored, as in mediasoup."""
        self._check_open()
        events = wire.trace_event_types_to_fbs("Consumer.TraceEventType", [] if types is None else types)
        body = fbs.new("Consumer.EnableTraceEventRequest", events=events)
        await self._channel.request(
            "CONSUMER_ENABLE_TRACE_EVENT", "Consumer_EnableTraceEventRequest", body, self._id
        )

    def _on_notification(self, event: int, body: Any) -> None:
        events = fbs.enum("Notification.Event")
        if event == events.CONSUMER_PRODUCER_CLOSE:
            self._upstream_closed()
        elif event in (events.CONSUMER_PRODUCER_PAUSE, events.CONSUMER_PRODUCER_RESUME):
            self._upstream_pause_changed(event == events.CONSUMER_PRODUCER_PAUSE)
        elif event == events.CONSUMER_SCORE:
            self._score = fbs.to_plain(body.score)
            self.emit("score", self._score)
            self.observer.emit("score", self._score)
        elif event == events.CONSUMER_LAYERS_CHANGE:
            self._current_layers = wire.consumer_layers_from_fbs(body.layers if body else None)
            self.emit("layerschange", self._current_layers)
            self.observer.emit("layerschange", self._current_layers)
        elif event == events.CONSUMER_TRACE:
            trace = fbs.to_plain(body)
            self.emit("trace", trace)
            self.observer.emit("trace", trace)
        elif event == events.CONSUMER_RTP:
            self.emit("rtp", bytes(body.data))
