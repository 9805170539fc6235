"""A node against strangers, and py-libp2p 0.8.1's defects (fixed in swarm/libp2p_fixes.py
and swarm/bridge.py): real hosts on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import multiaddr
import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.peer.id import ID

from swarm import libp2p_fixes
from swarm.bridge import P2PHost, P2PStream, open_host
from swarm.gate import MembershipGate
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.node import NodeOptions, SwarmNode

IDENTIFY = "/ipfs/id/1.0.0"


async def wait_until(predicate: Callable[[], object], within: float = 30.0) -> None:
    """Poll state that lives on another thread; bounded, not a speed test."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
def authority() -> SwarmAuthority:
    return SwarmAuthority.generate()


@contextlib.asynccontextmanager
async def node_of(authority: SwarmAuthority, handshake_timeout_s: float = 5.0) -> AsyncIterator[SwarmNode]:
    key_pair = create_new_key_pair()
    options = NodeOptions(handshake_timeout_s=handshake_timeout_s)
    verifier = CertificateVerifier(authority.public_key)
    async with SwarmNode(key_pair, authority.issue(peer_id_of(key_pair)), verifier, options) as node:
        yield node


async def test_a_member_gets_in_after_a_thousand_stranger_connections(authority: SwarmAuthority) -> None:
    """py-libp2p kept an inbound slot per connection for the host's whole life: after 250
    connections, every new one (a member's too) failed during Noise."""
    async with node_of(authority) as node:
        target = node.listen_addrs[0]

        async def stranger_connections(strangers: int, each: int) -> None:
            # A peer id gets 50 connections at once, then 10 per second (py-libp2p's resource
            # manager): 40 each, so that a stranger is never what refuses a connection here.
            for _ in range(strangers):
                async with open_host() as stranger:
                    for _ in range(each):
                        await stranger.connect(target)
                        await stranger.disconnect(node.peer_id)

        await asyncio.gather(*(stranger_connections(5, 40) for _ in range(5)))
        key_pair = create_new_key_pair()
        verifier = CertificateVerifier(authority.public_key)
        async with open_host(key_pair=key_pair, members_only=True) as member:
            gate = MembershipGate(member, authority.issue(peer_id_of(key_pair)), verifier)
            assert await gate.join(target) == node.peer_id
            assert node.is_member(member.peer_id)
            await gate.close()


async def test_a_stranger_is_never_identified_nor_remembered(authority: SwarmAuthority) -> None:
    asked: list[str] = []

    async def record(stream: P2PStream) -> None:
        asked.append(stream.remote_peer_id)

    async with node_of(authority, handshake_timeout_s=1.0) as node, open_host() as stranger:
        stranger.set_stream_handler(IDENTIFY, record)
        await stranger.connect(node.listen_addrs[0])
        # It says nothing: the node hangs up after the handshake timeout ...
        await wait_until(lambda: node.peer_id not in stranger.connected_peers())
        await asyncio.sleep(0.2)
        # ... having asked nothing of it and keeping nothing about it.
        assert asked == []
        assert node.host._libp2p is not None
        assert ID.from_base58(stranger.peer_id) not in node.host._libp2p.get_peerstore().peer_ids()


async def _dial_again(host: P2PHost, address: str) -> None:
    """A second connection to the same peer (``connect`` would reuse the first)."""
    maddr = multiaddr.Multiaddr(address)
    peer = ID.from_base58(address.rsplit("/p2p/", 1)[1])
    assert host._libp2p is not None
    network = host._libp2p.get_network()

    async def dial() -> None:
        await network.dial_addr(maddr.decapsulate(multiaddr.Multiaddr(f"/p2p/{peer}")), peer)

    await host._call(dial)


