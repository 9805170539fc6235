"""The one place where asyncio meets trio.

py-libp2p runs on trio; the media side and ROPE run on asyncio. Each `P2PHost`
owns one thread running its own trio loop with the libp2p host inside. Calls go
in with the trio token (``run_sync_soon``: thread-safe and non-blocking, so the
asyncio loop never waits on the trio thread) and results come out with
``loop.call_soon_threadsafe``. Nothing else in the project may cross the
boundary: everything above this module is plain asyncio.

Ownership: every trio task is started in the host's nursery and every asyncio
task (stream handlers, subscription pumps) in a set the host owns; ``close()``
cancels both and joins the thread, so a closed host leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import multiaddr
import trio
from libp2p import create_yamux_muxer_option, new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.pubsub_notifee import PubsubNotifee
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from swarm import logs
from swarm.libp2p_fixes import apply_fixes, forget_stranger

logs.adopt_libp2p_loggers()  # its import cut its loggers off ours

__all__ = [
    "GossipConfig",
    "GossipMessage",
    "P2PHost",
    "P2PStream",
    "P2PSubscription",
    "new_libp2p_host",
    "open_host",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_STREAM_GONE: tuple[type[BaseException], ...] = (Exception,)
"""libp2p raises a zoo of errors (StreamEOF, StreamReset, MuxedConn..., OSError) for a
stream that is gone; at this boundary they all mean the same thing."""


@dataclass(frozen=True)
class GossipConfig:
    """GossipSub settings, all explicit: py-libp2p's defaults are not the spec's.

    Its constructor defaults to a 120 s heartbeat and a 10 messages/s/topic spam
    limit per forwarder (a forwarder relays everyone's messages, so a 20-node
    swarm trips it); eclipse protection wants 3 distinct IPs in a mesh, which a
    loopback swarm never has; adaptive gossip rewrites the heartbeat interval.
    """

    heartbeat_interval: float = 1.0
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    gossip_window: int = 3
    gossip_history: int = 5
    max_messages_per_topic_per_second: float = 1000.0
    eclipse_protection: bool = False


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    origin: str
    """Peer id of the publisher (its signature was checked by libp2p)."""
    data: bytes
    seqno: bytes


GossipValidator = Callable[[str, str, bytes], bool]
"""``(forwarder, origin, data) -> accept``. Runs on the trio thread: it must be
quick, must not block and may only read thread-safe state."""


class _HostClosed(ConnectionError):
    def __init__(self) -> None:
        super().__init__("libp2p host is closed")


class _Call:
    """One asyncio->trio call: its cancel scope may only be touched on the trio thread."""

    def __init__(self) -> None:
        self.scope: trio.CancelScope | None = None
        self.cancel_requested = False

    def cancel(self) -> None:
        self.cancel_requested = True
        if self.scope is not None:
            self.scope.cancel()


class _Batch:
    """Callbacks for another thread's event loop, run there in order, one wake-up per batch.

    Waking a loop from another thread costs a self-pipe write there and an epoll
    return here (asyncio's ``call_soon_threadsafe``, trio's ``run_sync_soon``); a
    stranger's connection crosses a dozen times (py-spy, issue 12: ~12 % of a node's
    CPU in those writes). Callbacks queue here and only the first of a batch wakes
    the loop; the batch clears its flag before it pops, so a callback queued while
    it runs either is popped by it or schedules the next batch: none is lost.
    One thread puts, the loop's thread runs (deque appends and pops are atomic).
    """

    def __init__(self, wake: Callable[[Callable[[], None]], object]) -> None:
        self._wake = wake
        self._queue: deque[tuple[Callable[..., object], tuple[object, ...]]] = deque()
        self._scheduled = False

    def put(self, callback: Callable[..., object], *args: object) -> None:
        """Queue ``callback(*args)``; raises what ``wake`` raises when the loop is gone."""
        self._queue.append((callback, args))
        if not self._scheduled:
            self._scheduled = True
            try:
                self._wake(self._run)
            except BaseException:
                self._scheduled = False
                raise

    def _run(self) -> None:
        self._scheduled = False
        # Only what is queued now: what comes meanwhile has scheduled its own batch,
        # so a busy producer cannot starve the loop.
        for _ in range(len(self._queue)):
            callback, args = self._queue.popleft()
            try:
                callback(*args)
            except Exception:
                log.exception("callback %r across the thread boundary failed", callback)


READ_AHEAD = 1 << 20
"""Bytes a stream reads ahead of its asyncio reader before its pump waits (its back-pressure)."""
WRITE_BEHIND = 1 << 20
"""Bytes `P2PStream.write` may queue ahead of the libp2p stream before it waits for them to go out."""
DISCARD_S = 5.0
DISCARD_BYTES = 4 << 20
"""After a stream handler returned, what the remote still sends is read and dropped until its EOF,
for at most `DISCARD_S` and `DISCARD_BYTES`; then the stream is reset."""


class P2PStream:
    """One libp2p stream, used from asyncio.

    A ROPE call used to cross the thread boundary twice per read and twice per
    write, each time spawning a trio task (``bench.rope_latency``: 3 ms per call
    vs 0.27 ms over WebSocket). Now each stream has two long-lived pumps on the
    trio side: the reader pushes every chunk that arrives to the asyncio side
    (one crossing, no request for it), and the writer sends whatever asyncio
    queued since its last write in one libp2p write (one crossing to wake it,
    none back: `write` returns once the data is queued). Both directions keep
    back-pressure: the reader stops ``READ_AHEAD`` bytes ahead of `read`, and
    `write` waits once ``WRITE_BEHIND`` bytes are queued. Counters are each
    written by one thread only; every flag one side sets and the other checks is
    re-checked after setting, so no wake-up is lost.
    """

    def __init__(self, host: P2PHost, stream: INetStream, protocol: str) -> None:
        self._host = host
        self._stream = stream
        self._closed = False
        """asyncio: closed or reset by us (no more writes)."""
        self.remote_peer_id: str = stream.muxed_conn.peer_id.to_base58()
        self.protocol: str = protocol
        # Reading (trio pump -> asyncio).
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._received = 0  # trio writes
        self._consumed = 0  # asyncio writes
        self._reader_paused = False
        self._resume = trio.Event()
        self._discarding = False  # trio
        self._discarded = 0  # trio
        self._reader_done = trio.Event()
        # Writing (asyncio -> trio pump).
        self._outgoing: deque[bytes] = deque()
        self._queued = 0  # asyncio writes
        self._flushed = 0  # trio writes
        self._writer_idle = False
        self._wake_writer = trio.Event()
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_error: ConnectionError | None = None
        self._write_ending = False
        self._writer_done = trio.Event()
        self._trio_closed = False
        self._pump_scope = trio.CancelScope()

    # -- asyncio side --------------------------------------------------------------

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Return up to ``max_bytes``; ``b""`` at EOF, reset or once the host is closed."""
        while not self._chunks:
            if self._eof:
                return b""
            waiter = self._read_waiter = self._host._loop.create_future()
            try:
                await waiter
            finally:
                self._read_waiter = None
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self._consumed += len(chunk)
        if self._reader_paused and self._received - self._consumed <= READ_AHEAD:
            self._reader_paused = False
            self._host._run_in_trio(self._resume.set)
        return chunk

    def _deliver(self, chunk: bytes) -> None:
        """asyncio: the reader pump's chunk; ``b""`` is EOF."""
        if chunk:
            self._chunks.append(chunk)
        else:
            self._eof = True
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def write(self, data: bytes) -> None:
        """Queue ``data`` for the stream; raises ConnectionError once it is closed or gone.

        Returns when the data is queued, not sent: an error sending it is raised
        by a later write (the remote's reads tell the caller as much sooner).
        """
        if self._closed:
            raise ConnectionError("stream is closed")
        if self._write_error is not None:
            raise self._write_error
        if not data:
            return
        self._outgoing.append(bytes(data))
        self._queued += len(data)
        if self._writer_idle:
            self._writer_idle = False
            if not self._host._run_in_trio(self._wake_writer.set):
                raise _HostClosed()
        while self._queued - self._flushed > WRITE_BEHIND and self._write_error is None:
            waiter = self._drain_waiter = self._host._loop.create_future()
            try:
                if self._queued - self._flushed > WRITE_BEHIND and self._write_error is None:
                    await waiter
            finally:
                self._drain_waiter = None
        if self._write_error is not None:
            raise self._write_error

    def _drained(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        """Half-close for writing once what was written went out (the remote reads EOF),
        and release the stream. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(_HostClosed):
            await self._host._call(self._trio_close)

    async def reset(self) -> None:
        """Abort the stream: the remote's reads return ``b""`` at once, and a write of ours
        still waiting for its data to go out raises ConnectionError."""
        if self._closed:
            return
        self._closed = True
        self._write_error = ConnectionError(f"stream to {self.remote_peer_id} was reset")
        self._drained()
        with contextlib.suppress(_HostClosed):
            await self._host._call(self._trio_reset)

    async def send_and_hang_up(self, data: bytes, linger_s: float) -> None:
        """Write ``data`` (after what was queued), then hang up this stream's connection
        once the remote has hung up (it read the data) or after ``linger_s``.

        One trip to the libp2p thread instead of four (write, half-close, read to EOF,
        hang up), and no half-close frame: what a refused stranger costs the node
        (issue 12). Hangs up this connection only (the same peer may hold another,
        e.g. a reconnection). Ends the stream for us, like `close`.
        """
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(_HostClosed):
            await self._host._call(lambda: self._trio_send_and_hang_up(bytes(data), linger_s))

    # -- trio side -------------------------------------------------------------------

    async def _trio_pump(self) -> None:
        """trio: the stream's reader and writer, until both are done (or `_stop_pump`)."""
        with self._pump_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._trio_read_loop)
                nursery.start_soon(self._trio_write_loop)

    def _stop_pump(self) -> None:
        self._pump_scope.cancel()

    async def _trio_read_loop(self) -> None:
        post = self._host._post
        try:
            while True:
                try:
                    chunk = await self._stream.read(65536)
                except _STREAM_GONE:
                    return
                if not chunk:
                    return
                if self._discarding:
                    self._discarded += len(chunk)
                    if self._discarded > DISCARD_BYTES:
                        return
                    continue
                self._received += len(chunk)
                post(self._deliver, chunk)
                while self._received - self._consumed > READ_AHEAD and not self._discarding:
                    self._resume = trio.Event()
                    self._reader_paused = True
                    if self._received - self._consumed <= READ_AHEAD:
                        break
                    await self._resume.wait()
        finally:
            self._reader_done.set()
            post(self._deliver, b"")

    async def _trio_write_loop(self) -> None:
        try:
            while True:
                while not self._outgoing:
                    if self._write_ending:
                        return
                    self._wake_writer = trio.Event()
                    self._writer_idle = True
                    if self._outgoing or self._write_ending:
                        self._writer_idle = False
                        continue
                    await self._wake_writer.wait()
                chunks = []
                while self._outgoing:
                    chunks.append(self._outgoing.popleft())
                data = b"".join(chunks)
                try:
                    await self._stream.write(data)
                except _STREAM_GONE as error:
                    self._write_error = ConnectionError(f"stream to {self.remote_peer_id} is gone: {error}")
                    return
                finally:
                    self._flushed += len(data)
                    if self._drain_waiter is not None:
                        self._host._post(self._drained)
        finally:
            self._writer_idle = False
            self._writer_done.set()
            if self._write_error is not None:
                self._host._post(self._drained)

    def _end_writer(self) -> None:
        self._write_ending = True
        self._wake_writer.set()

    async def _trio_close(self) -> None:
        if self._trio_closed:
            return
        self._trio_closed = True
        self._end_writer()
        await self._writer_done.wait()
        with contextlib.suppress(*_STREAM_GONE):
            await self._stream.close()

    async def _trio_discard_rest(self) -> None:
        """trio, once nobody reads the stream any more (its handler returned): drop what the
        remote still sends until its EOF, then release the stream.

        Why not just stop reading: a remote still writing (e.g. the rest of a frame the
        handler refused) then stalls on yamux's flow-control window and its write fails
        after 5 s, before it reads the answer it was sent. Bounded by `DISCARD_S` and
        `DISCARD_BYTES`; past them the stream is reset."""
        self._discarding = True
        self._resume.set()
        with trio.move_on_after(DISCARD_S) as waited:
            await self._reader_done.wait()
        if waited.cancelled_caught or self._discarded > DISCARD_BYTES:  # the remote did not end it
            with contextlib.suppress(*_STREAM_GONE):
                await self._stream.reset()
        self._stop_pump()

    async def _trio_send_and_hang_up(self, data: bytes, linger_s: float) -> None:
        self._trio_closed = True  # the handler's end neither half-closes nor resets it now
        self._end_writer()
        await self._writer_done.wait()
        conn = self._stream.muxed_conn
        # The remote hanging up (or the connection failing), not the stream's EOF: a peer may
        # end its side before it reads (js-libp2p's `sink` does), and a connection closed
        # under it then loses what it had not read yet. Both of py-libp2p's muxers set it.
        hung_up: trio.Event = getattr(conn, "event_shutting_down", self._reader_done)
        with contextlib.suppress(*_STREAM_GONE):
            await self._stream.write(data)
            with trio.move_on_after(linger_s):
                await hung_up.wait()
        if not conn.is_closed:
            with contextlib.suppress(*_STREAM_GONE):
                await conn.close()

    async def _trio_reset(self) -> None:
        if self._trio_closed:
            return
        self._trio_closed = True
        self._outgoing.clear()
        self._end_writer()
        with contextlib.suppress(*_STREAM_GONE):
            await self._stream.reset()
        self._stop_pump()

    def __repr__(self) -> str:
        return f"P2PStream({self.protocol!r}, remote={self.remote_peer_id})"


