"""RTP observers: audio levels and the dominant speaker of a set of audio producers.

Events: "routerclose"; AudioLevelObserver: "volumes" ([{"producer", "volume"}]),
"silence"; ActiveSpeakerObserver: "dominantspeaker" ({"producer"}).
Observer: "close", "pause", "resume", "addproducer", "removeproducer", and the
kind's own events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs
from media.channel import Channel
from media.errors import NotFoundError, closed_error
from media.events import EventEmitter
from media.pausable import Pausable

if TYPE_CHECKING:
    from media.producer import Producer
    from media.router import Router


class RtpObserver(Pausable, EventEmitter):
    REQUEST_PREFIX = "RTPOBSERVER"

    def __init__(
        self, *, rtp_observer_id: str, router: Router, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self._id = rtp_observer_id
        self._router = router
        self._channel = channel
        self._closed = False
        self._paused = False
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        channel.subscribe(rtp_observer_id, self._on_notification)

    id = property(lambda self: self._id)
    closed = property(lambda self: self._closed)
    paused = property(lambda self: self._paused)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error(type(self).__name__, worker_closed=self._channel.closed)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._channel.unsubscribe(self._id)
        body = fbs.new("Router.CloseRtpObserverRequest", rtpObserverId=self._id)
        if not self._router.closed:
            try:
                await self._channel.request(
                    "ROUTER_CLOSE_RTPOBSERVER", "Router_CloseRtpObserverRequest", body, self._router.id
                )
            except Exception:
                pass
        self.emit("@close")
        self.observer.emit("close")

    def router_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._channel.unsubscribe(self._id)
        self.emit("routerclose")
        self.observer.emit("close")

    async def add_producer(self, *, producer_id: str) -> None:
        self._check_open()
        producer = self._producer(producer_id)
        body = fbs.new("RtpObserver.AddProducerRequest", producerId=producer_id)
        await self._channel.request("RTPOBSERVER_ADD_PRODUCER", "RtpObserver_AddProducerRequest", body, self._id)
        self.observer.emit("addproducer", producer)

    async def remove_producer(self, *, producer_id: str) -> None:
        self._check_open()
        producer = self._producer(producer_id)
        body = fbs.new("RtpObserver.RemoveProducerRequest", producerId=producer_id)
        await self._channel.request(
            "RTPOBSERVER_REMOVE_PRODUCER", "RtpObserver_RemoveProducerRequest", body, self._id
        )
        self.observer.emit("removeproducer", producer)

    def _producer(self, producer_id: str) -> Producer:
        producer = self._router.get_producer(producer_id)
        if producer is None:
            raise NotFoundError(f'Producer with id "{producer_id}" not found')
        return producer

    def _on_notification(self, event: int, body: Any) -> None:
        """Each kind handles its own notifications."""


class AudioLevelObserver(RtpObserver):
    def _on_notification(self, event: int, body: Any) -> None:
        events = fbs.enum("Notification.Event")
        if event == events.AUDIOLEVELOBSERVER_VOLUMES:
            volumes = [
                {"producer": producer, "volume": v.volume}
                for v in body.volumes or []
                if (producer := self._router.get_producer(v.producerId.decode())) is not None
            ]
            if volumes:
                self.emit("volumes", volumes)
                self.observer.emit("volumes", volumes)
        elif event == events.AUDIOLEVELOBSERVER_SILENCE:
            self.emit("silence")
            self.observer.emit("silence")


class ActiveSpeakerObserver(RtpObserver):
    def _on_notification(self, event: int, body: Any) -> None:
        if event == fbs.enum("Notification.Event").ACTIVESPEAKEROBSERVER_DOMINANT_SPEAKER:
            producer = self._router.get_producer(body.producerId.decode())
            if producer is not None:
                self.emit("dominantspeaker", {"producer": producer})
                self.observer.emit("dominantspeaker", {"producer": producer})
