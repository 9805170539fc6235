"""A node against strangers (py-libp2p 0.8.1's defects, fixed in swarm/libp2p_fixes.py and
swarm/bridge.py): real hosts on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import multiaddr
import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

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

        async def stranger_connections(count: int) -> None:
            async with open_host() as stranger:
                for _ in range(count):
                    await stranger.connect(target)
                    await stranger.disconnect(node.peer_id)

        await asyncio.gather(*(stranger_connections(250) for _ in range(4)))
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