class P2PSubscription:
    """Messages of one gossip topic, delivered on the asyncio loop."""

    def __init__(self, topic: str, max_queued: int) -> None:
        self.topic = topic
        self._queue: asyncio.Queue[GossipMessage | None] = asyncio.Queue(max_queued)
        self.dropped = 0

    def _deliver(self, message: GossipMessage | None) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10000 == 0:
                log.warning("gossip topic %s: consumer too slow, %d messages dropped", self.topic, self.dropped)

    async def get(self) -> GossipMessage:
        """The next message; raises ConnectionError once the host is closed."""
        message = await self._queue.get()
        if message is None:
            self._queue.put_nowait(None)
            raise _HostClosed()
        return message

    def __aiter__(self) -> AsyncIterator[GossipMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[GossipMessage]:
        while True:
            try:
                yield await self.get()
            except _HostClosed:
                return


MAX_UNPROVEN = 64
"""Open connections whose peer has not been admitted yet (members_only): past this,
the oldest is closed, so strangers cannot fill the connection limit and a member,
who proves itself in milliseconds, always gets in."""


class _ConnectionNotifee(INotifee):
    """Forwards connection events to asyncio listeners; with members_only, gives every
    new connection its own admission deadline. Called inline (libp2p fix 14): it never waits."""

    notifies_inline = True

    def __init__(self, host: P2PHost) -> None:
        self._host = host

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id.to_base58()
        if self._host._open_listeners:  # no crossing per stranger for listeners of departures only
            self._host._post(self._host._emit_connection, peer, True)
        self._host._watch_admission(conn, peer)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer_id = conn.muxed_conn.peer_id
        if (deadline := self._host._unproven.pop(conn, None)) is not None:
            deadline.cancel()  # it ended unproved: its deadline task goes with it
        remaining = [c for c in network.connections.get(peer_id, []) if c is not conn]
        if not remaining:
            self._host._peer_gone(peer_id)
            self._host._post(self._host._emit_connection, peer_id.to_base58(), False)

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


class _GatedPubsubNotifee(INotifee):
    """Stands in for pubsub's own notifee: new connections reach pubsub only once
    the application admits the peer (`P2PHost.admit_peer`), so a stranger is
    never offered a pubsub stream; disconnections of peers pubsub may know pass
    through, in a task of their own (pubsub's queue has no buffer: the send waits
    for its reader), so that this notifee is called inline (libp2p fix 14)."""

    notifies_inline = True

    def __init__(self, inner: PubsubNotifee, host: P2PHost) -> None:
        self.inner = inner
        self._host = host

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer_id = conn.muxed_conn.peer_id
        pubsub, nursery = self._host._pubsub, self._host._nursery
        if pubsub is not None and peer_id not in pubsub.peers and not self._host.is_admitted(peer_id.to_base58()):
            return  # a stranger: pubsub never heard of it
        if nursery is not None:
            with contextlib.suppress(RuntimeError):  # the host is closing: pubsub goes with it
                nursery.start_soon(self.inner.disconnected, network, conn)

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


def new_libp2p_host(key_pair: KeyPair, listen: multiaddr.Multiaddr) -> IHost:
    """The py-libp2p host every `P2PHost` runs (TCP, Noise only, yamux), not started.

    Also what ``bench.rope_latency`` measures bare, all in trio, as the library's own floor.
    """
    noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},  # Noise only: never a plaintext peer id
        muxer_opt=create_yamux_muxer_option(),
        listen_addrs=[listen],
    )


