"""Swarm nodes on loopback: joining, views, refusal of strangers, lying gossip."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair

from swarm.bootstrap import parse_bootstrap
from swarm.bridge import GossipConfig, open_host
from swarm.gate import MEMBERSHIP_PROTOCOL, MembershipError, MembershipGate
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.node import STATE_TOPIC, NodeOptions, SwarmNode
from swarm.records import LoadRecord, LoadReport, WorkerLoad, encode_envelope, heartbeat_s, significant_change

FAST = NodeOptions(load_interval_s=0.5, min_publish_gap_s=0.05, placements_refresh_s=2.0, handshake_timeout_s=3.0)


async def wait_until(predicate: Callable[[], object], within: float = 20.0) -> None:
    """Poll a condition fed by gossip on another thread; bounded, not a speed test."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def swarm_of(authority: SwarmAuthority, count: int, **overrides: object) -> AsyncIterator[list[SwarmNode]]:
    verifier = CertificateVerifier(authority.public_key)
    async with contextlib.AsyncExitStack() as stack:
        nodes: list[SwarmNode] = []
        for index in range(count):
            key_pair = create_new_key_pair()
            certificate = authority.issue(peer_id_of(key_pair))
            bootstrap = parse_bootstrap(nodes[0].listen_addrs[0]) if index else []
            options = NodeOptions(**{**FAST.__dict__, "bootstrap": bootstrap, **overrides})  # type: ignore[arg-type]
            node = await stack.enter_async_context(SwarmNode(key_pair, certificate, verifier, options))
            nodes.append(node)
        yield nodes


@pytest.fixture
def authority() -> SwarmAuthority:
    return SwarmAuthority.generate()


def full_views(nodes: list[SwarmNode]) -> bool:
    for node in nodes:
        assert node.view is not None
        if {p for p in node.view.peers()} != {n.peer_id for n in nodes if n is not node}:
            return False
    return True


async def test_join_converge_and_placements(authority: SwarmAuthority) -> None:
    async with swarm_of(authority, 3) as nodes:
        await wait_until(lambda: full_views(nodes))
        # node 2 only knew node 0; it is a member of node 0 (bootstrap) both ways
        assert nodes[0].is_member(nodes[2].peer_id) and nodes[2].is_member(nodes[0].peer_id)

        workers = (WorkerLoad("w1", consumers=42, capacity=500),)
        nodes[1].set_load_provider(lambda: LoadReport(workers=workers, bandwidth_out_bps=1e6))

        def sees_load() -> bool:
            for node in (nodes[0], nodes[2]):
                assert node.view is not None
                load = node.view.load(nodes[1].peer_id)
                if load is None or load.consumers != 42:
                    return False
            return True

        await wait_until(sees_load)
        nodes[2].set_placement("router:abc", "router", {"worker": "w1"})
        await wait_until(
            lambda: all(n.view is not None and n.view.locate("router:abc") == nodes[2].peer_id for n in nodes[:2])
        )
        nodes[2].remove_placement("router:abc")
        await wait_until(lambda: all(n.view is not None and n.view.locate("router:abc") is None for n in nodes[:2]))


async def test_late_joiner_learns_every_load_and_placement_without_waiting_for_the_heartbeat(
    authority: SwarmAuthority,
) -> None:
    """The heartbeat grows with N; a newcomer is announced to instead (it would wait minutes here)."""
    slow = {"load_interval_s": 120.0, "placements_refresh_s": 120.0}
    verifier = CertificateVerifier(authority.public_key)
    async with swarm_of(authority, 3, **slow) as nodes:
        await wait_until(lambda: full_views(nodes))
        nodes[1].set_load_provider(lambda: LoadReport(workers=(WorkerLoad("w1", consumers=42, capacity=500),)))
        nodes[2].set_placement("room:late", "router")
        key_pair = create_new_key_pair()
        options = NodeOptions(**{**FAST.__dict__, **slow, "bootstrap": parse_bootstrap(nodes[0].listen_addrs[0])})
        async with SwarmNode(key_pair, authority.issue(peer_id_of(key_pair)), verifier, options) as late:

            def learned() -> bool:
                view = late.view
                assert view is not None
                loads = [view.load(n.peer_id) for n in nodes]
                return (
                    all(load is not None for load in loads)
                    and view.load(nodes[1].peer_id).consumers == 42  # type: ignore[union-attr]
                    and view.locate("room:late") == nodes[2].peer_id
                )

            await wait_until(learned)


