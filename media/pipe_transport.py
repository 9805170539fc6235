"""A PipeTransport: carries producers between routers, on one host or across hosts.

Consumers on it are "pipe" consumers (every encoding, no MID); producers on it
keep the CNAME of the producer they mirror. Across hosts, both ends should
enable RTX and SRTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media import fbs, ortc, wire
from media.channel import Channel
from media.consumer import Consumer
from media.transport import Transport

if TYPE_CHECKING:
    from media.router import Router


class PipeTransport(Transport):
    STATS_TYPE = "pipe-transport"
    SHARES_PRODUCER_CNAME = False

    def __init__(
        self, *, transport_id: str, dump: Any, router: Router, channel: Channel, app_data: dict[str, Any] | None
    ) -> None:
        super().__init__(transport_id=transport_id, dump=dump, router=router, channel=channel, app_data=app_data)
        self._tuple = wire.tuple_from_fbs(dump.tuple)
        self._rtx = bool(dump.rtx)
        self._srtp_parameters = wire.srtp_parameters_from_fbs(dump.srtpParameters)

    tuple = property(lambda self: self._tuple)
    rtx = property(lambda self: self._rtx)
    srtp_parameters = property(lambda self: self._srtp_parameters)

    async def connect(self, *, ip: str, port: int, srtp_parameters: dict[str, Any] | None = None) -> None:
        self._check_open()
        if not isinstance(ip, str) or not isinstance(port, int):
            raise TypeError("connect() needs the remote pipe's ip (str) and port (int)")
        body = fbs.new(
            "PipeTransport.ConnectRequest",
            ip=ip,
            port=port,
            srtpParameters=wire.srtp_parameters_to_fbs(srtp_parameters) if srtp_parameters is not None else None,
        )
        response = await self._channel.request("PIPETRANSPORT_CONNECT", "PipeTransport_ConnectRequest", body, self._id)
        self._tuple = wire.tuple_from_fbs(response.tuple)

    async def consume(  # type: ignore[override]
        self, *, producer_id: str, app_data: dict[str, Any] | None = None
    ) -> Consumer:
        """A pipe consumer forwards every encoding of the producer, as the other router needs them all."""
        self._check_open()
        if not producer_id or not isinstance(producer_id, str):
            raise TypeError("missing producer_id")
        producer = self._get_producer(producer_id)
        rtp_parameters = ortc.get_pipe_consumer_rtp_parameters(producer.consumable_rtp_parameters, self._rtx)
        return await self._create_consumer(
            producer, rtp_parameters, consumer_type="pipe", app_data=app_data, initial_score=False
        )
