"""One room, entered through different node processes: no entry is the room's master.

Real ``mafalda-swarm node --media --entry-port`` processes, two applications
over WebSocket, each through its own entry, real RTP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from media.remote.client import RemoteMediasoup, connect_websocket
from media.rtp_traffic import RtpSink, opus_producer, sink_consumer
from swarm.local_swarm import LocalSwarm, alive, worker_pids
from swarm.room import enter_room


def producer_ids(router: Any) -> set[str]:
    return {record["id"] for record in router.room_producers or ()}


async def eventually(predicate: Any, within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_two_applications_through_two_entries_exchange_media_in_one_room(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path) as swarm:
        a = await swarm.start_node("a", workers=1)
        b = await swarm.start_node("b", workers=1)
        assert a.entry_url and b.entry_url
        first: RemoteMediasoup = await connect_websocket(a.entry_url, token=swarm.token)
        second: RemoteMediasoup = await connect_websocket(b.entry_url, token=swarm.token)
        sinks: list[RtpSink] = []
        try:
            here = await enter_room(first, "lobby")
            there = await enter_room(second, "lobby")
            assert here.id == there.id  # the name gives the room's id, the same through every entry
            announced: list[dict[str, Any]] = []
            closed: list[str] = []
            there.on("newproducer", announced.append)
            there.on("producerclose", closed.append)
            async with opus_producer(here) as mine, opus_producer(there) as theirs:
                # Each application sees the other's producer, entered through another node...
                await eventually(lambda: producer_ids(here) == producer_ids(there) == {mine.id, theirs.id})
                assert any(record["id"] == mine.id and record["entry"] == a.peer_id for record in announced)
                # ...and consumes it: piped across the peers on demand.
                sink_here, from_there = await sink_consumer(here, theirs.id)
                sink_there, from_here = await sink_consumer(there, mine.id)
                sinks += [sink_here, sink_there]
                await sink_here.wait_for_packets(20, within=20)
                await sink_there.wait_for_packets(20, within=20)
                # A pause through one entry shows in the other entry's view of the room.
                await theirs.pause()
                async with asyncio.timeout(30):
                    while not any(r["id"] == theirs.id and r["paused"] for r in here.room_producers or ()):
                        await here.dump()  # a call refreshes the mirrored state
                        await asyncio.sleep(0.05)
                await theirs.resume()
                # The producer closes through its entry: the other entry's consumer and application are told.
                gone = asyncio.Event()
                from_here.on("producerclose", gone.set)
                await mine.close()
                await asyncio.wait_for(gone.wait(), 30)
                await eventually(lambda: mine.id in closed and producer_ids(there) == {theirs.id})
                assert not from_there.closed
                await sink_here.wait_for_packets(sink_here.packets + 10, within=20)
        finally:
            for sink in sinks:
                sink.close()
            await first.close()
            await second.close()


async def test_the_room_goes_on_when_the_entry_that_created_it_is_killed(tmp_path: Path) -> None:
    from tests.test_swarm_room_orphans import GRACE_S

    async with LocalSwarm(tmp_path, session_grace_s=GRACE_S) as swarm:
        creator = await swarm.start_node("a", workers=1, consumers_per_worker=2)
        entry = await swarm.start_node("b", workers=1, consumers_per_worker=4)
        host = await swarm.start_node("c", workers=1, consumers_per_worker=2, entry=False)
        assert creator.entry_url and entry.entry_url
        first = await connect_websocket(creator.entry_url, token=swarm.token, reconnect=None)
        second = await connect_websocket(entry.entry_url, token=swarm.token)
        sinks: list[RtpSink] = []
        try:
            here = await enter_room(first, "lobby")
            async with opus_producer(here) as doomed:
                async with asyncio.timeout(60):  # past a's one worker: the room borrows b's or c's (once a
                    while len(sinks) < 3 or not worker_pids(entry) | worker_pids(host):  # has heard they serve)
                        if len(sinks) >= 3:
                            await asyncio.sleep(0.5)
                        sinks.append((await sink_consumer(here, doomed.id))[0])
                lent = worker_pids(entry) | worker_pids(host)  # all a's so far
                assert lent
                there = await enter_room(second, "lobby")
                async with opus_producer(there) as kept:
                    await eventually(lambda: producer_ids(there) == {doomed.id, kept.id})
                    kept_sinks = []
                    for _ in range(2):
                        sink, _consumer = await sink_consumer(there, kept.id)
                        kept_sinks.append(sink)
                    doomed_sink, of_doomed = await sink_consumer(there, doomed.id)
                    sinks += [*kept_sinks, doomed_sink]
                    for sink in [*kept_sinks, doomed_sink]:
                        await sink.wait_for_packets(20, within=20)
                    told = asyncio.Event()
                    of_doomed.on("producerclose", told.set)
                    swarm.kill("a")
                    # The producer that entered through a is gone for b's application, with the usual events...
                    await asyncio.wait_for(told.wait(), 30)
                    await eventually(lambda: producer_ids(there) == {kept.id})
                    # ...the room carries on for everything else...
                    for sink in kept_sinks:
                        await sink.wait_for_packets(sink.packets + 20, within=20)
                    # ...and what a had made on the survivors is closed there within the grace bound.
                    await swarm.until(lambda: not alive(lent), "a's borrowed worker closed", within=GRACE_S + 30)
        finally:
            for sink in sinks:
                sink.close()
            await first.close()
            await second.close()
