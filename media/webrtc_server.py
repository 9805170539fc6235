"""A WebRtcServer: one set of UDP/TCP ports shared by many WebRtcTransports of a worker.

Lets a node expose a single port per worker (firewall-friendly) instead of one
per transport. Events: "workerclose". Observer: "close",
"webrtctransporthandled", "webrtctransportunhandled".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs
from media.channel import Channel
from media.errors import closed_error
from media.events import EventEmitter

if TYPE_CHECKING:
    from media.webrtc_transport import WebRtcTransport


class WebRtcServer(EventEmitter):
    def __init__(self, *, webrtc_server_id: str, channel: Channel, app_data: dict[str, Any] | None) -> None:
        super().__init__()
        self._id = webrtc_server_id
        self._channel = channel
        self._closed = False
        self._transports: dict[str, WebRtcTransport] = {}
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()

    id = property(lambda self: self._id)
    closed = property(lambda self: self._closed)

    @property
    def webrtc_transports(self) -> dict[str, WebRtcTransport]:
        return dict(self._transports)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        body = fbs.new("Worker.CloseWebRtcServerRequest", webRtcServerId=self._id)
        try:
            await self._channel.request("WORKER_WEBRTCSERVER_CLOSE", "Worker_CloseWebRtcServerRequest", body)
        except Exception:
            pass
        self._close_transports()
        self.emit("@close")
        self.observer.emit("close")

    def worker_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transports.clear()
        self.emit("workerclose")
        self.observer.emit("close")

    def _close_transports(self) -> None:
        """The worker closes the transports listening through this server: mirror that."""
        for transport in list(self._transports.values()):
            transport.listen_server_closed()
        self._transports.clear()

    async def dump(self) -> dict[str, Any]:
        if self._closed:
            raise closed_error("WebRtcServer", worker_closed=self._channel.closed)
        return fbs.to_plain(await self._channel.request("WEBRTCSERVER_DUMP", handler_id=self._id))

    def _handle_transport(self, transport: WebRtcTransport) -> None:
        self._transports[transport.id] = transport
        self.observer.emit("webrtctransporthandled", transport)

        def unhandle() -> None:
            if self._transports.pop(transport.id, None) is not None:
                self.observer.emit("webrtctransportunhandled", transport)

        transport.on("@close", unhandle)
        transport.on("@listenserverclose", unhandle)
        transport.observer.on("close", unhandle)
