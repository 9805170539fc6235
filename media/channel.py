"""The one pipe channel to a worker process.

Requests go out on the worker's fd 3 and responses, notifications and logs come
back on its fd 4, each a 4-byte little-endian length followed by one
`FBS.Message.Message`. The Channel owns the pipes, the framing, the request-id
map and the dispatch of notifications by handler id; nothing else touches
them, so every worker object talks through `request()` / `subscribe()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from media import fbs, fbs_codec
from media.errors import NotFoundError, WorkerClosedError, WorkerError
from rope.reads import read_at_most

logger = logging.getLogger("media.channel")
worker_logger = logging.getLogger("media.worker.log")

MESSAGE_MAX_LEN = 4_194_308
"""The worker refuses (and never sends) larger messages."""

NotificationHandler = Callable[[int, Any], None]
"""Called with the event number (`FBS.Notification.Event`) and the decoded body (or None)."""


REQUEST_TIMEOUT_S = 5.0
"""How long the worker may leave requests unanswered before it counts as stalled.

Measured from its last answer, not per request: a worker working through a queue of thousands
of requests answers all the time and never stalls. Below ROPE's 10 s call timeout, so a remote
caller gets this clear error rather than a bare timeout."""

class WorkerTypeError(WorkerError, TypeError):
    """The worker rejected a request's arguments (it answers with error "TypeError")."""


class WorkerNotFoundError(WorkerError, NotFoundError):
    """The worker has no object of the request's handler id (it answers with error "NotFoundError")."""


class WorkerTimeout(WorkerError, TimeoutError):
    """The worker left requests unanswered for the request timeout: it is stalled (e.g. SIGSTOPped)."""


