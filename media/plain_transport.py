"""A PlainTransport: plain RTP/RTCP (optionally SRTP) to an endpoint like ffmpeg or GStreamer.

With `comedia` the remote tuple is learnt from the first packet received.
Events (besides Transport's): "tuple", "rtcptuple", "sctpstatechange".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs, wire
from media.channel import Channel
from media.errors import InvalidStateError
from media.transport import Transport
from media.worker_install import version_at_least

if TYPE_CHECKING:
    from media.router import Router


class PlainTransport(Transport):
    STATS_TYPE = "plain-rtp-transport"

    def __init__(
        self, *, transport_id: str, dump: Any, router: Router, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        super().__init__(transport_id=transport_id, dump=dump, router=router, channel=channel, app_data=app_data)
        self._rtcp_mux = bool(dump.rtcpMux)
        self._comedia = bool(dump.comedia)
        self._tuple = wire.tuple_from_fbs(dump.tuple)
        self._rtcp_tuple = wire.tuple_from_fbs(dump.rtcpTuple) if dump.rtcpTuple is not None else None
        self._srtp_parameters = wire.srtp_parameters_from_fbs(dump.srtpParameters)

    rtcp_mux = property(lambda self: self._rtcp_mux)
    comedia = property(lambda self: self._comedia)
    tuple = property(lambda self: self._tuple)
    rtcp_tuple = property(lambda self: self._rtcp_tuple)
    srtp_parameters = property(lambda self: self._srtp_parameters)

    async def connect(
        self,
        *,
        ip: str | None = None,
        port: int | None = None,
        rtcp_port: int | None = None,
        srtp_parameters: dict[str, Any] | None = None,
    ) -> None:
        self._check_open()
        if self._comedia and "remoteIp" not in self._tuple and not version_at_least(3, 27):
            # 3.14's worker answers with its tuple, which it does not have yet: FlatBuffers'
            # Required() assertion aborts the whole worker. 3.27 made the tuple optional (the fix
            # to propose for 3.14.x: the same schema change, or connect() refusing this case).
            raise InvalidStateError(
                "connect() on a comedia PlainTransport before its first packet aborts mediasoup 3.14's worker "
                "(fixed in 3.27): connect once the remote is learnt (the 'tuple' event)"
            )
        body = fbs.new(
            "PlainTransport.ConnectRequest",
            ip=ip,
            port=port,
            rtcpPort=rtcp_port,
            srtpParameters=wire.srtp_parameters_to_fbs(srtp_parameters) if srtp_parameters is not None else None,
        )
        response = await self._channel.request(
            "PLAINTRANSPORT_CONNECT", "PlainTransport_ConnectRequest", body, self._id
        )
        if response.tuple is not None:  # optional in 3.27's ConnectResponse
            self._tuple = wire.tuple_from_fbs(response.tuple)
        if response.rtcpTuple is not None:
            self._rtcp_tuple = wire.tuple_from_fbs(response.rtcpTuple)
        if response.srtpParameters is not None:
            self._srtp_parameters = wire.srtp_parameters_from_fbs(response.srtpParameters)

    def _on_notification(self, event: int, body: Any) -> None:
        events = fbs.enum("Notification.Event")
        if event == events.PLAINTRANSPORT_TUPLE:
            self._tuple = wire.tuple_from_fbs(body.tuple)
            self._emit_both("tuple", self._tuple)
        elif event == events.PLAINTRANSPORT_RTCP_TUPLE:
            self._rtcp_tuple = wire.tuple_from_fbs(body.tuple)
            self._emit_both("rtcptuple", self._rtcp_tuple)
        else:
            super()._on_notification(event, body)