async def test_each_connection_has_its_own_deadline(authority: SwarmAuthority) -> None:
    """An old connection's deadline used to cut a newer one of the same peer: a member
    reconnecting mid-handshake could be cut off."""
    timeout = 2.0
    async with node_of(authority, handshake_timeout_s=timeout) as node:
        key_pair = create_new_key_pair()
        verifier = CertificateVerifier(authority.public_key)
        async with open_host(key_pair=key_pair, members_only=True, admission_wait_s=30) as peer:
            await peer.connect(node.listen_addrs[0])
            await wait_until(lambda: node.host.connection_count(peer.peer_id) == 1)
            await asyncio.sleep(timeout / 2)
            await _dial_again(peer, node.listen_addrs[0])
            await wait_until(lambda: node.host.connection_count(peer.peer_id) == 2)
            # The first connection's deadline closes that connection only ...
            await wait_until(lambda: node.host.connection_count(peer.peer_id) == 1)
            assert peer.peer_id in node.host.connected_peers()
            # ... and the second, younger one can still prove membership.
            gate = MembershipGate(peer, authority.issue(peer_id_of(key_pair)), verifier)
            await gate.prove(node.peer_id)
            assert node.is_member(peer.peer_id)
            await asyncio.sleep(timeout)
            assert node.is_member(peer.peer_id) and peer.peer_id in node.host.connected_peers()
            await gate.close()


async def test_a_peer_record_is_checked_once_not_on_every_gossip_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """py-libp2p checks the Ed25519 signature of the sender's peer record in every pubsub
    RPC (twice for some): the fix checks a record once, and again only when it changes."""
    from libp2p.pubsub import pubsub as pubsub_module

    from swarm import libp2p_fixes
    from swarm.bridge import GossipConfig

    checks: list[object] = []
    original = libp2p_fixes._ORIGINAL_CONSUME

    def counted(msg: Any, host: Any, peer_id: Any = None) -> bool:
        checks.append(peer_id)
        return bool(original(msg, host, peer_id))

    monkeypatch.setattr(libp2p_fixes, "_ORIGINAL_CONSUME", counted)
    topic = "/test/records"
    async with open_host(gossip=GossipConfig()) as a, open_host(gossip=GossipConfig()) as b:
        assert pubsub_module.maybe_consume_signed_record is libp2p_fixes._cached_consume_record
        received = await b.gossip_subscribe(topic)
        await a.gossip_subscribe(topic)
        await b.connect(a.listen_addrs[0])
        await wait_until(lambda: a.gossip_mesh_peers(topic) and b.gossip_mesh_peers(topic))

        async def publish() -> None:
            # Gossip is best-effort: a message may be lost (once, 1 of 30, on a loaded machine), so we
            # publish until 30 arrived; the records are checked as often whatever the count.
            for index in itertools.count():
                await a.gossip_publish(topic, b"message %d" % index)
                await asyncio.sleep(0.01)

        publisher = asyncio.create_task(publish())
        try:
            async with asyncio.timeout(30):
                for _ in range(30):
                    await received.get()
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
    assert 1 <= len(checks) <= 4  # once per peer and direction (a record changes only with its addresses)


async def test_a_closed_connection_ends_its_streams_and_is_reported() -> None:
    """py-libp2p slept 100 ms between resetting a closed connection's streams and
    reporting it (fix 8): the report and the streams' end must still both come."""
    ended = asyncio.Event()
    gone: list[str] = []

    async def hold(stream: P2PStream) -> None:
        while await stream.read():
            pass
        ended.set()

    async with open_host() as listener:
        listener.set_stream_handler("/test/hold/1.0.0", hold)
        listener.add_connection_listener(lambda peer, connected: None if connected else gone.append(peer))
        async with open_host() as dialer:
            await dialer.connect(listener.listen_addrs[0])
            stream = await dialer.open_stream(listener.peer_id, "/test/hold/1.0.0")
            await stream.write(b"hello")
            dialer_id = dialer.peer_id
        await asyncio.wait_for(ended.wait(), 30)
        await wait_until(lambda: gone == [dialer_id])
        assert dialer_id not in listener.connected_peers()
    assert SwarmConn._cleanup is libp2p_fixes._prompt_cleanup  # type: ignore[comparison-overlap]


