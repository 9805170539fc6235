"""Nothing is left forwarding media that no one controls: sessions own what they make.

Separate ``mafalda-swarm node --media`` processes, a real application over
WebSocket, real RTP. The grace period is short here (``GRACE_S``); the bounds
below are generous, for a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote.client import RemoteMediasoup, connect_websocket
from media.rtp_traffic import RtpSink, opus_producer, sink_consumer
from rope import ReconnectPolicy
from swarm.local_swarm import LocalSwarm, NodeProcess, alive, worker_pids

GRACE_S = 2.0
QUICK = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


@dataclass
class Room:
    router: Any
    producer: Any
    sinks: list[RtpSink] = field(default_factory=list)
    consumers: list[Any] = field(default_factory=list)


@contextlib.asynccontextmanager
async def room_with_consumers(app: RemoteMediasoup, consumers: int,
                              spread_over: Sequence[NodeProcess] = ()) -> AsyncIterator[Room]:
    """One opus producer fed 50 packets/s and ``consumers`` PlainTransport consumers, each to its own sink;
    more consumers, one every 0.5 s, until the room has a worker on each of ``spread_over`` (the entry
    places on a node once the node's media announcement has reached it by gossip)."""
    router = await (await app.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    async with opus_producer(router) as producer:
        room = Room(router, producer)
        try:
            async with asyncio.timeout(60):
                while len(room.consumers) < consumers or not all(worker_pids(node) for node in spread_over):
                    if len(room.consumers) >= consumers:
                        await asyncio.sleep(0.5)
                    sink, consumer = await sink_consumer(router, producer.id)
                    room.sinks.append(sink)
                    room.consumers.append(consumer)
            for sink in room.sinks:
                await sink.wait_for_packets(10)
            yield room
        finally:
            for sink in room.sinks:
                sink.close()


@contextlib.asynccontextmanager
async def entry_and_two_hosts(swarm: LocalSwarm) -> AsyncIterator[tuple[RemoteMediasoup, list[NodeProcess]]]:
    """Node a (an entry) and b, c (hosts only), one worker each with room for 2 consumers; an application
    through a that does not reconnect."""
    entry = await swarm.start_node("a", workers=1, consumers_per_worker=2)
    others = [await swarm.start_node(name, workers=1, consumers_per_worker=2, entry=False) for name in "bc"]
    assert entry.entry_url is not None
    app = await connect_websocket(entry.entry_url, token=swarm.token, reconnect=None)
    try:
        yield app, [entry, *others]
    finally:
        await app.close()


async def receiving(sinks: list[RtpSink], packets: int = 10) -> None:
    """Every sink gets ``packets`` more packets."""
    for sink, before in [(sink, sink.packets) for sink in sinks]:
        await sink.wait_for_packets(before + packets, within=20)


async def test_a_dropped_session_is_closed_after_the_grace_and_a_reconnect_keeps_it(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path, session_grace_s=GRACE_S) as swarm:
        node = await swarm.start_node("a", workers=2)
        assert node.entry_url is not None
        keeper = await connect_websocket(node.entry_url, token=swarm.token, reconnect=QUICK)
        leaver = await connect_websocket(node.entry_url, token=swarm.token, reconnect=None)
        try:
            async with room_with_consumers(keeper, 1) as kept, room_with_consumers(leaver, 1) as left:
                assert len(worker_pids(node)) == 2
                # The keeper's connection drops and comes back (ROPE resumes the session): nothing is lost,
                # even well past the grace.
                await keeper.client.connection.drop()
                await swarm.until(lambda: keeper.client.connection.reconnections == 1, "the keeper reconnected")
                # The leaver's connection drops for good: at once, nothing closes...
                closed = asyncio.Event()
                seen = keeper.get(left.router.proxy.id)  # the keeper sees the leaver's objects too
                assert seen is not None
                seen.observer.on("close", closed.set)
                await leaver.client.connection.drop()
                await receiving(left.sinks, 5)
                # ...then, past the grace, everything the leaver made is closed on the node.
                await asyncio.wait_for(closed.wait(), GRACE_S + 20)
                await swarm.until(lambda: len(worker_pids(node)) == 1, "the leaver's worker closed", within=20)
                frozen = left.sinks[0].packets
                await receiving(kept.sinks, 20)  # the keeper's room carries on, past 2 graces
                assert left.sinks[0].packets <= frozen + 2  # nothing forwards to the leaver's consumer
                assert not kept.consumers[0].closed
                assert (await kept.router.dump())["id"] == kept.router.id
        finally:
            await keeper.close()
            await leaver.close()


async def test_sigkill_of_the_entry_closes_everything_it_made_on_the_survivors(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path, session_grace_s=GRACE_S) as swarm, entry_and_two_hosts(swarm) as (app, nodes):
        entry, others = nodes[0], nodes[1:]
        async with room_with_consumers(app, 5, others) as room:
            lent = {node.name: worker_pids(node) for node in others}
            assert all(lent.values()), lent  # the room spans all three nodes
            own = worker_pids(entry)
            assert own
            swarm.kill("a")
            # The entry's sessions on b and c end with it: past the grace, b and c close what it made there,
            # and the entry's own workers exit with their pipes.
            await swarm.until(lambda: not any(alive(pids) for pids in lent.values()), "the lent workers closed",
                              within=GRACE_S + 30)
            await swarm.until(lambda: not alive(own), "the dead entry's own workers gone", within=30)
            view = swarm.view_of_observer()
            assert view is not None
            await swarm.until(lambda: all((load := view.load(n.peer_id)) is not None and not load.workers
                                          for n in others), "b and c reporting no workers", within=30)
            counts = [sink.packets for sink in room.sinks]
            await asyncio.sleep(1.0)  # nothing more arrives anywhere (a bound on silence, not on speed)
            assert [sink.packets for sink in room.sinks] == counts


async def test_a_frozen_host_closes_on_resume_what_the_others_gave_up(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path, session_grace_s=GRACE_S) as swarm, entry_and_two_hosts(swarm) as (app, nodes):
        others = nodes[1:]
        async with room_with_consumers(app, 5, others) as room:
            victim = others[0]
            doomed = worker_pids(victim)
            assert doomed
            lost = asyncio.Event()
            for consumer in room.consumers:
                consumer.on("transportclose", lost.set)
            frozen_at = asyncio.get_running_loop().time()
            swarm.freeze(victim.name)
            try:
                # The entry gives the frozen node up (its TTL): the consumers there close, with events.
                await asyncio.wait_for(lost.wait(), 30)
                await swarm.until(lambda: not swarm.in_view(victim), "the frozen node out of the view")
                await asyncio.sleep(max(0.0, frozen_at + 15 - asyncio.get_running_loop().time()))  # 15 s
            finally:
                swarm.resume(victim.name)
            # Back from the freeze, it finds the entry's session gone and closes what was made for it.
            await swarm.until(lambda: not alive(doomed), "the frozen node's orphaned worker closed",
                              within=GRACE_S + 30)
            view = swarm.view_of_observer()
            assert view is not None
            await swarm.until(lambda: swarm.in_view(victim) and (load := view.load(victim.peer_id)) is not None
                              and not load.workers, "the resumed node back in the view, reporting no worker")
            survivors = [s for s, c in zip(room.sinks, room.consumers, strict=True) if not c.closed]
            assert survivors and len(survivors) < len(room.sinks)
            await receiving(survivors)  # the room carries on for the consumers that did not live there
