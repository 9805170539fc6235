"""Workarounds for py-libp2p 0.8.1 defects: the one place the project patches the library.

Each fix is applied to one host (instance attributes; nothing global except the
dial delay, see `fix_dial_delay`) right after ``new_host`` and before it
listens, by `apply_fixes` from `swarm.bridge`. Each names the upstream fix this
project would propose. Tests: tests/test_swarm_hardening.py.

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

2. Dial retries. ``Swarm._dial_with_retry`` retries a refused dial 3 times with
   backoff (0.7 s for a closed port on loopback): a probe of a SIGKILLed peer
   would wait for that. Callers here run their own backoff, so: no retries.
   Upstream: nothing wrong, but ``new_host`` should take ``retry_config``.

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
"""

from __future__ import annotations

import contextlib
import logging
import types
from collections.abc import Callable
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.network import swarm as swarm_module
from libp2p.network.config import RetryConfig
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.peer.id import ID

__all__ = ["MAX_HALF_OPEN", "apply_fixes", "forget_stranger"]

log = logging.getLogger(__name__)

MAX_HALF_OPEN = 64
"""Inbound connections in their Noise/yamux upgrade at once; more are refused at
TCP accept (they retry), so a flood cannot queue unbounded work."""


def apply_fixes(host: IHost, is_admitted: Callable[[str], bool] | None) -> None:
    """Apply every fix to a host built by ``new_host``, before it listens. With
    ``is_admitted`` (a members-only host), identify is limited to admitted peers."""
    network: Any = host.get_network()
    fix_inbound_slots(network)
    network.retry_config = RetryConfig(max_retries=0)
    fix_dial_delay()
    network.auto_connector.maybe_connect = _no_auto_connect
    if is_admitted is not None:
        fix_identify(host, is_admitted)


async def _no_auto_connect(*args: Any, **kwargs: Any) -> None:
    await trio.lowlevel.checkpoint()


def fix_dial_delay() -> None:
    swarm_module._HAPPY_EYEBALLS_DELAY = 0.0


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
