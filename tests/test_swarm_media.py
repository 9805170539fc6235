"""Rooms across the swarm: an application enters through one node; its room spans peers' workers.

Three members on 127.0.0.1, each with real workers, real libp2p hosts, ROPE
between them; the application connects to node A over WebSocket with a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.remote.client import connect_websocket
from media.rtp_traffic import OPUS_RTP_PARAMETERS, RtpSource, sink_consumer
from media.vertical import Capacity
from rope import ClientState, token_auth
from rope.websocket import WebSocketListener
from swarm.media_node import MediaNode, media_peers
from swarm.membership import SwarmAuthority
from tests.test_swarm_node import full_views, swarm_of, wait_until

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}
TOKEN = "app-server-secret"


@contextlib.asynccontextmanager
async def media_swarm(count: int) -> AsyncIterator[list[MediaNode]]:
    """`count` members, each running one worker at most with room for two consumers."""
    async with swarm_of(SwarmAuthority.generate(), count) as nodes:
        media_nodes = [MediaNode(node, media, Capacity(max_workers=1, max_consumers_per_worker=2)) for node in nodes]
        for media_node in media_nodes:
            await media_node.start()
        try:
            await wait_until(lambda: full_views(nodes))
            await wait_until(lambda: all(len(media_peers(n.view)) == count - 1 for n in nodes))  # placement candidates
            yield media_nodes
        finally:
            for media_node in media_nodes:
                await media_node.close()


@contextlib.asynccontextmanager
async def app_through(entry: MediaNode) -> AsyncIterator[Any]:
    server = entry.entry_server(token_auth(TOKEN))
    listener = await WebSocketListener(server.rope, host="127.0.0.1", port=0).start()
    app = await connect_websocket(listener.url, token=TOKEN)
    try:
        yield app
    finally:
        await app.close()
        await listener.close()
        await server.close(close_workers=True)


async def test_a_room_entered_through_one_node_spans_peers_and_survives_one_dying() -> None:
    async with media_swarm(3) as nodes, app_through(nodes[0]) as app:
        worker = await app.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        pairs = [await sink_consumer(router, producer.id) for _ in range(4)]
        source = RtpSource("127.0.0.1", ingress.tuple["localPort"])
        source.start()
        try:
            for sink, _ in pairs:
                await sink.wait_for_packets(20)
            # The room needed more than one worker and got them on peers.
            hosting = [n for n in nodes if n.local.workers]
            assert len(hosting) >= 2
            # Every member learns by gossip which node the room was entered through.
            key = f"room:{router.id}"
            await wait_until(lambda: all(
                n.node.view is not None and n.node.view.locate(key) == nodes[0].node.peer_id for n in nodes[1:]
            ))
            room = nodes[0].rooms[router.id]

            # A peer hosting consumers (not the producer) dies: those consumers close with events, the rest
            # keep receiving.
            home_pid = room.home_router(producer.id).worker.pid

            def victims() -> list[MediaNode]:
                return [n for n in nodes[1:] if n.local.workers and home_pid not in {w.pid for w in n.local.workers}]

            while not victims():  # the producer went to a peer (placement follows load): fill the third node too
                pairs.append(await sink_consumer(router, producer.id))
                await pairs[-1][0].wait_for_packets(20)
            victim = victims()[0]
            doomed_pids = {w.pid for w in victim.local.workers}
            closed = asyncio.Event()
            lost = [c for _, c in pairs if _pid_of(room, c.id) in doomed_pids]
            assert lost
            for consumer in lost:
                consumer.on("transportclose", closed.set)
            # A crash, not a shutdown: the host vanishes and the worker processes are killed.
            await victim.node.close()
            for pid in doomed_pids:
                os.kill(pid, signal.SIGKILL)
            await asyncio.wait_for(closed.wait(), 30)
            survivors = [(s, c) for s, c in pairs if c not in lost]
            assert survivors and not any(c.closed for _, c in survivors)
            counts = [s.packets for s, _ in survivors]
            for (sink, _), before in zip(survivors, counts, strict=True):
                await sink.wait_for_packets(before + 10)
        finally:
            await source.close()
            for sink, _ in pairs:
                sink.close()


def _pid_of(room: Any, consumer_id: str) -> int | None:
    """The pid of the worker (local or a peer's) that holds a consumer of a vertical router."""
    for transport in room.transports.values():
        if consumer_id in transport.consumers:
            return transport.real_router.worker.pid  # type: ignore[no-any-return]
    return None



async def test_a_member_session_comes_back_when_its_connection_drops() -> None:
    """Two live members lose their libp2p connection (a reset, a NAT rebinding): the member session
    reconnects over a newly proved connection and resumes; the worker placed there lives on and
    takes calls again."""
    async with media_swarm(2) as (entry, peer):
        remote = await entry.mediasoup.remote(peer.node.peer_id)
        worker = await remote.create_worker()
        connection = remote.client.connection
        died: list[Any] = []
        worker.on("died", died.append)
        await entry.node.host.disconnect(peer.node.peer_id)
        await wait_until(lambda: connection.reconnections == 1 and remote.client.state is ClientState.CONNECTED)
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        assert not worker.closed and not died
        assert [r.id for w in peer.local.workers for r in w.routers] == [router.id]