def test_heartbeat_grows_with_the_swarm_so_traffic_per_node_stays_flat() -> None:
    assert heartbeat_s(5.0, 2) == heartbeat_s(5.0, 5) == 5.0
    assert heartbeat_s(5.0, 20) == 20.0
    assert 20 / heartbeat_s(5.0, 20) == 5 / heartbeat_s(5.0, 5)  # messages per second in the swarm


def test_only_a_change_someone_would_notice_is_published_before_the_heartbeat() -> None:
    base = LoadRecord(
        "p", 1, cpu_percent=20.0, cpu_count=2, workers=(WorkerLoad("w", 3, 100, 5.0),), bandwidth_in_bps=1e6,
        bandwidth_out_bps=1e6, addrs=("/ip4/127.0.0.1/tcp/1",), ttl_s=30.0, memory_bytes=100_000_000,
        links=("a", "b"),
    )
    assert significant_change(None, base)
    noise = base.__class__(**{**base.__dict__, "version": 2, "cpu_percent": 25.0, "bandwidth_in_bps": 1.1e6})
    assert not significant_change(base, noise)
    for change in (
        {"workers": (WorkerLoad("w", 4, 100, 5.0),)},
        {"workers": (WorkerLoad("w", 3, 100, 40.0),)},
        {"cpu_percent": 50.0},
        {"links": ("a",)},
        {"addrs": ()},
        {"placements_version": 7},
        {"bandwidth_out_bps": 3e6},
        {"memory_bytes": 200_000_000},
    ):
        assert significant_change(base, base.__class__(**{**base.__dict__, **change})), change


async def test_bootstrap_peer_that_starts_late_is_reached_by_backoff(authority: SwarmAuthority) -> None:
    verifier = CertificateVerifier(authority.public_key)
    late_key = create_new_key_pair()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    late_addr = f"/ip4/127.0.0.1/tcp/{port}"
    bootstrap = parse_bootstrap(f"{late_addr}/p2p/{peer_id_of(late_key)}\n")
    early_key = create_new_key_pair()
    early_options = NodeOptions(**{**FAST.__dict__, "bootstrap": bootstrap})  # type: ignore[arg-type]
    async with SwarmNode(early_key, authority.issue(peer_id_of(early_key)), verifier, early_options) as early:
        await asyncio.sleep(1.5)  # a few failed dials: nothing listens yet
        late_options = NodeOptions(**{**FAST.__dict__, "listen": late_addr})  # type: ignore[arg-type]
        async with SwarmNode(late_key, authority.issue(peer_id_of(late_key)), verifier, late_options) as late:
            await wait_until(lambda: early.is_member(late.peer_id) and late.is_member(early.peer_id))
            await wait_until(lambda: full_views([early, late]))
    assert not [t for t in threading.enumerate() if t.name == "libp2p-trio"]


async def test_closed_peer_leaves_views(authority: SwarmAuthority) -> None:
    async with swarm_of(authority, 3) as nodes:
        await wait_until(lambda: full_views(nodes))
        gone = nodes[2].peer_id
        await nodes[2].close()
        await wait_until(lambda: all(n.view is not None and gone not in n.view for n in nodes[:2]))


