"""A DirectTransport: media and data injected and received by the application itself.

Events (besides Transport's): "rtcp" with the raw RTCP packet bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs
from media.channel import Channel
from media.errors import UnsupportedError
from media.transport import Transport

if TYPE_CHECKING:
    from media.router import Router


class DirectTransport(Transport):
    STATS_TYPE = "direct-transport"
    DATA_TYPE = "direct"

    def __init__(
        self, *, transport_id: str, dump: Any, router: Router, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        super().__init__(transport_id=transport_id, dump=dump, router=router, channel=channel, app_data=app_data)

    async def connect(self, **_: Any) -> None:
        """Nothing to connect: present so every transport has connect()."""
        self._check_open()

    async def set_max_incoming_bitrate(self, bitrate: int) -> None:
        raise UnsupportedError("set_max_incoming_bitrate() not implemented in DirectTransport")

    async def set_max_outgoing_bitrate(self, bitrate: int) -> None:
        raise UnsupportedError("set_max_outgoing_bitrate() not implemented in DirectTransport")

    async def set_min_outgoing_bitrate(self, bitrate: int) -> None:
        raise UnsupportedError("set_min_outgoing_bitrate() not implemented in DirectTransport")

    def send_rtcp(self, rtcp_packet: bytes) -> None:
        self._check_open()
        if not isinstance(rtcp_packet, (bytes, bytearray)):
            raise TypeError("rtcp_packet must be bytes")
        body = fbs.new("Transport.SendRtcpNotification", data=list(rtcp_packet))
        self._channel.notify("TRANSPORT_SEND_RTCP", "Transport_SendRtcpNotification", body, self._id)

    def _on_notification(self, event: int, body: Any) -> None:
        if event == fbs.enum("Notification.Event").DIRECTTRANSPORT_RTCP:
            self.emit("rtcp", bytes(body.data))
        else:
            super()._on_notification(event, body)
