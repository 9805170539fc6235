"""Mediasoup-vertical: one router over several real workers, with on-demand pipes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.rtp_traffic import OPUS_RTP_PARAMETERS, receive_everywhere, sink_consumer
from media.vertical import Capacity, Vertical, VerticalRouter

LOOPBACK = {"protocol": "udp", "ip": "127.0.0.1"}


@pytest.fixture
async def vertical_router() -> AsyncIterator[VerticalRouter]:
    capacity = Capacity(max_workers=3, max_consumers_per_worker=2, watermark_cpu=1.0)
    worker = await Vertical(media, capacity).create_worker()
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    yield router
    await worker.close()


async def test_consumers_beyond_one_workers_threshold_spread_and_all_receive_rtp(
    vertical_router: VerticalRouter,
) -> None:
    router = vertical_router
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    pairs = [await sink_consumer(router, producer.id) for _ in range(5)]
    await receive_everywhere(ingress.tuple["localPort"], [sink for sink, _ in pairs], 25)
    # 2 consumers per worker: 5 consumers fill 3 workers; the producer is piped
    # once into each worker that is not its own, not once per consumer.
    assert len({r.worker for r in router.real_routers}) == 3
    assert router.pipe_count == 2


async def test_pipe_is_removed_when_its_last_consumer_closes(vertical_router: VerticalRouter) -> None:
    router = vertical_router
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    pairs = [await sink_consumer(router, producer.id) for _ in range(3)]
    assert router.pipe_count == 1
    pipe_closed = asyncio.Event()
    router.observer.on("pipeclose", lambda _producer_id: pipe_closed.set())
    await pairs[2][1].close()  # type: ignore[attr-defined]
    await asyncio.wait_for(pipe_closed.wait(), 5)
    assert router.pipe_count == 0
    for sink, _ in pairs:
        sink.close()


async def test_producer_close_reaches_consumers_on_every_worker(vertical_router: VerticalRouter) -> None:
    router = vertical_router
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    pairs = [await sink_consumer(router, producer.id) for _ in range(4)]
    closed = [asyncio.Event() for _ in pairs]
    for (_, consumer), event in zip(pairs, closed, strict=True):
        consumer.on("producerclose", event.set)  # type: ignore[attr-defined]
    await producer.close()
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in closed)), 5)
    for sink, _ in pairs:
        sink.close()


async def test_a_dead_worker_closes_its_consumers_with_events_and_nothing_else(
    vertical_router: VerticalRouter,
) -> None:
    router = vertical_router
    ingress = await router.create_plain_transport(listen_info=LOOPBACK, rtcp_mux=True, comedia=True)
    producer = await ingress.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    pairs = [await sink_consumer(router, producer.id) for _ in range(4)]
    placed = {id(consumer): _worker_of(router, consumer) for _, consumer in pairs}
    home = ingress.real_router.worker
    doomed_worker = next(w for w in placed.values() if w is not home)
    doomed = [c for _, c in pairs if placed[id(c)] is doomed_worker]
    survivors = [c for _, c in pairs if placed[id(c)] is not doomed_worker]
    closed = [asyncio.Event() for _ in doomed]
    for consumer, event in zip(doomed, closed, strict=True):
        consumer.on("transportclose", event.set)  # type: ignore[attr-defined]
    os.kill(doomed_worker.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in closed)), 5)
    assert survivors and not any(c.closed for c in survivors)  # type: ignore[attr-defined]
    for sink, _ in pairs:
        sink.close()


def _worker_of(router: VerticalRouter, consumer: object) -> object:
    for transport in router.transports.values():
        if consumer in transport.consumers.values():
            return transport.real_router.worker
    raise LookupError("consumer not found on any transport")