async def test_small_reads_send_no_window_update_each_and_a_large_transfer_still_flows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """py-libp2p's yamux sent a WINDOW_UPDATE after every read below half the window
    (fix 10): a frame and a send per small message read. Updates must still come for
    large reads, or a transfer larger than the window would stall."""
    from libp2p.stream_muxer.yamux import yamux

    updates = 0

    def count_window_updates() -> None:
        original = yamux.Yamux._write_frame  # as the hosts' fixes left it

        async def counted(self: Any, data: bytes) -> None:
            nonlocal updates
            _, typ, flags, _, _ = struct.unpack(yamux.YAMUX_HEADER_FORMAT, data[:12])
            if typ == yamux.TYPE_WINDOW_UPDATE and flags == 0:
                updates += 1
            await original(self, data)

        monkeypatch.setattr(yamux.Yamux, "_write_frame", counted)

    small, large = 100, 2 * yamux.DEFAULT_WINDOW_SIZE

    async def sink(stream: P2PStream) -> None:
        for expected in (small * 8, large):
            received = 0
            while received < expected:
                received += len(await stream.read())
            await stream.write(b"ok")

    async with open_host() as listener, open_host() as dialer:
        listener.set_stream_handler("/test/sink/1.0.0", sink)
        count_window_updates()
        await dialer.connect(listener.listen_addrs[0])
        stream = await dialer.open_stream(listener.peer_id, "/test/sink/1.0.0")
        for index in range(small):
            await stream.write(b"%08d" % index)
        assert await asyncio.wait_for(stream.read(), 30) == b"ok"
        assert updates == 0  # 800 bytes read in 100 reads or so: far below half a window
        await stream.write(b"x" * large)
        assert await asyncio.wait_for(stream.read(), 60) == b"ok"
        assert updates > 0
        await stream.close()
    assert yamux.YamuxStream._auto_tune_and_send_window_update is libp2p_fixes._no_window_update_per_small_read


async def test_a_dialer_proposes_with_its_header_and_falls_back_to_its_next_protocol() -> None:
    """fix 11: the first proposal travels with the multistream header; a listener that
    refuses it still gets the dialer's next protocol, and one it serves opens as before."""
    from libp2p.custom_types import TProtocol
    from libp2p.protocol_muxer.multiselect_client import MultiselectClient

    async def echo(stream: P2PStream) -> None:
        await stream.write(await stream.read())

    async with open_host() as listener, open_host() as dialer:
        listener.set_stream_handler("/test/echo/1.0.0", echo)
        await dialer.connect(listener.listen_addrs[0])
        stream = await dialer.open_stream(listener.peer_id, "/test/echo/1.0.0")
        await stream.write(b"hello")
        assert await asyncio.wait_for(stream.read(), 30) == b"hello"
        with pytest.raises(ConnectionError):
            await dialer.open_stream(listener.peer_id, "/test/nobody/1.0.0")
        assert dialer._libp2p is not None
        host = dialer._libp2p

        async def open_either() -> str:
            protocols = [TProtocol("/test/nobody/1.0.0"), TProtocol("/test/echo/1.0.0")]
            net_stream = await host.new_stream(ID.from_base58(listener.peer_id), protocols)
            await net_stream.write(b"again")
            answer = await net_stream.read(5)
            await net_stream.close()
            return f"{net_stream.get_protocol()} {answer.decode()}"

        assert await dialer._call(open_either) == "/test/echo/1.0.0 again"
    assert MultiselectClient.select_one_of is libp2p_fixes._select_pipelined  # type: ignore[comparison-overlap]


async def test_a_listener_of_departures_hears_only_departures() -> None:
    """Opens are posted across the thread boundary only to listeners that want them (the
    gate and the node listen to departures only: a stranger flood costs them no crossing)."""
    both: list[tuple[str, bool]] = []
    departures: list[tuple[str, bool]] = []
    async with open_host() as listener:
        listener.add_connection_listener(lambda peer, up: both.append((peer, up)))
        remove = listener.add_connection_listener(lambda peer, up: departures.append((peer, up)), opens=False)
        async with open_host() as dialer:
            await dialer.connect(listener.listen_addrs[0])
            dialer_id = dialer.peer_id
            await wait_until(lambda: both == [(dialer_id, True)])
        await wait_until(lambda: both == [(dialer_id, True), (dialer_id, False)])
        assert departures == [(dialer_id, False)]
        remove()
        assert listener._open_listeners == 1