async def test_stranger_is_refused_and_cannot_publish(authority: SwarmAuthority) -> None:
    async with swarm_of(authority, 2) as nodes:
        await wait_until(lambda: full_views(nodes))
        target = nodes[0]
        # 1. a host of another swarm (valid-looking certificate, wrong authority)
        other = SwarmAuthority.generate()
        key_pair = create_new_key_pair()
        cert = other.issue(peer_id_of(key_pair))
        config = GossipConfig(heartbeat_interval=0.5)
        async with open_host(key_pair=key_pair, gossip=config, members_only=True) as stranger:
            gate = MembershipGate(stranger, cert, CertificateVerifier(other.public_key), handshake_timeout_s=3)
            with pytest.raises(MembershipError, match="refused"):
                await gate.join(target.listen_addrs[0])
            await gate.close()
            assert not target.is_member(stranger.peer_id)

            def apart() -> bool:  # both ends: the stranger's next connect must dial anew, not reuse a dying one
                return (stranger.peer_id not in target.host.connected_peers()
                        and target.peer_id not in stranger.connected_peers())

            await wait_until(apart)

            # 2. a host that connects and says nothing is dropped after the handshake timeout,
            #    and gossip it pushes meanwhile never reaches the view
            sub = await stranger.gossip_subscribe(STATE_TOPIC)
            del sub
            await stranger.connect(target.listen_addrs[0])
            await stranger.admit_peer(target.peer_id)  # the stranger is willing; the node is not
            forged = LoadRecord(stranger.peer_id, 1, 0.0, 1, (), 0, 0, (), 60.0)
            for _ in range(3):
                with contextlib.suppress(ConnectionError):
                    await stranger.gossip_publish(STATE_TOPIC, encode_envelope(cert.to_text(), forged))
                await asyncio.sleep(0.2)
            await wait_until(apart, within=10)
            assert target.view is not None and stranger.peer_id not in target.view
            assert not target.is_member(stranger.peer_id)

            # 3. its streams on the membership protocol get only a refusal
            await stranger.connect(target.listen_addrs[0])
            stream = await stranger.open_stream(target.peer_id, MEMBERSHIP_PROTOCOL)
            await stream.write(b"\x00\x00\x00\x02{}")
            answer = await stream.read()
            assert b'"ok":false' in answer and b"cert" not in answer

            # 4. identify (addresses, protocols) and ping are closed to it too
            await stranger.connect(target.listen_addrs[0])
            for protocol in ("/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"):
                with contextlib.suppress(ConnectionError):
                    stream = await stranger.open_stream(target.peer_id, protocol)
                    with contextlib.suppress(ConnectionError):
                        await stream.write(b"\x00" * 32)
                    assert await asyncio.wait_for(stream.read(), 10) == b""


async def test_lying_member_is_rejected(authority: SwarmAuthority) -> None:
    """A real member (valid certificate, no validator of its own) publishing records
    in another peer's name and garbage: every message is rejected, the node carries on."""
    async with swarm_of(authority, 2) as nodes:
        await wait_until(lambda: full_views(nodes))
        victim = nodes[0]
        key_pair = create_new_key_pair()
        cert = authority.issue(peer_id_of(key_pair))
        async with open_host(key_pair=key_pair, gossip=GossipConfig(heartbeat_interval=0.5), members_only=True) as liar:
            gate = MembershipGate(liar, cert, CertificateVerifier(authority.public_key), handshake_timeout_s=3)
            await gate.join(victim.listen_addrs[0])
            assert victim.is_member(liar.peer_id)
            await liar.gossip_subscribe(STATE_TOPIC)
            await wait_until(lambda: victim.peer_id in liar.gossip_mesh_peers(STATE_TOPIC))
            fake = LoadRecord(nodes[1].peer_id, 2**62, 0.0, 1, (), 0, 0, (), 60.0)
            garbage = [encode_envelope(cert.to_text(), fake), b"not json", b'{"v":1,"kind":"load"}']
            before = victim.rejected_messages
            async with asyncio.timeout(20):
                while victim.rejected_messages < before + len(garbage):
                    for data in garbage:
                        await liar.gossip_publish(STATE_TOPIC, data)
                    await asyncio.sleep(0.3)
            assert victim.view is not None
            load = victim.view.load(nodes[1].peer_id)
            assert load is None or load.version < 2**62
            assert victim.is_member(liar.peer_id)  # messages rejected, connection and node fine
            await gate.close()
