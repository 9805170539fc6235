"""Remote Mediasoup: real ROPE servers over the real worker, real carriers on 127.0.0.1, real media.

The API itself runs through the shared suites (`tests/test_media_core.py`,
`tests/mediasoup/`) on the remote-ws and remote-libp2p back-ends; these tests
cover what only a remote setup has: media through remote routers, pipes
between servers, losing the server, several clients, leaks, bad input.
Every wait is bounded and waits for a condition.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import media
from media.aiortc_client import AiortcClient
from media.codecs import DEFAULT_MEDIA_CODECS
from media.errors import InvalidStateError
from media.remote import MediasoupServer, RemoteMediasoup
from media.rtp_traffic import OPUS_RTP_PARAMETERS, RtpSource, receive_everywhere, sink_consumer
from media.stats import get_stats
from media.vertical import Capacity, Vertical
from rope import InvalidParams, ReconnectPolicy, RopeConnection, UnknownMethod, UnknownObject
from rope.websocket import WebSocketListener, websocket_connector
from swarm.loopback import loopback

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}
WAIT = 10.0


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - state crosses a connection: no local event to wait on
            await asyncio.sleep(0.01)


async def _rtp_producer(router: Any) -> tuple[Any, Any]:
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    return ingress, producer


# -- media through remote routers ------------------------------------------------------------


async def test_aiortc_clients_exchange_media_through_a_remote_router() -> None:
    async with loopback(media, "websocket") as (_, remote):
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        sender, receiver = AiortcClient(router, name="sender"), AiortcClient(router, name="receiver")
        try:
            await sender.join()
            await receiver.join()
            producers = await sender.send(video=True, audio=False)
            received = await receiver.receive(producers[0].id)
            await received.wait_for_frames(10)
            assert (received.width, received.height) == (320, 240)
            transport = next(iter(router.transports.values()))
            assert transport.dtls_state == "connected"  # state changes reached the client
        finally:
            await sender.close()
            await receiver.close()


@pytest.mark.parametrize("carrier", ["websocket", "libp2p"])
async def test_pipe_to_router_across_two_servers_carries_rtp(carrier: Any) -> None:
    async with loopback(media, carrier) as (_, remote_a), loopback(media, carrier) as (_, remote_b):
        router_a = await (await remote_a.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        router_b = await (await remote_b.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress, producer = await _rtp_producer(router_a)
        result = await router_a.pipe_to_router(producer_id=producer.id, router=router_b)
        assert result.pipe_producer.id == producer.id and result.pipe_producer in router_b.producers.values()
        pipe_a = next(t for t in router_a.transports.values() if type(t).__name__ == "PipeTransport")
        pipe_b = next(t for t in router_b.transports.values() if type(t).__name__ == "PipeTransport")
        assert pipe_a.tuple["remotePort"] == pipe_b.tuple["localPort"]  # each connected to the other's tuple
        sink, consumer = await sink_consumer(router_b, producer.id)
        source = RtpSource("127.0.0.1", ingress.tuple["localPort"])
        source.start()
        try:
            await sink.wait_for_packets(25)
            await producer.pause()  # linked: the pipe producer on B follows
            await eventually(lambda: consumer.producer_paused)
            await producer.resume()
            await eventually(lambda: not consumer.producer_paused)
            closed = asyncio.Event()
            consumer.on("producerclose", closed.set)
            await producer.close()  # linked: the pipe producer on B closes, and its consumer
            await asyncio.wait_for(closed.wait(), WAIT)
        finally:
            await source.stop()
            sink.close()


async def test_pipe_between_a_local_router_and_a_remote_one() -> None:
    worker = await media.create_worker()
    try:
        local_router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        async with loopback(media, "websocket") as (_, remote):
            remote_router = await (await remote.create_worker()).create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            ingress, producer = await _rtp_producer(local_router)
            await local_router.pipe_to_router(producer_id=producer.id, router=remote_router)
            sink, _ = await sink_consumer(remote_router, producer.id)
            await receive_everywhere(ingress.tuple["localPort"], [sink], 25)
    finally:
        await worker.close()


async def test_vertical_router_spans_workers_of_a_remote_server() -> None:
    async with loopback(media, "libp2p") as (server, remote):
        capacity = Capacity(max_workers=2, max_consumers_per_worker=2, watermark_cpu=1.0)
        vertical_worker = await Vertical(remote, capacity).create_worker()
        router = await vertical_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        pairs = [await sink_consumer(router, producer.id) for _ in range(3)]
        await receive_everywhere(ingress.tuple["localPort"], [sink for sink, _ in pairs], 25)
        real_workers = {r.worker for r in router.real_routers}
        assert len(real_workers) == 2 and all(isinstance(w, media.remote.client.Worker) for w in real_workers)
        assert router.pipe_count == 1
        stats = await get_stats(remote)  # the server's figures, walked on the server
        assert stats["totals"]["workers"] == 2 and stats["totals"]["pipe_consumers"] == 1
        assert stats["totals"]["consumers"] == 3
        await vertical_worker.close()
        await eventually(lambda: server.mirror_count == 0)


# -- losing things -------------------------------------------------------------------------------


async def test_worker_dies_with_its_objects_when_the_server_goes_away() -> None:
    server = MediasoupServer(media)
    listener = await WebSocketListener(server.rope).start()
    connection = await RopeConnection(
        websocket_connector(listener.url), reconnect=ReconnectPolicy(initial_delay=0.01, max_attempts=2)
    ).open()
    remote = RemoteMediasoup(await connection.client())
    try:
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        transport = await router.create_plain_transport(listen_info=LOOPBACK)
        events: list[str] = []
        died = asyncio.Event()
        worker.on("died", lambda error: (events.append(f"died: {error}"), died.set()))
        router.on("workerclose", lambda: events.append("workerclose"))
        transport.on("routerclose", lambda: events.append("routerclose"))
        await listener.close()
        await server.close()  # the server and its workers are gone; reconnection gives up
        await asyncio.wait_for(died.wait(), WAIT)
        assert events[:2] == ["routerclose", "workerclose"] and events[2].startswith("died")
        assert worker.closed and worker.died and router.closed and transport.closed
        with pytest.raises(InvalidStateError):
            await router.create_webrtc_transport(listen_infos=[LOOPBACK])
    finally:
        await remote.close()
        await connection.close()


async def test_killing_the_remote_worker_process_emits_died_on_the_client() -> None:
    async with loopback(media, "libp2p") as (_, remote):
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        died = asyncio.Event()
        worker.on("died", lambda _error: died.set())
        closed = asyncio.Event()
        router.on("workerclose", closed.set)
        os.kill(worker.pid, signal.SIGKILL)  # the remote worker runs on this machine: its pid is real
        await asyncio.wait_for(asyncio.gather(died.wait(), closed.wait()), WAIT)
        assert worker.died and router.closed


async def test_several_clients_see_each_others_objects() -> None:
    async with loopback(media, "websocket") as (_server, first):
        second = RemoteMediasoup(await first.client.connection.client())
        new_workers: list[Any] = []
        second.observer.on("newworker", new_workers.append)
        worker = await first.create_worker()
        await eventually(lambda: bool(new_workers))
        seen_worker = new_workers[0]
        new_routers: list[Any] = []
        seen_worker.observer.on("newrouter", new_routers.append)
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        await eventually(lambda: bool(new_routers))
        assert new_routers[0].id == router.id and new_routers[0].rtp_capabilities == router.rtp_capabilities
        transport = await new_routers[0].create_plain_transport(listen_info=LOOPBACK)  # the other client's router
        await eventually(lambda: transport.id in router.transports)
        closed = asyncio.Event()
        transport.observer.on("close", closed.set)
        await router.close()  # closed by the first client: the second sees the cascade
        await asyncio.wait_for(closed.wait(), WAIT)
        assert new_routers[0].closed and transport.closed
        await second.close()


async def test_closed_objects_are_forgotten_on_the_server() -> None:
    async with loopback(media, "websocket") as (server, remote):
        worker = await remote.create_worker()
        baseline = server.mirror_count
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        _ingress, producer = await _rtp_producer(router)
        sink, _consumer = await sink_consumer(router, producer.id)
        sink.close()
        real_router = server.find_target(router.proxy.id)
        assert real_router is not None
        watched = weakref.ref(real_router)
        del real_router
        assert server.mirror_count == baseline + 5
        await router.close()
        assert server.mirror_count == baseline and len(server.rope.objects) == baseline + 1  # + the root
        gc.collect()
        assert watched() is None  # nothing on the server still holds the closed router


async def test_bad_input_from_the_network_gets_clear_errors_and_the_server_lives_on() -> None:
    async with loopback(media, "websocket") as (_, remote):
        worker = await remote.create_worker()
        client = remote.client
        with pytest.raises(UnknownObject):
            await client.call("no-such-object", "close")
        with pytest.raises(UnknownMethod):
            await client.call(worker.proxy.id, "kill_everything")
        with pytest.raises(TypeError, match="media_codecs"):
            await client.call(worker.proxy.id, "create_router", media_codecs="opus")
        with pytest.raises(TypeError):
            await client.call(worker.proxy.id, "create_router", colour="blue")
        with pytest.raises(InvalidParams):
            await client.call("mediasoup", "create_worker", "positional")
        with pytest.raises(TypeError, match="app_data"):
            await client.call("mediasoup", "create_worker", app_data={"$ref": "mediasoup"})
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        with pytest.raises(InvalidParams, match="not a media object"):  # where a router is expected
            await client.call(router.proxy.id, "pipe_to_router", producer_id="x", router={"$ref": "mediasoup"})
        assert not router.closed and (await router.dump())["id"] == router.id


async def test_a_proxy_reexports_a_remote_server() -> None:
    async with loopback(media, "websocket") as (_, upstream), loopback(upstream, "libp2p") as (proxy, remote):
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress, producer = await _rtp_producer(router)
        sink, _consumer = await sink_consumer(router, producer.id)
        await receive_everywhere(ingress.tuple["localPort"], [sink], 10)
        assert len(upstream.workers) == 1 and upstream.workers[0].pid == worker.pid
        await proxy.close()
        await eventually(lambda: not upstream.workers)  # the proxy's workers close upstream too


async def test_get_stats_is_the_same_over_local_and_remote_back_ends() -> None:
    worker = await media.create_worker()
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        _ingress, producer = await _rtp_producer(router)
        sink, _ = await sink_consumer(router, producer.id)
        sink.close()
        local = await get_stats(media)
        mine = next(w for w in local["workers"] if w["pid"] == worker.pid)
        assert (mine["routers"], mine["transports"], mine["producers"], mine["consumers"]) == (1, 2, 1, 1)
        assert local["system"]["cpu_count"] >= 1 and local["transports"]
    finally:
        await worker.close()
    async with loopback(media, "websocket") as (_, remote):
        remote_worker = await remote.create_worker()
        router = await remote_worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        _ingress, producer = await _rtp_producer(router)
        sink, _ = await sink_consumer(router, producer.id)
        sink.close()
        for stats in (await get_stats(remote), await get_stats([remote_worker])):
            [entry] = stats["workers"]
            assert (entry["routers"], entry["transports"], entry["producers"], entry["consumers"]) == (1, 2, 1, 1)
            assert {t["type"] for t in stats["transports"]} == {"plain-rtp-transport"}