class Channel:
    def __init__(self, *, read_fd: int, write_fd: int, pid: int, request_timeout: float = REQUEST_TIMEOUT_S) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._pid = pid
        self._closed = False
        self._next_id = 0
        self._sent: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._handlers: dict[str, NotificationHandler] = {}
        self._writer: asyncio.WriteTransport | None = None
        self._outgoing: list[bytes] = []
        self._reader: asyncio.ReadTransport | None = None
        self._incoming = bytearray()
        """Bytes read that do not yet make a whole message."""
        self._ended = False
        self._body = fbs.enum("Message.Body")
        self.on_eof: Callable[[], None] | None = None
        """Called once when the worker closes its end (it exited or died)."""
        self.request_timeout = request_timeout
        self.on_stall: Callable[[str], None] | None = None
        """Called (with why) when requests went unanswered for ``request_timeout``; they have failed."""
        self._last_progress = 0.0
        """When the worker last answered, or when a request was sent while none was pending."""
        self._busy = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader, _ = await loop.connect_read_pipe(
            lambda: _ReadProtocol(self), os.fdopen(self._read_fd, "rb", buffering=0)
        )
        read_at_most(self._reader)  # a pipe holds 64 KiB: asyncio's 256 KiB reads cost three syscalls each
        self._writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(self._write_fd, "wb", buffering=0)
        )
        self._watchdog = asyncio.create_task(self._watch(), name=f"channel-watchdog[{self._pid}]")

    @property
    def closed(self) -> bool:
        return self._closed

    def subscribe(self, handler_id: str, handler: NotificationHandler) -> None:
        self._handlers[handler_id] = handler

    def unsubscribe(self, handler_id: str) -> None:
        self._handlers.pop(handler_id, None)

    async def request(
        self, method: str, body_type: str | None = None, body: Any = None, handler_id: str = ""
    ) -> Any:
        """Send one request; returns the response body (object API) or None.

        `method` and `body_type` are names from `FBS.Request.Method` / `FBS.Request.Body`.
        """
        if self._closed or self._writer is None:
            raise WorkerClosedError(f"Channel closed, cannot send request [method:{method}]")
        self._next_id = self._next_id + 1 if self._next_id < 0xFFFFFFFF else 1
        request_id = self._next_id
        request = fbs.new(
            "Request.Request",
            id=request_id,
            method=getattr(fbs.enum("Request.Method"), method),
            handlerId=handler_id,
        )
        if body is not None and body_type is not None:
            request.bodyType = getattr(fbs.enum("Request.Body"), body_type)
            request.body = body
        message = fbs.new("Message.Message", dataType=self._body.Request, data=request)
        self._write(message, what=f"request [method:{method}]")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._sent:
            self._last_progress = loop.time()
            self._busy.set()
        self._sent[request_id] = (method, future)
        try:
            return await future
        finally:
            self._sent.pop(request_id, None)

    async def _watch(self) -> None:
        """Fail what is pending, and say so, once the worker has answered nothing for the timeout."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._sent:
                self._busy.clear()
                await self._busy.wait()
                continue
            due = self._last_progress + self.request_timeout
            if loop.time() < due:
                await asyncio.sleep(due - loop.time())
                continue
            # Overdue. If this process was held up (frozen, starved), answers may be sitting in
            # the pipe unread: give the reader a moment before blaming the worker.
            await asyncio.sleep(min(0.1, self.request_timeout / 10))
            if not self._sent or self._last_progress + self.request_timeout > loop.time():
                continue
            methods = sorted({method for method, _ in self._sent.values()})
            why = f"no answer in {self.request_timeout:g} s (pending: {', '.join(methods)})"
            logger.error("worker[pid:%s] stalled: %s", self._pid, why)
            for method, future in list(self._sent.values()):
                if not future.done():
                    future.set_exception(WorkerTimeout(method=method, reason=f"worker stalled: {why}"))
            self._sent.clear()
            if self.on_stall is not None:
                self.on_stall(why)

    def notify(self, event: str, body_type: str | None = None, body: Any = None, handler_id: str = "") -> None:
        """Fire-and-forget message to the worker (e.g. PRODUCER_SEND)."""
        if self._closed or self._writer is None:
            raise WorkerClosedError(f"Channel closed, cannot send notification [event:{event}]")
        notification = fbs.new(
            "Notification.Notification",
            handlerId=handler_id,
            event=getattr(fbs.enum("Notification.Event"), event),
        )
        if body is not None and body_type is not None:
            notification.bodyType = getattr(fbs.enum("Notification.Body"), body_type)
            notification.body = body
        message = fbs.new("Message.Message", dataType=self._body.Notification, data=notification)
        self._write(message, what=f"notification [event:{event}]")

    def _write(self, message: Any, *, what: str) -> None:
        """Write one message at once if the worker has nothing of ours to work on; otherwise queue
        it, and everything queued in this turn of the loop goes out in one write.

        A lone call (a sequential caller) reaches the worker in this very turn, as with
        mediasoup's Node layer, instead of one loop turn later. 100 concurrent consume() calls
        cost the worker two wake-ups and reads, not 100 (on a 2-core machine each pipe write
        can hand the CPU to the worker in the middle of the batch).
        """
        data = fbs_codec.encode_size_prefixed(message)
        if len(data) > MESSAGE_MAX_LEN:
            raise ValueError(f"{what} too big ({len(data)} bytes, max {MESSAGE_MAX_LEN})")
        if not self._sent and not self._outgoing:
            self._outgoing.append(data)
            self._flush()
            return
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)

    def _flush(self) -> None:
        if self._outgoing and self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def _received(self, data: bytes) -> None:
        """Handle every whole message in what the pipe gave, in order, right in the read callback.

        No reader task in between (as in mediasoup's Node layer, which parses in its socket's
        'data' handler): a response completes its request's future in the same loop turn the
        bytes arrive in, and a partial message waits in ``_incoming`` for the rest.
        """
        if self._incoming:
            self._incoming += data
            buf: bytes | bytearray = self._incoming
        else:
            buf = data
        message_cls = fbs.table("Message.Message")
        at, end = 0, len(buf)
        while end - at >= 4:
            length = int.from_bytes(buf[at : at + 4], "little")
            if length > MESSAGE_MAX_LEN:
                logger.error("worker[pid:%s] sent an oversize message (%d bytes); closing", self._pid, length)
                self._end("worker channel ended")
                return
            if end - at - 4 < length:
                break
            try:
                message = fbs_codec.decode(message_cls, buf, at + 4)
                self._dispatch(message)
            except Exception:
                logger.exception("worker[pid:%s] sent a message that could not be handled", self._pid)
            if self._ended:
                return  # a handler closed the channel: the rest is not ours to deliver
            at += 4 + length
        if buf is self._incoming:
            del self._incoming[:at]
        elif at < end:
            self._incoming += buf[at:]

    def _end(self, why: str) -> None:
        """Reading is over (the worker closed its end, sent garbage, or we closed): once."""
        if self._ended:
            return
        self._ended = True
        self._incoming.clear()
        if self._reader is not None:
            self._reader.close()
        self._fail_pending(why)
        if self.on_eof is not None:
            self.on_eof()

    def _dispatch(self, message: Any) -> None:
        kind = message.dataType
        data = message.data
        if kind == self._body.Response:
            self._on_response(data)
        elif kind == self._body.Notification:
            handler = self._handlers.get(data.handlerId.decode() if data.handlerId else "")
            if handler is not None:
                handler(data.event, data.body)
        elif kind == self._body.Log:
            self._on_log(data.data.decode() if data.data else "")

    def _on_response(self, response: Any) -> None:
        self._last_progress = asyncio.get_running_loop().time()
        entry = self._sent.get(response.id)
        if entry is None:
            logger.error("worker[pid:%s] response matches no request [id:%s]", self._pid, response.id)
            return
        method, future = entry
        if future.done():
            return
        if response.accepted:
            future.set_result(response.body)
            return
        error = response.error.decode() if response.error else "Error"
        reason = response.reason.decode() if response.reason else "(no reason given)"
        cls = {"TypeError": WorkerTypeError, "NotFoundError": WorkerNotFoundError}.get(error, WorkerError)
        future.set_exception(cls(method=method, reason=reason))

    def _on_log(self, line: str) -> None:
        level = {"D": logging.DEBUG, "W": logging.WARNING, "E": logging.ERROR}.get(line[:1], logging.INFO)
        worker_logger.log(level, "[pid:%s] %s", self._pid, line[1:])

    def _fail_pending(self, why: str) -> None:
        for method, future in list(self._sent.values()):
            if not future.done():
                future.set_exception(
                    WorkerClosedError(f"Channel closed, pending request aborted [method:{method}]: {why}")
                )

    async def close(self) -> None:
        """Stop reading and writing; pending requests fail with WorkerClosedError."""
        if self._closed:
            return
        self._closed = True
        self._handlers.clear()
        self._fail_pending("channel closed")
        self._flush()  # what was sent before close() still reaches the worker
        if self._writer is not None:
            self._writer.close()
        self._end("channel closed")
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog


class _ReadProtocol(asyncio.Protocol):
    """The worker's fd 4 side of a Channel: bytes go straight to ``Channel._received``."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def data_received(self, data: bytes) -> None:
        self._channel._received(data)

    def eof_received(self) -> bool | None:
        self._channel._end("worker channel ended")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._channel._end("worker channel ended")
