"""What producers, consumers and their data twins share: living on a transport, and closing.

Two close paths, as in mediasoup: `close()` (the application closes it: one
TRANSPORT_CLOSE_<KIND> request, "@close" to the transport, observer "close")
and `transport_closed()` (the transport went: no request, "transportclose").
A consumer whose upstream closes in the worker goes through a third,
`_upstream_closed()` ("<upstream>close"). All are idempotent.
"""

from __future__ import annotations

from typing import Any, cast

from media import fbs
from media.pausable import Pausable


class TransportChild(Pausable):
    KIND: str
    """"Producer", "Consumer", "DataProducer" or "DataConsumer": names its channel requests."""

    _closed: bool
    _transport: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.REQUEST_PREFIX = cls.KIND.upper()

    def _mark_closed(self) -> None:
        self._closed = True
        self._channel.unsubscribe(self._id)

    async def close(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        id_field = self.KIND[0].lower() + self.KIND[1:] + "Id"
        body = fbs.new(f"Transport.Close{self.KIND}Request", **{id_field: self._id})
        await self._transport._close_child(
            f"TRANSPORT_CLOSE_{self.KIND.upper()}", f"Transport_Close{self.KIND}Request", body
        )
        self._emit("@close")
        self.observer.emit("close")

    def transport_closed(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        self._emit("transportclose")
        self.observer.emit("close")

    def _upstream_closed(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        self._emit("@close")
        self._emit(f"{self.UPSTREAM}close")
        self.observer.emit("close")

    def _emit(self, event: str) -> None:
        cast(Any, self).emit(event)
