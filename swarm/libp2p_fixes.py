"""Workarounds for py-libp2p 0.8.1 defects: the one place the project patches the library.

Each fix is applied to one host (instance attributes; process-wide only the
dial delay, the signed-record caches' entry points, the yamux default, the
disconnection delay, the Noise reads, the frame writes, the reads at the end of
a stream and the close of a connection, see `fix_dial_delay`, `fix_signed_records`,
`fix_yamux_window_updates`, `fix_disconnect_delay`, `fix_noise_reads`,
`fix_whole_frame_writes`, `fix_reads_at_eof`, `fix_yamux_close_linger`, `fix_free_locks`,
`fix_yamux_env_reads`) right after
``new_host`` and before it listens, by `apply_fixes` from `swarm.bridge`. Each names
the upstream fix this project would propose. Tests: tests/test_swarm_hardening.py,
tests/test_swarm_bridge.py (fixes 9, 10, 13, 14, 15, 16 and 17).

1. Inbound slot leak. ``Swarm._handle_inbound_connection`` takes a slot of
   ``_inbound_limiter`` (max_connections - min_connections = 250) and its
   ``_do_handle_inbound_connection`` then waits for ``self.manager.wait_finished()``
   (the whole swarm's end) to keep the TCP handler alive, so the slot is only
   released when the host stops: after 250 inbound connections in a host's life,
   strangers or members, every new one is refused. Here the slot bounds
   connections *being upgraded* (half-open: TCP accepted, Noise/yamux running)
   and is released when the upgrade ends; the handler then waits for *that*
   connection to close. Upstream: in ``_do_handle_inbound_connection``, await the
   new SwarmConn's ``event_closed`` instead of ``manager.wait_finished()``.

2. Dial retries, and no redial for 60 s. ``Swarm._dial_with_retry`` retries a refused
   dial 3 times with backoff (0.7 s for a closed port on loopback): a probe of a
   SIGKILLed peer would wait for that. And once every address of a peer failed, its
   negative cache refuses to dial it again for 60 s: a bootstrap peer that starts late,
   or a member back from a partition, could not be reached for a minute. Callers here
   run their own backoff, so: no retries, and a cache that keeps nothing (its time to
   live is 0). Upstream: nothing wrong, but ``new_host`` should take ``retry_config``
   and the cache's time to live.

3. Happy-eyeballs delay after success. ``Swarm.dial_peer`` waits 250 ms after
   starting each address's dial "unless it fails", even when it has already
   succeeded and even after the last address: every connect costs 250 ms of
   idle waiting. The project listens and dials one address per peer, so the
   delay buys nothing: it is set to 0 (a module constant, so process-wide).
   Upstream: end the wait when the dial succeeds, and skip it after the last address.

4. Identify of strangers. On every new connection the host sends an identify
   request and stores up to 1 MB of the reply, whoever the peer is. Here
   identify runs only for peers the application admitted (`P2PHost.admit_peer`),
   and a peer that leaves without being admitted is forgotten by the peerstore.
   Upstream: an ``identify_filter(peer_id) -> bool`` hook on the host (go-libp2p
   gets the same effect from its ConnectionGater and resource manager).

5. Auto-connector. The swarm's ``AutoConnector`` dials peers from the peerstore
   whenever it holds fewer than ``min_connections`` (50): connections the
   application never asked for, which skip its membership handshake (and are
   cut by its deadline, then redialled: churn). Here it never dials. Upstream:
   make it opt-in (go-libp2p's connection manager only trims, never dials).

6. Signed peer records in every pubsub RPC. Every RPC sent carries the host's
   signed peer record, and ``env_to_send_in_RPC`` recomputes the listen
   addresses from the sockets (multiaddr parsing) to decide whether the cached
   one is current; every RPC received has its record's Ed25519 signature
   checked, twice for one with control messages (``Pubsub.continuously_read_stream``
   and ``GossipSub.handle_rpc``). With 20 nodes on 2 cores that was a fifth of
   each node's libp2p thread (py-spy, issue 12). Here the record to send is
   reused for ``RECORD_CACHE_S``, and a record received that is byte for byte the
   one last accepted from that peer is not checked again (process-wide: the
   functions are module attributes of the pubsub modules; state is per host).
   Upstream: cache the local record and invalidate it on listen-address change;
   skip ``consume_envelope`` for bytes identical to the peer's last accepted record.

7. Yamux window update per read. ``YamuxStream.read`` sends a WINDOW_UPDATE frame
   after every read (``PY_YAMUX_RELEASE_ON_READ`` defaults to on): one more
   encrypted frame and syscall for each small message received (a gossip RPC, a
   probe). Here the process default is go-yamux's semantics (update once half the
   window is consumed), unless the operator set the variable. Upstream: default off.

8. Disconnections reported 100 ms late. ``SwarmConn._cleanup`` resets the
   connection's streams, then ``trio.sleep(0.1)`` "to force a context switch" so
   stream handlers see the resets, and only then notifies the disconnection: every
   closed connection (a SIGKILLed member's included) reaches the application
   100 ms after its TCP close, a tenth of the 1 s detection budget, and every
   stranger's connection holds its task 100 ms longer. A context switch needs no
   wall time: here the wait is two trio checkpoints (handlers woken by the reset
   run before the notification). Process-wide (a method of the class).
   Upstream: ``await trio.lowlevel.checkpoint()`` instead of the sleep.

9. Two receives per Noise message: see `fix_noise_reads`.

10. A cancelled frame write kills the connection: see `fix_whole_frame_writes`.

11. A yamux WINDOW_UPDATE per small read: see `fix_yamux_small_reads`.

12. Two round trips per protocol negotiation on the dialer: see `fix_pipelined_select`.

13. A hundred reads of a closed connection: see `fix_reads_at_eof`.

14. A task per listener per connection event: see `fix_inline_notifications`.

15. Every closed connection waits 100 ms: see `fix_yamux_close_linger`.

16. A scheduler pass per free lock on every stream read and write: see `fix_free_locks`.

17. The environment read on every yamux frame: see `fix_yamux_env_reads`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import trio
from libp2p.abc import IHost, IMultiselectCommunicator, INotifee
from libp2p.custom_types import TProtocol
from libp2p.host import basic_host as basic_host_module
from libp2p.host import ping as ping_module
from libp2p.io import msgio as msgio_module
from libp2p.io import utils as io_utils
from libp2p.io.abc import Reader
from libp2p.io.exceptions import IncompleteReadError, IOException
from libp2p.io.trio import TrioTCPStream
from libp2p.network import swarm as swarm_module
from libp2p.network.config import RetryConfig
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.stream.net_stream import NetStream
from libp2p.network.tag_store import TagStoreNotifee
from libp2p.peer import peerstore as peerstore_module
from libp2p.peer.id import ID
from libp2p.protocol_muxer import multiselect_client
from libp2p.protocol_muxer.exceptions import (
    MultiselectClientError,
    MultiselectCommunicatorError,
    ProtocolNotSupportedError,
)
from libp2p.protocol_muxer.multiselect_client import MultiselectClient
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
from libp2p.pubsub import floodsub as floodsub_module
from libp2p.pubsub import gossipsub as gossipsub_module
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub import utils as pubsub_utils
from libp2p.stream_muxer.exceptions import MuxedConnUnavailable
from libp2p.stream_muxer.yamux import yamux as yamux_module
from libp2p.stream_muxer.yamux.yamux import GO_AWAY_NORMAL, Yamux, YamuxStream
from libp2p.utils import encode_delim
from libp2p.utils import varint as varint_module

__all__ = ["MAX_HALF_OPEN", "RECORD_CACHE_S", "SMALL_READ", "apply_fixes", "forget_stranger"]

log = logging.getLogger(__name__)

MAX_HALF_OPEN = 64
"""Inbound connections in their Noise/yamux upgrade at once; more are refused at
TCP accept (they retry), so a flood cannot queue unbounded work."""

RECORD_CACHE_S = 30.0
"""How long a signed peer record, sent or accepted, is reused without recomputing or re-checking it."""


def apply_fixes(host: IHost, is_admitted: Callable[[str], bool] | None) -> None:
    """Apply every fix to a host built by ``new_host``, before it listens. With
    ``is_admitted`` (a members-only host), identify is limited to admitted peers."""
    network: Any = host.get_network()
    fix_inbound_slots(network)
    network.retry_config = RetryConfig(max_retries=0)
    network._negative_peer_cache = type(network._negative_peer_cache)(ttl=0.0)
    fix_dial_delay()
    fix_signed_records()
    fix_yamux_window_updates()
    fix_disconnect_delay()
    fix_noise_reads()
    fix_whole_frame_writes()
    fix_yamux_small_reads()
    fix_pipelined_select()
    fix_reads_at_eof()
    fix_inline_notifications(network)
    fix_yamux_close_linger()
    fix_free_locks()
    fix_yamux_env_reads()
    network.auto_connector.maybe_connect = _no_auto_connect
    if is_admitted is not None:
        fix_identify(host, is_admitted)


async def _no_auto_connect(*args: Any, **kwargs: Any) -> None:
    await trio.lowlevel.checkpoint()


def fix_dial_delay() -> None:
    swarm_module._HAPPY_EYEBALLS_DELAY = 0.0


def fix_disconnect_delay() -> None:
    """Install `_prompt_cleanup` as ``SwarmConn._cleanup`` (idempotent)."""
    if SwarmConn._cleanup is not _prompt_cleanup:
        SwarmConn._cleanup = _prompt_cleanup  # type: ignore[method-assign]


async def _prompt_cleanup(self: Any) -> None:
    """``SwarmConn._cleanup`` of py-libp2p 0.8.1 without its 100 ms sleep (fix 8)."""
    self.swarm.remove_conn(self)
    if not getattr(self, "_shared_muxed_conn", False):
        with contextlib.suppress(Exception):
            if not self.muxed_conn.is_closed:
                await self.muxed_conn.close()
    for stream in self.streams.copy():
        with contextlib.suppress(Exception):
            await stream.reset()
    # Let the handlers woken by the resets run (what the library's sleep was for).
    await trio.lowlevel.checkpoint()
    await trio.lowlevel.checkpoint()
    await self._notify_disconnected()


def fix_yamux_window_updates() -> None:
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")


def fix_yamux_env_reads() -> None:
    """17. The environment read on every yamux frame. The yamux module reads its ``PY_YAMUX_*``
    tuning variables (a perf harness's) from ``os.environ`` each time it needs one: 10.75
    lookups per 200-byte round trip through the bridge (the data read timeout of every frame,
    the window-update policy of every read, the debug switch), each an encode of the name and
    a decode of the value: 1.6 % of a bare echo's samples, plus the ``Mapping.get`` around each
    (py-spy, issue 15). Here they are read once, when the first host is fixed (after
    fix 7's default), into a mapping the module's two readers consult: setting one later takes
    a new process, as for most of a program's environment. Process-wide (module functions),
    idempotent. Upstream: read the variables once at import, or into the muxer's config."""
    if getattr(yamux_module._py_yamux_env, "_read_once", False):
        return
    tuning = {key.removeprefix("PY_YAMUX_"): value for key, value in os.environ.items() if key.startswith("PY_YAMUX_")}

    def py_yamux_env(name: str, default: str = "") -> str:
        return tuning.get(name, default)

    def py_yamux_env_set(name: str) -> bool:
        return name in tuning

    py_yamux_env._read_once = True  # type: ignore[attr-defined]
    yamux_module._py_yamux_env = py_yamux_env
    yamux_module._py_yamux_env_set = py_yamux_env_set


def fix_signed_records() -> None:
    """Install the caching versions of the two functions in the modules that call them (idempotent)."""
    for module in (pubsub_module, gossipsub_module, floodsub_module):
        if getattr(module, "env_to_send_in_RPC", None) is not _cached_env_to_send:
            module.env_to_send_in_RPC = _cached_env_to_send  # type: ignore[attr-defined]
            module.maybe_consume_signed_record = _cached_consume_record  # type: ignore[attr-defined]


_ORIGINAL_ENV_TO_SEND = peerstore_module.env_to_send_in_RPC
_ORIGINAL_CONSUME = pubsub_utils.maybe_consume_signed_record


def _cached_env_to_send(host: Any) -> tuple[bytes, bool]:
    now = time.monotonic()
    cached = getattr(host, "_mafalda_local_record", None)
    if cached is not None and now - cached[0] < RECORD_CACHE_S:
        return cached[1], False
    envelope, created = _ORIGINAL_ENV_TO_SEND(host)
    host._mafalda_local_record = (now, envelope)
    return envelope, created


def _cached_consume_record(msg: Any, host: Any, peer_id: Any = None) -> bool:
    if not msg.HasField("senderRecord"):
        return True
    accepted: dict[Any, tuple[float, bytes]] | None = getattr(host, "_mafalda_peer_records", None)
    if accepted is None:
        accepted = host._mafalda_peer_records = {}
    now = time.monotonic()
    known = accepted.get(peer_id)
    if known is not None and known[1] == msg.senderRecord and now - known[0] < RECORD_CACHE_S:
        return True
    ok = bool(_ORIGINAL_CONSUME(msg, host, peer_id))
    if ok:
        if len(accepted) > 4096:
            accepted.clear()
        accepted[peer_id] = (now, bytes(msg.senderRecord))
    return ok


def fix_inbound_slots(network: Any) -> None:
    limiter = trio.CapacityLimiter(MAX_HALF_OPEN)
    network._inbound_limiter = limiter  # what the library's own (now unused) path would take

    async def handle_inbound_connection(self: Any, read_write_closer: Any, maddr: Any) -> None:
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            with contextlib.suppress(Exception):
                await read_write_closer.close()
            return
        raw_conn = None
        try:
            raw_conn = RawConnection(read_write_closer, False)
            muxed_conn = await self.upgrade_inbound_raw_conn(raw_conn, maddr)
        except Exception as error:
            log.debug("inbound upgrade failed: %s", error)
            with contextlib.suppress(Exception):
                await (raw_conn or read_write_closer).close()
            return
        finally:
            limiter.release()
        # The TCP handler must outlive the connection (trio closes the socket when it
        # returns): wait for this connection's end, not the swarm's.
        closed = getattr(muxed_conn, "event_closed", None)
        if isinstance(closed, trio.Event):
            await closed.wait()
        else:  # another muxer: the library's behaviour (slot released all the same)
            await self.manager.wait_finished()

    network._handle_inbound_connection = types.MethodType(handle_inbound_connection, network)


def fix_identify(host: Any, is_admitted: Callable[[str], bool]) -> None:
    original = host._should_identify_peer

    def should_identify_peer(peer_id: ID) -> bool:
        return is_admitted(peer_id.to_base58()) and bool(original(peer_id))

    host._should_identify_peer = should_identify_peer


def forget_stranger(host: IHost, peer_id: ID) -> None:
    """Drop what the peerstore holds about a peer that left without being admitted
    (its public key and addresses: a flood of strangers must not grow it)."""
    with contextlib.suppress(Exception):
        host.get_peerstore().clear_peerdata(peer_id)


READ_AHEAD = 65535 + 2
"""Bytes one TCP read asks for: a whole Noise transport message (at most 65535 bytes) with its 2-byte length."""


def fix_noise_reads() -> None:
    """9. Two receives per Noise message. ``NoisePacketReadWriter`` reads a message's
    2-byte length and then its body, each through ``TrioTCPStream.read(n)``, which asks
    the socket for exactly ``n`` bytes: two ``recv`` syscalls and two trio checkpoints
    for every encrypted frame (every yamux frame: a message, its window update, a ping)
    although both are in the socket buffer. Here a TCP stream reads up to `READ_AHEAD`
    bytes and serves later reads from what is left, so a frame costs one receive.
    Process-wide (the stream class is made inside the TCP transport, before any host
    hook runs); idempotent; the library's own read (its lock and error mapping) still
    does every receive. Upstream: buffer in ``TrioTCPStream`` (or give
    ``FixedSizeLenMsgReadWriter`` a buffered reader), as go-libp2p's noise reads
    through a ``bufio.Reader``."""
    if TrioTCPStream.read is not _read_ahead:
        TrioTCPStream.read = _read_ahead  # type: ignore[method-assign]


_ORIGINAL_TCP_READ = TrioTCPStream.read


async def _read_ahead(self: TrioTCPStream, n: int | None = None) -> bytes:
    if n == 0:
        return b""
    pending: bytes = self.__dict__.pop("_pending", b"")
    if not pending:
        # One reader at a time (the connection's single read loop); the library's read holds its lock.
        pending = await _ORIGINAL_TCP_READ(self, READ_AHEAD if n is None or n < READ_AHEAD else n)
    if n is None or len(pending) <= n:
        return pending
    self.__dict__["_pending"] = pending[n:]
    return pending[:n]


FRAME_WRITE_LIMIT_S = 10.0
"""How long one frame write may block (the peer not reading: a full TCP buffer) before the
connection is given up; cancelling the writer does not cut it shorter."""


def fix_whole_frame_writes() -> None:
    """10. A cancelled frame write kills the connection. ``Yamux._write_frame`` encrypts the
    frame (the Noise session's nonce moves on) and then sends it; a trio cancellation that
    lands in between, or in the middle of ``send_all``, leaves that frame unsent or half
    sent, and the peer fails authentication of every later message on the connection:
    all its streams die. Any cancellation of a task that writes does it: a stream's reader
    stopped while it sends a window update, a writer stopped by a reset, a timeout around
    a write. Here the write of one frame is shielded from cancellation, so a frame goes out
    whole or the connection is closed: if it blocks longer than `FRAME_WRITE_LIMIT_S`, the
    connection is closed (it cannot be used any more) and `MuxedConnUnavailable` is raised.
    Waiting for the connection's write lock stays cancellable. Process-wide (a method of
    the class), idempotent. Upstream: shield the encrypt-and-send in ``_write_frame`` (or
    send every frame from one writer task fed by a channel, as go-yamux's ``sendLoop`` does,
    so that cancelling a caller only drops its frames that were not started)."""
    if Yamux._write_frame is not _write_whole_frame:
        Yamux._write_frame = _write_whole_frame  # type: ignore[method-assign]


async def _write_whole_frame(self: Yamux, data: bytes) -> None:
    async with self._write_lock:
        # One scope: shielded from the caller's cancellation, cancelled by its own deadline.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + FRAME_WRITE_LIMIT_S) as limit:
            await self.secured_conn.write(data)
        if limit.cancelled_caught:
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self.secured_conn.close()
            raise MuxedConnUnavailable(f"frame write blocked for {FRAME_WRITE_LIMIT_S} s: connection closed")


def fix_yamux_small_reads() -> None:
    """11. A yamux WINDOW_UPDATE per small read. ``YamuxStream._auto_tune_and_send_window_update``
    has a branch for ``0 < delta < threshold``: any read below the hysteresis threshold
    (half the window) credits the sender with ``delta + bytes_read`` and sends a frame,
    so every small message costs its reader an encrypted frame and a send, and the
    sender a wake-up to process it: 4 of the node's 16 sends per refused stranger, 5 of
    the stranger's (``read_delim`` reads a multistream message in two reads). Fix 7's
    variable does not reach that branch. Here a read under `SMALL_READ` bytes only counts
    as pending release (the library's own batch: credited once half the window is
    consumed, or with the next larger read); larger reads (bulk transfers, where a frame
    per 64 KB read costs nothing) take the library's path unchanged, so bulk flow control
    behaves as before (that path credits about twice what was read; left alone here).
    Process-wide (a method of the class); idempotent. Upstream: drop the partial-slack
    branch, as go-yamux's ``sendWindowUpdate`` only sends once half the window is consumed
    (with that rule for every read, the swarm, bridge, hardening and ROPE carrier tests
    pass too)."""
    if YamuxStream._auto_tune_and_send_window_update is not _no_window_update_per_small_read:
        YamuxStream._auto_tune_and_send_window_update = _no_window_update_per_small_read  # type: ignore[method-assign]


SMALL_READ = 16 * 1024
"""A yamux read below this sends no WINDOW_UPDATE of its own (fix 11)."""

_ORIGINAL_WINDOW_UPDATE = YamuxStream._auto_tune_and_send_window_update


async def _no_window_update_per_small_read(self: YamuxStream, *, bytes_read: int = 0) -> None:
    if 0 < bytes_read < SMALL_READ:
        # No await between this and the library's accounting (under its window lock).
        self._pending_recv_release += bytes_read
        bytes_read = 0
    await _ORIGINAL_WINDOW_UPDATE(self, bytes_read=bytes_read)


def fix_pipelined_select() -> None:
    """12. Two round trips per protocol negotiation on the dialer. ``MultiselectClient.select_one_of``
    writes the multistream header, waits for the listener's, then writes its proposal
    and waits for the echo: for the security protocol, the muxer and every stream, a
    send and a wait more than needed (the dialer sends 3 messages more per connection
    with one stream; the listener takes 3 wake-ups more). Here the header and the first
    proposal go out in one write, which multistream-select allows (go-libp2p does it;
    a listener reads them as two messages), then the dialer reads the header and the
    answer; the other proposals, if the first is refused, and a listener restarting the
    handshake take the library's way (`try_select`). Process-wide (a method of the
    class); idempotent. Upstream: the same in ``select_one_of`` ("lazy"
    negotiation, as go-multistream's ``SelectProtoOrFail`` writes both at once)."""
    if MultiselectClient.select_one_of is not _select_pipelined:
        MultiselectClient.select_one_of = _select_pipelined  # type: ignore[method-assign]


_ORIGINAL_SELECT = MultiselectClient.select_one_of


async def _select_pipelined(
    self: MultiselectClient,
    protocols: Sequence[TProtocol],
    communicator: IMultiselectCommunicator,
    negotiate_timeout: int = multiselect_client.DEFAULT_NEGOTIATE_TIMEOUT,
) -> TProtocol:
    if not protocols or protocols[0] is None or not isinstance(communicator, MultiselectCommunicator):
        return await _ORIGINAL_SELECT(self, protocols, communicator, negotiate_timeout)
    first = protocols[0]
    header = multiselect_client.MULTISELECT_PROTOCOL_ID
    with trio.move_on_after(negotiate_timeout):
        try:
            await communicator.read_writer.write(encode_delim(header.encode()) + encode_delim(first.encode()))
        except (IOException, AssertionError, ValueError) as error:  # what MultiselectCommunicator.write maps
            raise MultiselectClientError(f"handshake write failed: {error}") from error
        try:
            if (answer := await communicator.read()) != header:
                raise MultiselectClientError(f"multiselect protocol ID mismatch: got {answer!r}")
            answer = await communicator.read()
        except MultiselectCommunicatorError as error:
            raise MultiselectClientError(f"protocol read failed: {error}, protocol={first}") from error
        if answer == first:
            return first
        rest = list(protocols[1:])
        if answer == header:  # the listener restarted the handshake: the library knows what to do
            rest.insert(0, first)
        elif answer != multiselect_client.PROTOCOL_NOT_FOUND_MSG:
            raise MultiselectClientError(f"unrecognized response: {answer!r}, protocol={first}")
        for protocol in rest:  # the library's way, one round trip each
            with contextlib.suppress(ProtocolNotSupportedError):
                return await self.try_select(communicator, protocol)
        raise MultiselectClientError(f"protocols not supported: {list(protocols)}")
    raise MultiselectClientError(f"response timed out after {negotiate_timeout}s, protocols tried: {list(protocols)}")


def fix_reads_at_eof() -> None:
    """13. A hundred reads of a closed connection. ``libp2p.io.utils.read_exactly`` reads
    again, up to 100 times, when a read returns fewer bytes than it needs, and an empty
    read among them: but every reader of the library returns ``b""`` only at the end of
    the stream (TCP at EOF and on a locally closed socket; Noise and yamux raise). So
    each connection that ends while its read loop waits for the next Noise length
    (every connection whose peer hangs up: a stranger refused, a member leaving) makes
    100 more reads of a dead socket, each through the read lock, a failed ``recv``, the
    error translation and a debug log: 3 ms of the node's CPU per closed connection
    (js-libp2p strangers, which close first, showed it: 97 reads of fd -1 per refused
    connection under strace). Here an empty read ends ``read_exactly`` at once with the
    same `IncompleteReadError` (a partial read is still retried). Process-wide: the
    function is installed in the modules that imported it by name; idempotent.
    Upstream: ``if not chunk: break`` in ``read_exactly``'s retry loop."""
    for module in (io_utils, msgio_module, yamux_module, ping_module, varint_module):
        if getattr(module, "read_exactly", None) is not _read_exactly_to_eof:
            module.read_exactly = _read_exactly_to_eof  # type: ignore[attr-defined]


async def _read_exactly_to_eof(reader: Reader, n: int, retry_count: int = io_utils.DEFAULT_RETRY_READ_COUNT) -> bytes:
    buffer = bytearray()
    if n <= 0:
        return b""  # a zero-length message
    for _ in range(retry_count + 1):
        chunk = await reader.read(n - len(buffer))
        if not chunk:
            break  # the end of the stream: no later read brings more
        buffer.extend(chunk)
        if len(buffer) >= n:
            return bytes(buffer)
    raise IncompleteReadError(
        f"Connection closed during read operation: expected {n} bytes but received {len(buffer)} bytes",
        expected_bytes=n,
        received_bytes=len(buffer),
    )


def fix_inline_notifications(network: Any) -> None:
    """14. A task per listener per connection event. ``Swarm._notify`` opens a nursery and
    starts one task for every registered notifee on every event (connected, disconnected,
    stream opened, stream closed): with the four notifees of a host here (the tag store's,
    identify's, pubsub's and the bridge's), 16 tasks and 4 nurseries for a connection with
    one stream, on both ends, although nearly every callback is a few lines of bookkeeping
    that never waits. That was 16.5 of the 28 tasks a refused stranger cost the node, and
    12 of the stranger's 27 (cProfile, bench.accept). go-libp2p calls notifees inline
    (as the library's own docstring says). Here a callback known not to wait runs inline,
    its exceptions isolated as before: the tag store's, identify's except ``connected``
    (it waits for the connection to start), and those of any notifee that declares
    ``notifies_inline = True`` (the bridge's own, which must then never wait). Every
    other callback gets its task, as before. One host (an instance attribute).
    Upstream: ``_notify`` could call notifees inline and document that they must not
    block (go-libp2p's rule), or take an ``inline`` flag at ``register_notifee``."""

    async def notify(method: str, *args: Any) -> None:
        spawned = []
        for notifee in list(network.notifees):
            if _notifies_inline(notifee, method):
                await _notify_one(notifee, method, network, args)
            else:
                spawned.append(notifee)
        if spawned:
            async with trio.open_nursery() as nursery:
                for notifee in spawned:
                    nursery.start_soon(_notify_one, notifee, method, network, args)

    network._notify = notify


_IDENTIFY_NOTIFEE: type | None = getattr(basic_host_module, "_IdentifyNotifee", None)
_INLINE_BY_CLASS: dict[type, frozenset[str]] = {
    TagStoreNotifee: frozenset({"connected", "disconnected", "opened_stream", "closed_stream"}),
}
if _IDENTIFY_NOTIFEE is not None:
    _INLINE_BY_CLASS[_IDENTIFY_NOTIFEE] = frozenset({"disconnected", "opened_stream", "closed_stream"})


def _notifies_inline(notifee: INotifee, method: str) -> bool:
    if getattr(notifee, "notifies_inline", False):
        return True
    return method in _INLINE_BY_CLASS.get(type(notifee), ())


async def _notify_one(notifee: INotifee, method: str, network: Any, args: tuple[Any, ...]) -> None:
    try:
        await getattr(notifee, method)(network, *args)
    except Exception:
        log.exception("notifee %s.%s raised", type(notifee).__name__, method)


def fix_yamux_close_linger() -> None:
    """15. Every closed connection waits 100 ms. ``Yamux.close`` ends with ``trio.sleep(0.1)``,
    after it sent GO_AWAY, closed the socket, set ``event_closed`` and called ``on_close``:
    nothing is left to wait for, yet whoever closes a connection (a member leaving, the
    node hanging up on a refused stranger, every dial loop of bench.accept) is held 100 ms.
    It costs no CPU, but it is wall time on every hang-up: a bench stranger's loop spent
    106 ms of its 234 ms per refused exchange in it. Here the sleep is cut short once
    ``on_close`` has returned (a checkpoint stays: a context switch, as fix 8). Process-wide
    (a method of the class), idempotent. Upstream: drop the sleep (or make it a
    checkpoint)."""
    if Yamux.close is not _close_without_linger:
        Yamux.close = _close_without_linger  # type: ignore[method-assign]


_ORIGINAL_YAMUX_CLOSE = Yamux.close


async def _close_without_linger(self: Yamux, error_code: int = GO_AWAY_NORMAL) -> None:
    on_close = self.on_close
    closer = trio.lowlevel.current_task()
    with trio.CancelScope() as linger:

        async def on_close_then_stop_lingering() -> None:
            if on_close is not None:
                await on_close()
            if trio.lowlevel.current_task() is closer:  # not the read loop's cleanup meanwhile
                linger.cancel()  # what is left of this close() is its sleep

        self.on_close = on_close_then_stop_lingering
        try:
            await _ORIGINAL_YAMUX_CLOSE(self, error_code)
        finally:
            self.on_close = on_close
    await trio.lowlevel.checkpoint()


def fix_free_locks() -> None:
    """16. A scheduler pass per free lock on every stream read and write. A 200-byte message
    takes eight trio locks on its way out and in (the stream's state lock, its read-write
    and window locks, the connection's write and streams locks, the TCP stream's locks),
    and trio's ``Lock.acquire`` yields to the scheduler even when the lock is free: a pass
    through the run loop, with an ``epoll_wait``, per lock. A bare 200-byte echo between
    two hosts in one trio loop took 20 scheduler passes per round trip with the other
    fixes (a trio instrument, issue 15), most of them here, plus the one ``_write_frame``
    adds after every frame; 4 with this one. Here those locks are `FreeLock`s: a free one
    is taken at once (but every 32nd), a held one is waited for as before (with its
    checkpoints). Fairness stays with the socket operations, each of which still yields
    (trio's ``send_all``/``receive_some``), and with `FreeLock`'s periodic pass; fix 10's
    frame write no longer adds its own. Process-wide (the classes' ``__init__``),
    idempotent. Upstream: take free locks with ``acquire_nowait`` on the data path
    (go-yamux's mutexes never yield when free), or guard the stream state without locks
    (trio code between two awaits is atomic)."""
    for cls, paths in _FREE_LOCKS.items():
        init = vars(cls)["__init__"]
        if not getattr(init, "_free_locks", False):
            setattr(cls, "__init__", _init_with_free_locks(init, paths))  # noqa: B010


class FreeLock:
    """A trio lock or semaphore whose acquire takes no scheduler pass when it is free.

    Wraps the library's own object, so its fairness, ownership rules and statistics stay
    trio's; only a free acquire skips trio's checkpoint, and not every one: each
    `CHECKPOINT_EVERY`-th still passes through the scheduler, so a loop that only ever
    takes free locks (a connection's read loop working through 64 KiB of tiny frames already
    read ahead, fix 9) lets the host's other tasks run, as the library's every acquire did."""

    __slots__ = ("_free_acquires", "_inner")

    CHECKPOINT_EVERY = 32

    def __init__(self, inner: trio.Lock | trio.Semaphore) -> None:
        self._inner = inner
        self._free_acquires = 0

    async def acquire(self) -> None:
        self._free_acquires += 1
        if self._free_acquires % self.CHECKPOINT_EVERY:
            try:
                self._inner.acquire_nowait()
                return
            except trio.WouldBlock:
                pass
        await self._inner.acquire()

    def acquire_nowait(self) -> None:
        self._inner.acquire_nowait()

    def release(self) -> None:
        self._inner.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._inner.release()

    def __getattr__(self, name: str) -> Any:  # locked(), statistics(), value...
        return getattr(self._inner, name)


_FREE_LOCKS: dict[type, tuple[str, ...]] = {
    NetStream: ("_state_lock",),
    # Every write takes the read-write lock's writer semaphore.
    YamuxStream: ("window_lock", "close_lock", "rw_lock._readers_lock", "rw_lock._writer_lock"),
    Yamux: ("streams_lock", "_write_lock"),
    TrioTCPStream: ("read_lock", "write_lock"),
}
"""The locks a stream read or write takes, by the class whose constructor makes them (dotted: an
attribute of one of its attributes)."""


def _init_with_free_locks(init: Callable[..., None], paths: tuple[str, ...]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for path in paths:
            *parents, name = path.split(".")
            owner = self
            for parent in parents:
                owner = getattr(owner, parent)
            setattr(owner, name, FreeLock(getattr(owner, name)))

    __init__._free_locks = True  # type: ignore[attr-defined]
    return __init__
