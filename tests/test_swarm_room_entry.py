"""An entry node frozen (SIGSTOP) for 15 s, then resumed: the room converges and nothing is orphaned.

Separate ``mafalda-swarm node --media --entry-port`` processes, one application through each, real
RTP. What should happen, and what this checks:

- While A is frozen its workers are not (they run in sessions of their own), so media already
  flowing out of A's worker keeps flowing until the others give A up; nobody can control A's
  objects meanwhile. B cannot tell "frozen" from "dead": it drops A from its view, and from then on
  the room through B is as if A had died: B's application is told its consumer's producer closed
  (consumer and router "producerclose", ``room_producers`` without it) and everything of B's own
  carries on. B also gives up A's session past the grace: the pipe A had made on B's worker closes
  there.
- When A resumes it refutes, its application's session is back within the grace (ROPE reconnects
  and resumes it): it keeps every object it made. A reads that B closed its pipe: its application is
  told its consumer's producer closed, and, since that producer still lives, "newproducer" again.
  A's records come back to B ("newproducer"). Both applications re-consume; media flows both ways.
- The room converges (``room_producers`` equal through both entries) and nothing the freeze made
  obsolete survives: every pipe transport of before the freeze is closed where it lives (B's
  session on A is gone past the grace after the thaw, and closed there), and the new pipes are the
  only ones.

The pipe cut at the source is told as the producer closing (and then announced again); a pipe
closed from our end is not: losing the host of some consumers of a foreign producer leaves every
other consumer of it alone (the last test).

A partition between two live nodes is not tested: nothing in the swarm can cut the libp2p
connections of two running nodes (no deny-list in the membership gate), and a real cut needs root
(network namespaces or a firewall) that the suite does not have.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from media.remote.client import PipeTransport, RemoteMediasoup, connect_websocket
from media.rtp_traffic import RtpSink, opus_producer, sink_consumer
from rope import ReconnectPolicy
from swarm.local_swarm import LocalSwarm, NodeProcess, worker_pids
from swarm.media_node import member_session
from swarm.room import enter_room

GRACE_S = 2.0
FREEZE_S = 15.0
QUICK = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


def producer_ids(router: Any) -> set[str]:
    return {record["id"] for record in router.room_producers or ()}


async def until(predicate: Any, what: str, within: float = 60.0, refresh: Any = None) -> None:
    """Wait for ``predicate``; ``refresh`` (a coroutine function) is awaited between checks (a call
    brings an application's mirrored state up to date)."""
    try:
        async with asyncio.timeout(within):
            while not predicate():
                if refresh is not None:
                    await refresh()
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no {what} within {within:.0f} s") from None


@contextlib.asynccontextmanager
async def inspect(swarm: LocalSwarm, node: NodeProcess) -> AsyncIterator[RemoteMediasoup]:
    """What lives on ``node``'s workers, as a member sees it: the observer's own session with its member
    server (an operator's look; it makes nothing)."""
    assert swarm.observer is not None
    remote = await member_session(swarm.observer, node.peer_id, reconnect=None)
    try:
        yield remote
    finally:
        await remote.close()


def pipe_transports(remote: RemoteMediasoup) -> set[str]:
    return {transport.id for worker in remote.workers for router in worker.routers
            for transport in router.transports.values()
            if isinstance(transport, PipeTransport) and not transport.closed}


@contextlib.asynccontextmanager
async def one_application_through_each(
    swarm: LocalSwarm, a: NodeProcess, b: NodeProcess
) -> AsyncIterator[tuple[Any, Any, list[RtpSink]]]:
    """Two applications in room "lobby", one entering through ``a`` and one through ``b`` (their
    routers); the sinks added to the list yielded with them are closed with them."""
    assert a.entry_url and b.entry_url
    first = await connect_websocket(a.entry_url, token=swarm.token, reconnect=QUICK)
    second = await connect_websocket(b.entry_url, token=swarm.token, reconnect=QUICK)
    sinks: list[RtpSink] = []
    try:
        yield await enter_room(first, "lobby"), await enter_room(second, "lobby"), sinks
    finally:
        for sink in sinks:
            sink.close()
        await first.close()
        await second.close()


async def consume_when_back(router: Any, producer_id: str, sinks: list[RtpSink]) -> tuple[RtpSink, Any]:
    """Consume ``producer_id`` once the room lists it again (an application re-consuming after
    "newproducer"; its connection may have been down when that event fired, the room's state is not)."""
    async with asyncio.timeout(60):
        while True:
            await until(lambda: producer_id in producer_ids(router), f"producer {producer_id} in the room",
                        refresh=router.dump)
            try:
                sink, consumer = await sink_consumer(router, producer_id)
            except KeyError:  # listed a moment before the replica re-checked it: try again
                await asyncio.sleep(0.1)
                continue
            sinks.append(sink)
            return sink, consumer


async def test_an_entry_frozen_for_15_s_comes_back_and_the_room_converges(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path, session_grace_s=GRACE_S) as swarm:
        a = await swarm.start_node("a", workers=1)
        b = await swarm.start_node("b", workers=1)
        async with one_application_through_each(swarm, a, b) as (here, there, sinks):
            announced: list[str] = []
            closed: list[str] = []
            there.on("newproducer", lambda record: announced.append(record["id"]))
            there.on("producerclose", closed.append)
            async with opus_producer(here) as mine, opus_producer(there) as theirs:
                await until(lambda: producer_ids(here) == producer_ids(there) == {mine.id, theirs.id},
                            "room with both producers through both entries")
                sink_here, of_theirs = await sink_consumer(here, theirs.id)  # piped B -> A
                sink_there, of_mine = await sink_consumer(there, mine.id)  # piped A -> B
                sink_local, _own = await sink_consumer(there, theirs.id)  # B's own, on B
                sinks += [sink_here, sink_there, sink_local]
                for sink in sinks:
                    await sink.wait_for_packets(20, within=20)
                async with inspect(swarm, a) as on_a, inspect(swarm, b) as on_b:
                    before = pipe_transports(on_a) | pipe_transports(on_b)
                assert len(before) == 4  # one pair each way
                told = asyncio.Event()
                of_mine.on("producerclose", told.set)
                seen_here: list[tuple[str, str]] = []  # ROPE replays what fired while A's application was away
                here.on("newproducer", lambda record: seen_here.append(("newproducer", record["id"])))
                here.on("producerclose", lambda producer_id: seen_here.append(("producerclose", producer_id)))

                frozen_at = asyncio.get_running_loop().time()
                swarm.freeze("a")
                try:
                    # B gives A up: its application is told A's producer is gone...
                    await asyncio.wait_for(told.wait(), 30)
                    await until(lambda: mine.id in closed and producer_ids(there) == {theirs.id},
                                "A's producer gone from the room through B")
                    await swarm.until(lambda: not swarm.in_view(a), "the frozen entry out of the view")
                    # ...and B's own media carries on.
                    await sink_local.wait_for_packets(sink_local.packets + 20, within=20)
                    await asyncio.sleep(max(0.0, frozen_at + FREEZE_S - asyncio.get_running_loop().time()))
                finally:
                    swarm.resume("a")

                # A is back, its application kept what it made (its session resumed within the grace).
                await swarm.until(lambda: swarm.in_view(a), "the resumed entry back in the view")
                await until(lambda: of_theirs.closed, "A's consumer of B's producer told its pipe was cut",
                            refresh=here.dump)
                assert not mine.closed and not here.closed
                # A's application is told what its consumer was: B's producer closed for it, then, as it still
                # lives, announced again (so the application's view agrees with its consumers').
                await until(lambda: ("producerclose", theirs.id) in seen_here
                            and ("newproducer", theirs.id) in seen_here[seen_here.index(("producerclose", theirs.id)):],
                            "B's producer closed, then announced again, through A")
                # Both applications re-consume; media flows both ways again.
                again_here, _ = await consume_when_back(here, theirs.id, sinks)
                await until(lambda: mine.id in announced[1:], "A's producer announced again through B")
                again_there, _ = await consume_when_back(there, mine.id, sinks)
                for sink in (again_here, again_there):
                    await sink.wait_for_packets(20, within=20)
                # The room converges...
                await until(lambda: producer_ids(here) == producer_ids(there) == {mine.id, theirs.id},
                            "the room converged through both entries", refresh=here.dump)
                # ...and nothing of before the freeze is left where it lived: the old pipes are closed on
                # both nodes (B's session on A past the grace), the new ones are all there is.
                async with inspect(swarm, a) as on_a, inspect(swarm, b) as on_b:
                    await swarm.until(lambda: not (pipe_transports(on_a) | pipe_transports(on_b)) & before,
                                      "the pipes of before the freeze closed where they live",
                                      within=GRACE_S + 30)
                    assert len(pipe_transports(on_a)) == len(pipe_transports(on_b)) == 2
                stale = sink_there.packets, sink_here.packets
                await again_there.wait_for_packets(again_there.packets + 20, within=20)
                assert (sink_there.packets, sink_here.packets) == stale  # no old consumer is fed


def record_closing(consumer: Any) -> list[str]:
    seen: list[str] = []
    for event in ("transportclose", "producerclose"):
        consumer.on(event, lambda *_args, name=event: seen.append(name))
    return seen


async def test_losing_a_host_of_some_consumers_of_a_foreign_producer_leaves_the_others_alone(tmp_path: Path) -> None:
    async with LocalSwarm(tmp_path, session_grace_s=GRACE_S) as swarm:
        a = await swarm.start_node("a", workers=1)
        b = await swarm.start_node("b", workers=1, consumers_per_worker=2)
        c = await swarm.start_node("c", workers=1, consumers_per_worker=2, entry=False)
        async with one_application_through_each(swarm, a, b) as (here, there, sinks):
            closed: list[str] = []
            there.on("producerclose", closed.append)
            async with opus_producer(here) as mine:
                await until(lambda: producer_ids(there) == {mine.id}, "A's producer in the room through B")
                consumers: list[Any] = []
                async with asyncio.timeout(60):  # past b's worker (2 consumers): B's replica borrows c's
                    while len(consumers) < 3 or not worker_pids(c):
                        if len(consumers) >= 3:
                            await asyncio.sleep(0.5)
                        sink, consumer = await sink_consumer(there, mine.id)
                        sinks.append(sink)
                        consumers.append(consumer)
                for sink in sinks:
                    await sink.wait_for_packets(10, within=20)
                events = {id(consumer): record_closing(consumer) for consumer in consumers}
                swarm.kill("c")
                # Those on c close with their transport; the others, on b, do not notice.
                await until(lambda: any(events.values()), "the consumers on the lost host closed")
                kept = [(sink, consumer) for sink, consumer in zip(sinks, consumers, strict=True)
                        if not events[id(consumer)]]
                assert kept
                for sink, _consumer in kept:
                    await sink.wait_for_packets(sink.packets + 20, within=20)
                await there.dump()
                assert [seen for seen in events.values() if seen] == [["transportclose"]] * (len(consumers) - len(kept))
                assert mine.id not in closed and producer_ids(there) == {mine.id}