class P2PHost:
    """A running py-libp2p host (TCP, Noise only, yamux), driven from asyncio.

    Use `open_host`; the constructor only prepares state.
    """

    def __init__(
        self,
        key_pair: KeyPair,
        listen: str,
        gossip: GossipConfig | None,
        members_only: bool = False,
        admission_wait_s: float = 5.0,
    ) -> None:
        self._key_pair = key_pair
        self._members_only = members_only
        self._admission_wait_s = admission_wait_s
        self._listen = multiaddr.Multiaddr(listen)
        self._gossip_config = gossip
        self._loop = asyncio.get_running_loop()
        self._token: trio.lowlevel.TrioToken | None = None
        self._to_trio: _Batch | None = None
        """asyncio -> trio callbacks; made with the token, on the trio thread."""
        self._to_asyncio = _Batch(self._loop.call_soon_threadsafe)
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._libp2p: IHost | None = None
        self._pubsub: Pubsub | None = None
        self._pubsub_inner_notifee: PubsubNotifee | None = None
        self._admitted: set[str] = set()
        """Admitted peers: written on the asyncio thread, read on both (a set, under the GIL)."""
        self._admission: dict[str, trio.Event] = {}
        """trio side: set when the peer is admitted; what gated streams and deadlines wait on."""
        self._unproven: dict[INetConn, trio.CancelScope] = {}
        """trio side: open connections of peers not admitted yet, oldest first, with their admission
        deadlines, cancelled when the connection ends: a stranger that hangs up at once leaves no task
        waiting out the deadline (at 170 strangers a second, 850 such tasks and 64,000 objects were
        alive at any time)."""
        self._subscriptions: list[P2PSubscription] = []
        self._started: asyncio.Future[None] = self._loop.create_future()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._thread_main, name="libp2p-trio", daemon=True)
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: set[asyncio.Future[Any]] = set()
        self._connection_listeners: list[tuple[Callable[[str, bool], None], bool]] = []
        self._open_listeners = 0
        """Listeners that want opens too; read on the trio thread (an int, under the GIL)."""
        self.gossip_bytes_sent = 0
        """Bytes of pubsub RPCs this host wrote, hellos included (protobuf payload, before Noise/yamux framing)."""
        self.peer_id: str = ID.from_pubkey(key_pair.public_key).to_base58()
        self.listen_addrs: list[str] = []

    # -- lifecycle -----------------------------------------------------------------

    async def _start(self) -> None:
        self._thread.start()
        try:
            await asyncio.shield(self._started)
        except BaseException:
            await self.close()
            raise

    def _thread_main(self) -> None:
        error: BaseException | None = None
        try:
            trio.run(self._trio_main)
        except BaseException as exc:
            error = exc
            log.debug("trio thread ended with %r", exc)
        finally:
            self._post(self._thread_finished, error)

    def _thread_finished(self, error: BaseException | None) -> None:
        if not self._started.done():
            self._started.set_exception(error or ConnectionError("libp2p host stopped before listening"))
        if not self._finished.done():
            self._finished.set_result(None)
        for subscription in self._subscriptions:
            subscription._deliver(None)
        for future in list(self._pending):
            if not future.done():
                future.set_exception(_HostClosed())

    async def _trio_main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._to_trio = _Batch(self._token.run_sync_soon)
        self._stop = trio.Event()
        host = new_libp2p_host(self._key_pair, self._listen)
        self._libp2p = host
        apply_fixes(host, self.is_admitted if self._members_only else None)
        if self._members_only:
            mux = host.get_mux()
            for protocol, handler in list(mux.handlers.items()):  # identify, identify-push, ping
                if protocol is not None and handler is not None:
                    host.set_stream_handler(protocol, self._gated(protocol, handler))
        network = host.get_network()
        async with host.run([self._listen]), trio.open_nursery() as nursery:
            self._nursery = nursery
            network.register_notifee(_ConnectionNotifee(self))
            addrs = [str(a) for a in host.get_addrs()]
            if self._gossip_config is None:
                self._post(self._listening, addrs)
                await self._stop.wait()
            else:
                await self._run_with_pubsub(host, self._gossip_config, addrs)
            await self._close_connections(host)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _close_connections(host: IHost) -> None:
        """Close every connection while the network still runs: left to the garbage
        collector, the sockets stay open and peers keep seeing us as connected."""
        network = host.get_network()
        with trio.move_on_after(2):
            for peer in list(network.connections):
                with contextlib.suppress(Exception):
                    await network.close_peer(peer)
            with contextlib.suppress(Exception):
                await host.close()

    async def _run_with_pubsub(self, host: IHost, config: GossipConfig, addrs: list[str]) -> None:
        assert self._stop is not None
        router = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=config.degree,
            degree_low=config.degree_low,
            degree_high=config.degree_high,
            gossip_window=config.gossip_window,
            gossip_history=config.gossip_history,
            heartbeat_interval=config.heartbeat_interval,  # type: ignore[arg-type]  # float works
            heartbeat_initial_delay=min(0.1, config.heartbeat_interval),
            adaptive_gossip_enabled=False,
            spam_protection_enabled=config.max_messages_per_topic_per_second > 0,
            max_messages_per_topic_per_second=config.max_messages_per_topic_per_second,
            eclipse_protection_enabled=config.eclipse_protection,
        )
        network: Any = host.get_network()  # the concrete Swarm: INetworkService lacks `notifees`
        before = list(network.notifees)
        pubsub = Pubsub(host, router)
        if self._members_only:
            self._gate_pubsub(host, pubsub, before)
        original_write, original_hello = pubsub.write_msg, pubsub.get_hello_packet

        async def counted_write(stream: INetStream, rpc: Any) -> bool:
            self.gossip_bytes_sent += rpc.ByteSize()
            return await original_write(stream, rpc)

        def counted_hello() -> Any:
            # The hello (our subscriptions, first on each new pubsub stream) bypasses write_msg.
            packet = original_hello()
            self.gossip_bytes_sent += packet.ByteSize()
            return packet

        pubsub.write_msg = counted_write  # type: ignore[method-assign,assignment]
        pubsub.get_hello_packet = counted_hello  # type: ignore[method-assign]
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            self._pubsub = pubsub
            self._post(self._listening, addrs)
            await self._stop.wait()

    def _gate_pubsub(self, host: IHost, pubsub: Pubsub, notifees_before: list[INotifee]) -> None:
        network: Any = host.get_network()
        for index, notifee in enumerate(network.notifees):
            if notifee not in notifees_before and isinstance(notifee, PubsubNotifee):
                self._pubsub_inner_notifee = notifee
                network.notifees[index] = _GatedPubsubNotifee(notifee, self)
        if self._pubsub_inner_notifee is None:
            raise RuntimeError("py-libp2p changed: pubsub notifee not found, cannot gate pubsub to members")
        for protocol in pubsub.router.get_protocols():
            host.set_stream_handler(protocol, self._gated(protocol, pubsub.stream_handler))

    def _gated(
        self, protocol: str, handler: Callable[[INetStream], Awaitable[None]]
    ) -> Callable[[INetStream], Awaitable[None]]:
        """Serve ``protocol`` to admitted peers only; anyone else gets a reset."""

        async def gated_handler(stream: INetStream) -> None:
            peer = stream.muxed_conn.peer_id.to_base58()
            # Both ends admit each other at the end of one handshake, so the other
            # side's stream may arrive a moment before that: wait for the admission
            # (an event, no polling), at most as long as the connection may live unproved.
            if peer not in self._admitted:
                with trio.move_on_after(self._admission_wait_s):
                    await self._admission_event(peer).wait()
            if peer not in self._admitted:
                log.info("refusing %s stream from non-member %s", protocol, peer)
                with contextlib.suppress(*_STREAM_GONE):
                    await stream.reset()
                return
            await handler(stream)

        return gated_handler

    def _admission_event(self, peer: str) -> trio.Event:
        """trio thread only."""
        event = self._admission.get(peer)
        if event is None:
            event = self._admission[peer] = trio.Event()
        return event

    def _watch_admission(self, conn: INetConn, peer: str) -> None:
        """trio thread: a new connection of a peer not admitted yet gets its own deadline
        (a second connection of the same peer is not cut by the first one's)."""
        if not self._members_only or peer in self._admitted or self._nursery is None:
            return
        deadline = self._unproven[conn] = trio.CancelScope(deadline=trio.current_time() + self._admission_wait_s)
        while len(self._unproven) > MAX_UNPROVEN:
            oldest = next(iter(self._unproven))
            del self._unproven[oldest]
            log.info("closing an unproved connection from %s: too many unproved", oldest.muxed_conn.peer_id)
            self._nursery.start_soon(self._close_conn, oldest)
        self._nursery.start_soon(self._admission_deadline, conn, peer, deadline)

    async def _admission_deadline(self, conn: INetConn, peer: str, deadline: trio.CancelScope) -> None:
        with deadline:
            await self._admission_event(peer).wait()
        self._unproven.pop(conn, None)
        if peer not in self._admitted and not conn.is_closed:
            log.warning("closing connection from %s: no membership proof within %.1f s", peer, self._admission_wait_s)
            await self._close_conn(conn)

    @staticmethod
    async def _close_conn(conn: INetConn) -> None:
        with contextlib.suppress(Exception):
            await conn.close()

    def _peer_gone(self, peer_id: ID) -> None:
        """trio thread: its last connection closed; admission must be earned again."""
        peer = peer_id.to_base58()
        self._admission.pop(peer, None)
        if self._members_only and peer not in self._admitted and self._libp2p is not None:
            forget_stranger(self._libp2p, peer_id)

    def _listening(self, addrs: list[str]) -> None:
        self.listen_addrs = addrs
        if not self._started.done():
            self._started.set_result(None)

    async def close(self) -> None:
        """Stop the host: cancel handlers, stop the trio loop, join its thread. Idempotent."""
        if not self._closing:
            self._closing = True
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._thread.is_alive():
                self._run_in_trio(self._request_stop)
        if self._thread.ident is not None:
            await asyncio.shield(self._finished)
            self._thread.join()

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # -- crossing the boundary -----------------------------------------------------

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        """trio -> asyncio, fire and forget (batched: see `_Batch`)."""
        with contextlib.suppress(RuntimeError):  # the asyncio loop is closed: nobody listens
            self._to_asyncio.put(callback, *args)

    def _run_in_trio(self, callback: Callable[[], object]) -> bool:
        """asyncio -> trio, fire and forget (batched: see `_Batch`); False if the trio loop is gone."""
        batch = self._to_trio
        if batch is None:
            return False
        try:
            batch.put(callback)
        except trio.RunFinishedError:
            return False
        return True

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the host's trio nursery and await its result from asyncio.

        Cancelling the awaiting asyncio task cancels the trio side.
        """
        if self._closing and self._finished.done():
            raise _HostClosed()
        future: asyncio.Future[T] = self._loop.create_future()
        call = _Call()

        def settle(outcome: tuple[bool, Any]) -> None:
            if future.done():
                return
            ok, value = outcome
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        async def runner() -> None:
            with trio.CancelScope() as scope:
                call.scope = scope
                if call.cancel_requested:
                    scope.cancel()
                try:
                    result = await fn()
                except trio.Cancelled:
                    raise
                except BaseException as error:
                    self._post(settle, (False, error))
                    return
                self._post(settle, (True, result))
                return
            self._post(settle, (False, _HostClosed()))

        def spawn() -> None:
            if self._nursery is None or self._stop is None or self._stop.is_set():
                self._post(settle, (False, _HostClosed()))
                return
            self._nursery.start_soon(runner)

        if not self._run_in_trio(spawn):
            raise _HostClosed()
        self._pending.add(future)  # settled with _HostClosed if the trio loop ends first
        try:
            return await future
        except asyncio.CancelledError:
            self._run_in_trio(call.cancel)
            raise
        finally:
            self._pending.discard(future)

    def _spawn_asyncio(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connections -----------------------------------------------------------------

    async def connect(self, multiaddr_text: str) -> str:
        """Dial a full multiaddr (with ``/p2p/<id>``); returns the remote peer id.

        Raises ValueError for a malformed address and ConnectionError when the dial fails.
        """
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(multiaddr_text))
        except Exception as error:
            raise ValueError(f"not a multiaddr with /p2p/<peer id>: {multiaddr_text!r} ({error})") from None
        host = self._require_host()

        async def _connect() -> str:
            try:
                await host.connect(info)
            except trio.Cancelled:
                raise
            except Exception as error:
                raise ConnectionError(f"cannot connect to {multiaddr_text}: {error}") from None
            return info.peer_id.to_base58()

        return await self._call(_connect)

    async def disconnect(self, peer_id: str) -> None:
        host = self._require_host()

        async def _disconnect() -> None:
            with contextlib.suppress(Exception):
                await host.disconnect(ID.from_base58(peer_id))

        with contextlib.suppress(_HostClosed):
            await self._call(_disconnect)

    def connected_peers(self) -> list[str]:
        """Peers with at least one open connection (a snapshot; safe from asyncio)."""
        if self._libp2p is None:
            return []
        network = self._libp2p.get_network()
        for _ in range(10):  # the trio thread may resize the dict while we copy it
            try:
                connections = dict(network.connections)
                break
            except RuntimeError:
                continue
        else:
            return []
        return [peer.to_base58() for peer, conns in connections.items() if conns]

    def connection_count(self, peer_id: str) -> int:
        """Open connections to ``peer_id`` (a snapshot; safe from asyncio)."""
        if self._libp2p is None:
            return 0
        try:
            return len(list(self._libp2p.get_network().connections.get(ID.from_base58(peer_id), ())))
        except (RuntimeError, ValueError):
            return 0

    def add_connection_listener(
        self, listener: Callable[[str, bool], None], *, opens: bool = True
    ) -> Callable[[], None]:
        """Call ``listener(peer_id, connected)`` on the asyncio loop when a connection
        opens (True; only with ``opens``) or a peer's last one closes (False). Returns
        the remover. A listener of departures only passes ``opens=False``: then a
        flood of connections costs no crossing each to tell nobody."""
        entry = (listener, opens)
        self._connection_listeners.append(entry)
        self._open_listeners += opens

        def remove() -> None:
            if entry in self._connection_listeners:
                self._connection_listeners.remove(entry)
                self._open_listeners -= opens

        return remove

    def _emit_connection(self, peer_id: str, connected: bool) -> None:
        if not connected:
            self._admitted.discard(peer_id)
        for listener, opens in list(self._connection_listeners):
            if connected and not opens:
                continue
            try:
                listener(peer_id, connected)
            except Exception:
                log.exception("connection listener failed")

    def _require_host(self) -> IHost:
        if self._libp2p is None or self._closing:
            raise _HostClosed()
        return self._libp2p

    # -- streams -----------------------------------------------------------------------

    async def open_stream(self, peer_id: str, protocol: str) -> P2PStream:
        """Open a stream (connecting first if the peerstore knows an address).

        Raises ConnectionError if the peer cannot be reached or refuses the protocol.
        """
        host = self._require_host()
        try:
            remote = ID.from_base58(peer_id)
        except Exception as error:
            raise ValueError(f"not a peer id: {peer_id!r} ({error})") from None

        async def _open() -> P2PStream:
            try:
                net_stream = await host.new_stream(remote, [TProtocol(protocol)])
            except trio.Cancelled:
                raise
            except Exception as error:
                raise ConnectionError(f"cannot open {protocol} to {peer_id}: {error}") from None
            stream = P2PStream(self, net_stream, protocol)
            assert self._nursery is not None
            self._nursery.start_soon(stream._trio_pump)
            return stream

        return await self._call(_open)

    def set_stream_handler(self, protocol: str, handler: Callable[[P2PStream], Awaitable[None]]) -> None:
        """Serve ``protocol``: each inbound stream runs ``handler`` as an asyncio task.

        The stream is closed when the handler returns (reset if it raises); an
        exception is logged and never reaches the host.
        """
        host = self._require_host()

        async def trio_handler(net_stream: INetStream) -> None:
            stream = P2PStream(self, net_stream, protocol)
            done = trio.Event()
            failed: list[bool] = []
            assert self._nursery is not None
            self._nursery.start_soon(stream._trio_pump)
            self._post(self._start_handler, handler, stream, done, failed)
            await done.wait()
            if failed:
                await stream._trio_reset()
            else:
                await stream._trio_close()
                await stream._trio_discard_rest()  # the handler is gone: nobody reads what still comes

        # A dict assignment in multiselect: atomic under the GIL, and doing it here
        # means the handler is in place when this method returns.
        host.set_stream_handler(TProtocol(protocol), trio_handler)

    def _start_handler(
        self,
        handler: Callable[[P2PStream], Awaitable[None]],
        stream: P2PStream,
        done: trio.Event,
        failed: list[bool],
    ) -> None:
        if self._closing:
            self._run_in_trio(done.set)
            return

        async def run_handler() -> None:
            try:
                await handler(stream)
            except asyncio.CancelledError:
                failed.append(True)
                raise
            except Exception:
                failed.append(True)
                log.exception("stream handler for %s from %s failed", stream.protocol, stream.remote_peer_id)
            finally:
                self._run_in_trio(done.set)

        self._spawn_asyncio(run_handler())

    # -- gossip --------------------------------------------------------------------------

    def _require_pubsub(self) -> Pubsub:
        if self._pubsub is None:
            raise RuntimeError("this host was opened without gossip=GossipConfig(...)")
        if self._closing:
            raise _HostClosed()
        return self._pubsub

    async def admit_peer(self, peer_id: str) -> None:
        """Declare ``peer_id`` a verified member (until it disconnects).

        Only meaningful with ``members_only``: built-in protocols (identify, ping,
        pubsub) serve admitted peers only, and pubsub hears of a peer only here.
        """
        self._admitted.add(peer_id)
        pubsub, notifee = self._pubsub, self._pubsub_inner_notifee
        if pubsub is None or notifee is None or self._closing:
            self._run_in_trio(lambda: self._admission_event(peer_id).set())
            return
        remote = ID.from_base58(peer_id)

        async def _admit() -> None:
            self._admission_event(peer_id).set()
            if remote in pubsub.peers:
                return
            with contextlib.suppress(trio.BrokenResourceError):
                await notifee.initiator_peers_queue.send(remote)

        with contextlib.suppress(_HostClosed):
            await self._call(_admit)

    def is_admitted(self, peer_id: str) -> bool:
        return peer_id in self._admitted

    def set_gossip_validator(self, topic: str, validator: GossipValidator) -> None:
        """Accept a topic's message only if ``validator(forwarder, origin, data)`` is true.

        It runs on the trio thread for every received message, before delivery and
        before forwarding: keep it quick and use only thread-safe state.
        """
        pubsub = self._require_pubsub()

        def _validate(forwarder: ID, message: Any) -> bool:
            try:
                return validator(forwarder.to_base58(), ID(message.from_id).to_base58(), bytes(message.data))
            except Exception:
                log.exception("gossip validator for %s failed; message rejected", topic)
                return False

        pubsub.set_topic_validator(topic, _validate, False)

    async def gossip_subscribe(self, topic: str, max_queued: int = 4096) -> P2PSubscription:
        """Subscribe to ``topic``; messages arrive on the returned subscription until close."""
        pubsub = self._require_pubsub()
        subscription = P2PSubscription(topic, max_queued)

        async def _subscribe() -> None:
            trio_sub = await pubsub.subscribe(topic)
            assert self._nursery is not None

            async def pump() -> None:
                async for message in trio_sub:
                    delivered = GossipMessage(
                        topic=topic,
                        origin=ID(message.from_id).to_base58(),
                        data=bytes(message.data),
                        seqno=bytes(message.seqno),
                    )
                    self._post(subscription._deliver, delivered)

            self._nursery.start_soon(pump)

        await self._call(_subscribe)
        self._subscriptions.append(subscription)
        return subscription

    async def gossip_publish(self, topic: str, data: bytes) -> None:
        pubsub = self._require_pubsub()

        async def _publish() -> None:
            await pubsub.publish(topic, data)

        await self._call(_publish)

    def gossip_mesh_peers(self, topic: str) -> list[str]:
        """Peers pubsub currently knows as subscribed to ``topic`` (a snapshot)."""
        pubsub = self._pubsub
        if pubsub is None:
            return []
        return [peer.to_base58() for peer in list(pubsub.peer_topics.get(topic, ()))]


@asynccontextmanager
async def open_host(
    *,
    key_pair: KeyPair | None = None,
    listen: str = "/ip4/127.0.0.1/tcp/0",
    gossip: GossipConfig | None = None,
    members_only: bool = False,
    admission_wait_s: float = 5.0,
) -> AsyncIterator[P2PHost]:
    """Start a libp2p host on its own trio thread; closed (and joined) on exit.

    ``gossip`` adds GossipSub (see `GossipConfig`); without it the host only
    serves streams. ``members_only`` closes the built-in protocols (identify,
    ping, pubsub) to peers not yet passed to `P2PHost.admit_peer`: an inbound
    stream waits up to ``admission_wait_s`` for that, then is reset. Handlers set
    with `P2PHost.set_stream_handler` are the application's to guard.
    """
    host = P2PHost(key_pair or create_new_key_pair(), listen, gossip, members_only, admission_wait_s)
    await host._start()
    try:
        yield host
    finally:
        await host.close()
