"""Mediasoup-horizontal: workers placed over several real Remote Mediasoup servers (real workers, real
WebSocket carriers on 127.0.0.1), and the vertical-cluster (a Vertical over a Horizontal) carrying real RTP
from a producer on one server to consumers on the other.

The mediasoup API itself runs through the shared router suites on the `horizontal` and `vertical-cluster`
back-ends (`tests/conftest.py`); these tests cover what only several servers have: placement, adding and
removing back-ends while running, and losing one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.errors import InvalidStateError
from media.horizontal import Candidate, Horizontal, LeastWorkers, LowestCpu
from media.rtp_traffic import OPUS_RTP_PARAMETERS, receive_everywhere, sink_consumer
from media.stats import get_stats
from media.vertical import Capacity, CapacityError, Vertical
from swarm.loopback import loopback

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}
WAIT = 10.0


@contextlib.asynccontextmanager
async def servers(count: int) -> AsyncIterator[list[tuple[Any, Any]]]:
    """``count`` Remote Mediasoup servers over the local workers, each with a connected client."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(loopback(media, "websocket")) for _ in range(count)]


def _server_of(worker: Any, clients: list[Any]) -> int:
    return next(index for index, client in enumerate(clients) if worker in client.workers)


async def test_least_workers_spreads_workers_and_refills_the_emptier_server() -> None:
    async with servers(2) as pairs:
        clients = [client for _, client in pairs]
        horizontal = Horizontal(clients)
        new: list[Any] = []
        horizontal.observer.on("newworker", new.append)
        workers = [await horizontal.create_worker() for _ in range(4)]
        assert [_server_of(w, clients) for w in workers] == [0, 1, 0, 1]
        assert new == workers and set(horizontal.workers) == set(workers)
        stats = await get_stats(horizontal, transport_bitrates=False)  # one view over both servers' workers
        assert stats["totals"]["workers"] == 4 and {w["pid"] for w in stats["workers"]} == {w.pid for w in workers}
        await workers[1].close()  # server 1 now runs one worker, server 0 two
        assert horizontal.workers_of(clients[1]) == [workers[3]]
        assert _server_of(await horizontal.create_worker(), clients) == 1
        await horizontal.close()
        assert horizontal.workers == [] and all(client.workers == [] for client in clients)


async def test_backends_can_be_added_and_removed_while_running() -> None:
    async with servers(3) as pairs:
        a, b, c = (client for _, client in pairs)
        horizontal = Horizontal([a])
        first = await horizontal.create_worker()
        horizontal.add(b)
        assert first in a.workers and (await horizontal.create_worker()) in b.workers
        with pytest.raises(ValueError, match="already"):
            horizontal.add(b)
        await horizontal.remove(a)  # drained: no new workers, the old one keeps running
        horizontal.add(c)
        placed = [await horizontal.create_worker() for _ in range(2)]
        assert all(w not in a.workers for w in placed) and not first.closed
        closed = asyncio.Event()
        placed_on_b = [w for w in horizontal.workers_of(b)]
        placed_on_b[0].observer.on("close", closed.set)
        await horizontal.remove(b, close_workers=True)
        await asyncio.wait_for(closed.wait(), WAIT)
        assert all(w.closed for w in placed_on_b) and horizontal.backends == (c,)
        await first.close()
        await horizontal.close()


async def test_a_lost_server_kills_only_its_workers_and_placement_moves_on() -> None:
    async with loopback(media, "websocket") as (_, survivor):
        server, doomed = await _server_and_client()
        try:
            horizontal = Horizontal([doomed, survivor])
            on_doomed = await horizontal.create_worker()
            on_survivor = await horizontal.create_worker()
            router = await on_doomed.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            events: list[str] = []
            died = asyncio.Event()
            router.on("workerclose", lambda: events.append("workerclose"))
            on_doomed.on("died", lambda _error: (events.append("died"), died.set()))
            await server.close()  # the server and its workers are gone for good
            await asyncio.wait_for(died.wait(), WAIT)
            assert events == ["workerclose", "died"] and router.closed
            assert horizontal.workers == [on_survivor] and not on_survivor.closed
            again = await horizontal.create_worker()  # the dead client refuses: the survivor takes it
            assert again in survivor.workers
            await horizontal.close()
        finally:
            await doomed.close()


