"""The vertical layer's own API, one API over several back-ends: a local `Vertical`, and the same through
Remote Mediasoup (``serve --vertical`` over WebSocket and libp2p, a plain proxy of it, ``proxy --vertical``,
``cluster --vertical``), each with real workers and real RTP.

What an application of `Vertical` reads and hears locally (its capacity, the real routers and workers a
vertical router uses, "newpipe"/"pipeclose"/"produceradd") it reads and hears remotely under the same
names; real routers and workers arrive as `RealRouter`/`RealWorker` (``id``, ``worker.pid``), as a local
real router answers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.horizontal import Horizontal
from media.rtp_traffic import OPUS_RTP_PARAMETERS, receive_everywhere, sink_consumer
from media.vertical import Capacity, Vertical
from swarm.loopback import loopback

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}
WAIT = 10.0
CAPACITY = Capacity(max_workers=3, max_consumers_per_worker=2, watermark_cpu=1.0)

VERTICAL_BACKENDS = ["local", "serve-ws", "serve-libp2p", "proxy", "vertical-proxy", "vertical-cluster"]
"""`local`: `Vertical(media)`; `serve-*`: a Remote Mediasoup server of it (``serve --vertical``); `proxy`:
a plain server re-exporting such a server; `vertical-proxy`: a Vertical over a remote server's workers
(``proxy --vertical``); `vertical-cluster`: a Vertical over a Horizontal over two servers (``cluster
--vertical``), served."""


@contextlib.asynccontextmanager
async def vertical_backend(kind: str, capacity: Capacity = CAPACITY) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:
        if kind == "local":
            yield Vertical(media, capacity)
            return
        if kind in ("serve-ws", "serve-libp2p", "proxy"):
            carrier = "libp2p" if kind == "serve-libp2p" else "websocket"
            _, remote = await stack.enter_async_context(loopback(Vertical(media, capacity), carrier))
            if kind == "proxy":
                _, remote = await stack.enter_async_context(loopback(remote))
        elif kind == "vertical-proxy":
            _, upstream = await stack.enter_async_context(loopback(media))
            _, remote = await stack.enter_async_context(loopback(Vertical(upstream, capacity)))
        else:
            _, a = await stack.enter_async_context(loopback(media, "websocket"))
            _, b = await stack.enter_async_context(loopback(media, "libp2p"))
            _, remote = await stack.enter_async_context(loopback(Vertical(Horizontal([a, b]), capacity)))
        yield remote


def _pids(reals: Any) -> set[int]:
    return {real.pid for real in reals}


@pytest.mark.parametrize("kind", VERTICAL_BACKENDS)
async def test_capacity_real_routers_and_pipe_events_read_the_same_on_every_back_end(kind: str) -> None:
    async with vertical_backend(kind) as mediasoup:
        assert mediasoup.capacity == CAPACITY
        worker = await mediasoup.create_worker()
        assert worker.capacity == CAPACITY
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        added: list[tuple[str, str]] = []
        pipes: list[tuple[str, str]] = []
        pipe_closed = asyncio.Event()
        router.observer.on("produceradd", lambda producer, real: added.append((producer.id, real.id)))
        router.observer.on("newpipe", lambda producer_id, real: pipes.append((producer_id, real.id)))
        router.observer.on("pipeclose", lambda producer_id: pipe_closed.set())

        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        home = router.home_router(producer.id)
        assert ingress.real_router.id == home.id and added == [(producer.id, home.id)]
        with pytest.raises(KeyError):
            router.home_router("no-such-producer")

        # Two consumers per worker: the third consumer is on a second worker, fed through one pipe.
        pairs = [await sink_consumer(router, producer.id) for _ in range(3)]
        await receive_everywhere(ingress.tuple["localPort"], [sink for sink, _ in pairs], 20)
        reals = router.real_routers
        assert len(reals) == 2 and home.id in {real.id for real in reals}
        assert _pids(worker.real_workers) == {real.worker.pid for real in reals}
        assert router.pipe_count == 1
        far = next(real for real in reals if real.id != home.id)
        assert pipes == [(producer.id, far.id)]

        # The far consumer goes: its pipe closes with "pipeclose".
        far_transport = next(t for t in router.transports.values() if t.real_router.id == far.id)
        assert far_transport.consumers
        for consumer in list(far_transport.consumers.values()):
            await consumer.close()
        await asyncio.wait_for(pipe_closed.wait(), WAIT)
        assert router.pipe_count == 0
        await worker.close()


@pytest.mark.parametrize("kind", VERTICAL_BACKENDS)
async def test_a_real_worker_that_dies_leaves_real_routers_with_realrouterclose(kind: str) -> None:
    """A real worker SIGKILLed under a vertical router: "realrouterclose" (its real router) is heard, on every
    back-end, and `real_routers` no longer lists it, while the producer's home keeps forwarding."""
    async with vertical_backend(kind) as mediasoup:
        worker = await mediasoup.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        gone: asyncio.Queue[str] = asyncio.Queue()
        router.observer.on("realrouterclose", lambda real: gone.put_nowait(real.id))
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        home = router.home_router(producer.id)
        pairs = [await sink_consumer(router, producer.id) for _ in range(3)]  # the third on a second worker
        far = next(real for real in router.real_routers if real.id != home.id)
        real_of = {c: t.real_router.id for t in router.transports.values() for c in t.consumers}
        near_sinks = [sink for sink, consumer in pairs if real_of[consumer.id] == home.id]
        for sink, consumer in pairs:
            if real_of[consumer.id] == far.id:
                sink.close()

        os.kill(far.worker.pid, signal.SIGKILL)
        assert await asyncio.wait_for(gone.get(), WAIT) == far.id
        assert [real.id for real in router.real_routers] == [home.id]
        await receive_everywhere(ingress.tuple["localPort"], near_sinks, 20)
        await worker.close()


@pytest.mark.parametrize("kind", VERTICAL_BACKENDS)
async def test_a_worker_can_ask_for_a_tighter_capacity_never_a_looser_one(kind: str) -> None:
    async with vertical_backend(kind) as mediasoup:
        looser = Capacity(max_workers=CAPACITY.max_workers + 1, max_consumers_per_worker=2, watermark_cpu=1.0)
        with pytest.raises(ValueError, match="tighter"):
            await mediasoup.create_worker(capacity=looser)
        with pytest.raises(TypeError, match="Capacity"):
            await mediasoup.create_worker(capacity={"max_workers": 1})
        one = Capacity(max_workers=1, max_consumers_per_worker=1, watermark_cpu=1.0)
        worker = await mediasoup.create_worker(capacity=one)
        assert worker.capacity == one and mediasoup.capacity == CAPACITY
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
        producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        pairs = [await sink_consumer(router, producer.id) for _ in range(2)]  # past one consumer: best effort
        assert len(worker.real_workers) == 1 and router.pipe_count == 0
        for sink, _ in pairs:
            sink.close()
        await worker.close()


async def test_plain_back_ends_answer_none_for_the_vertical_properties() -> None:
    async with loopback(media) as (_, remote):
        assert remote.capacity is None
        worker = await remote.create_worker()
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        transport = await router.create_plain_transport(listen_info=LOOPBACK)
        assert (worker.capacity, worker.real_workers) == (None, None)
        assert (router.real_routers, router.pipe_count, transport.real_router) == (None, None, None)
        with pytest.raises(TypeError):
            await remote.create_worker(capacity=CAPACITY)  # a plain server's workers have no capacity
        await worker.close()
