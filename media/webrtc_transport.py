"""A WebRtcTransport: ICE-lite + DTLS + SRTP towards a browser or aiortc client.

Events (besides Transport's): "icestatechange", "iceselectedtuplechange",
"dtlsstatechange", "sctpstatechange"; the observer repeats them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs, wire
from media.channel import Channel
from media.transport import Transport

if TYPE_CHECKING:
    from media.router import Router


class WebRtcTransport(Transport):
    STATS_TYPE = "webrtc-transport"

    def __init__(
        self,
        *,
        transport_id: str,
        dump: Any,
        router: Router,
        channel: Channel,
        app_data: dict[str, Any] | None,
    ) -> None:
        super().__init__(transport_id=transport_id, dump=dump, router=router, channel=channel, app_data=app_data)
        self._ice_role = fbs.enum_names("WebRtcTransport.IceRole")[dump.iceRole].lower()
        self._ice_parameters = wire.ice_parameters_from_fbs(dump.iceParameters)
        self._ice_candidates = wire.ice_candidates_from_fbs(dump.iceCandidates)
        self._ice_state = fbs.enum_names("WebRtcTransport.IceState")[dump.iceState].lower()
        self._ice_selected_tuple = (
            wire.tuple_from_fbs(dump.iceSelectedTuple) if dump.iceSelectedTuple is not None else None
        )
        self._dtls_parameters = wire.dtls_parameters_from_fbs(dump.dtlsParameters)
        self._dtls_state = fbs.enum_names("WebRtcTransport.DtlsState")[dump.dtlsState].lower()
        self._dtls_remote_cert: str | None = None

    ice_role = property(lambda self: self._ice_role)
    ice_parameters = property(lambda self: self._ice_parameters)
    ice_candidates = property(lambda self: self._ice_candidates)
    ice_state = property(lambda self: self._ice_state)
    ice_selected_tuple = property(lambda self: self._ice_selected_tuple)
    dtls_parameters = property(lambda self: self._dtls_parameters)
    dtls_state = property(lambda self: self._dtls_state)
    dtls_remote_cert = property(lambda self: self._dtls_remote_cert)

    def _mark_closed(self) -> None:
        self._ice_state = "closed"
        self._ice_selected_tuple = None
        self._dtls_state = "closed"
        super()._mark_closed()

    def listen_server_closed(self) -> None:
        """Its WebRtcServer closed: the worker closed this transport with it."""
        if self._closed:
            return
        self._mark_closed()
        self.emit("@listenserverclose")
        self.emit("listenserverclose")
        self.observer.emit("close")

    async def connect(self, *, dtls_parameters: dict[str, Any]) -> None:
        """Give the remote DTLS fingerprints (and role); the local role is the complement."""
        self._check_open()
        if not isinstance(dtls_parameters, dict) or not dtls_parameters.get("fingerprints"):
            raise TypeError("dtls_parameters must be a dict with a non-empty 'fingerprints' list")
        body = fbs.new("WebRtcTransport.ConnectRequest", dtlsParameters=wire.dtls_parameters_to_fbs(dtls_parameters))
        response = await self._channel.request(
            "WEBRTCTRANSPORT_CONNECT", "WebRtcTransport_ConnectRequest", body, self._id
        )
        self._dtls_parameters["role"] = fbs.enum_names("WebRtcTransport.DtlsRole")[response.dtlsLocalRole].lower()

    async def restart_ice(self) -> dict[str, Any]:
        self._check_open()
        response = await self._channel.request("TRANSPORT_RESTART_ICE", handler_id=self._id)
        self._ice_parameters = wire.ice_parameters_from_fbs(response)
        return dict(self._ice_parameters)

    def _on_notification(self, event: int, body: Any) -> None:
        events = fbs.enum("Notification.Event")
        if event == events.WEBRTCTRANSPORT_ICE_STATE_CHANGE:
            self._ice_state = fbs.enum_names("WebRtcTransport.IceState")[body.iceState].lower()
            self._emit_both("icestatechange", self._ice_state)
        elif event == events.WEBRTCTRANSPORT_ICE_SELECTED_TUPLE_CHANGE:
            self._ice_selected_tuple = wire.tuple_from_fbs(body.tuple)
            self._emit_both("iceselectedtuplechange", self._ice_selected_tuple)
        elif event == events.WEBRTCTRANSPORT_DTLS_STATE_CHANGE:
            self._dtls_state = fbs.enum_names("WebRtcTransport.DtlsState")[body.dtlsState].lower()
            if self._dtls_state == "connected" and body.remoteCert:
                self._dtls_remote_cert = body.remoteCert.decode()
            self._emit_both("dtlsstatechange", self._dtls_state)
        else:
            super()._on_notification(event, body)
