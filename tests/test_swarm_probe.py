"""SWIM probes between real nodes on loopback: the probe channel and the buddy system."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from libp2p.crypto.ed25519 import create_new_key_pair

from swarm.bootstrap import parse_bootstrap
from swarm.membership import CertificateVerifier, SwarmAuthority, peer_id_of
from swarm.node import NodeOptions, SwarmNode


async def wait_until(predicate: Callable[[], object], within: float = 20.0) -> None:
    """Poll state fed by another thread and another node; bounded, not a speed test."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def pair() -> AsyncIterator[tuple[SwarmNode, SwarmNode]]:
    authority = SwarmAuthority.generate()
    verifier = CertificateVerifier(authority.public_key)
    async with contextlib.AsyncExitStack() as stack:
        nodes: list[SwarmNode] = []
        for index in range(2):
            key_pair = create_new_key_pair()
            bootstrap = parse_bootstrap(nodes[0].listen_addrs[0]) if index else []
            options = NodeOptions(load_interval_s=0.5, min_publish_gap_s=0.05, bootstrap=bootstrap)
            nodes.append(
                await stack.enter_async_context(
                    SwarmNode(key_pair, authority.issue(peer_id_of(key_pair)), verifier, options)
                )
            )
        a, b = nodes
        await wait_until(lambda: b.peer_id in (a.view or ()) and a.peer_id in (b.view or ()))
        yield a, b


async def answered(probe: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Probe until one is answered, bounded: on a starved machine a probe may time out (SWIM then
    suspects, and the member refutes), which is the protocol at work, not a broken channel."""
    async with asyncio.timeout(within):
        while not await probe():
            pass


async def test_probes_go_on_over_a_new_connection() -> None:
    """Probes share one long-lived stream per member; when the connection goes, the next
    probe after the member is back opens a new one."""
    async with pair() as (a, b):
        prober = a._prober
        assert prober is not None
        for _ in range(10):
            await answered(lambda: prober.probe(b.peer_id))
        await a.host.disconnect(b.peer_id)
        await wait_until(lambda: not a.is_member(b.peer_id))
        await a.join(b.listen_addrs[0])
        for _ in range(3):
            await answered(lambda: prober.probe(b.peer_id))
        assert a.view is not None and a.view.state_of(b.peer_id) == ("alive", b.incarnation)


async def test_a_suspect_refutes_through_the_next_ping() -> None:
    """Lifeguard's buddy system: a ping from a node that holds its target suspect says so,
    and the target refutes in its ack, with no gossip needed."""
    async with pair() as (a, b):
        assert a.view is not None
        events: list[str] = []
        a.view.add_listener(lambda event: events.append(event.kind))
        before = b.incarnation
        assert a.view.suspect(b.peer_id) is not None  # held here only: nobody gossips it
        await wait_until(lambda: a.view is not None and a.view.state_of(b.peer_id) == ("alive", b.incarnation))
        assert b.incarnation > before
        assert "removed" not in events  # refuted before the suspicion ran out