async def _server_and_client() -> tuple[Any, Any]:
    """A server whose loss is final (no reconnection), and its client."""
    from media.remote import MediasoupServer, RemoteMediasoup
    from rope import ReconnectPolicy, RopeConnection
    from rope.websocket import WebSocketListener, websocket_connector

    server = MediasoupServer(media)
    listener = await WebSocketListener(server.rope).start()
    connection = await RopeConnection(
        websocket_connector(listener.url), reconnect=ReconnectPolicy(initial_delay=0.01, max_attempts=1)
    ).open()
    client = RemoteMediasoup(await connection.client(), owns_connection=True)

    class Stop:
        async def close(self) -> None:
            await listener.close()
            await server.close()

    return Stop(), client


async def test_workers_started_at_once_spread_too() -> None:
    async with servers(2) as pairs:
        clients = [client for _, client in pairs]
        horizontal = Horizontal(clients)
        workers = await asyncio.gather(*(horizontal.create_worker() for _ in range(4)))  # none placed yet
        assert sorted(_server_of(w, clients) for w in workers) == [0, 0, 1, 1]
        await horizontal.close()


async def test_a_full_server_refuses_placement_moves_on_and_all_full_is_a_capacity_error() -> None:
    from swarm.media_node import LocalWorkers  # a back-end with a hard cap, served as any other

    caps = [LocalWorkers(media, Capacity(max_workers=1)), LocalWorkers(media, Capacity(max_workers=2))]
    async with loopback(caps[0]) as (_, small), loopback(caps[1], "libp2p") as (_, large):
        horizontal = Horizontal([small, large])
        await horizontal.create_worker()
        await horizontal.create_worker()
        # LeastWorkers ranks the small server first (one each, listed first); it is full and says so
        # over the wire: the large one takes the worker.
        assert (await horizontal.create_worker()) in large.workers
        with pytest.raises(CapacityError, match="every back-end is full"):
            await horizontal.create_worker()
        assert [len(c.workers) for c in caps] == [1, 2]  # the node lives on, nothing started past a cap
        await horizontal.close()


async def test_no_backend_is_a_clear_error() -> None:
    with pytest.raises(InvalidStateError, match="no back-end"):
        await Horizontal().create_worker()
    with pytest.raises(TypeError, match="create_worker"):
        Horizontal([object()])


def test_policies_rank_as_documented() -> None:
    a, b, c = (Candidate(backend=name, index=i, workers=w, cpu_percent=cpu)
               for i, (name, w, cpu) in enumerate([("a", 2, 10.0), ("b", 1, 80.0), ("c", 1, None)]))
    assert [x.backend for x in LeastWorkers().choose([a, b, c])] == ["b", "c", "a"]
    assert [x.backend for x in LowestCpu().choose([a, b, c])] == ["a", "b", "c"]


async def test_lowest_cpu_reads_each_servers_reported_cpu() -> None:
    async with servers(2) as pairs:
        clients = [client for _, client in pairs]
        horizontal = Horizontal(clients, LowestCpu())
        candidates = await horizontal._candidates()
        assert all(isinstance(c.cpu_percent, float) for c in candidates)  # each server answered get_stats
        worker = await horizontal.create_worker()
        assert worker in clients[0].workers or worker in clients[1].workers
        await horizontal.close()


async def test_vertical_cluster_pipes_rtp_from_one_server_to_consumers_on_the_other() -> None:
    async with servers(2) as pairs:
        clients = [client for _, client in pairs]
        # One consumer per worker and one worker per server: the second consumer must go to the other server.
        vertical = Vertical(Horizontal(clients), Capacity(max_workers=2, max_consumers_per_worker=1, watermark_cpu=1.0))
        vertical_worker = await vertical.create_worker()
        router = await vertical_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        sinks = [(await sink_consumer(router, producer.id))[0] for _ in range(2)]
        servers_used = {_server_of(real.worker, clients) for real in router.real_routers}
        assert servers_used == {0, 1} and router.pipe_count == 1  # the producer piped across servers once
        await receive_everywhere(ingress.tuple["localPort"], sinks, 25)
        await vertical_worker.close()
