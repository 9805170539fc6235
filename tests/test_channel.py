"""media.channel against a real worker: framing across pipe reads, and answers matched to callers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import media
from media.codecs import DEFAULT_MEDIA_CODECS
from media.rtp_traffic import OPUS_RTP_PARAMETERS

LOOPBACK = [{"protocol": "udp", "ip": "127.0.0.1"}]
PIPE_BUFFER = 65_536
"""Linux's default pipe capacity: an answer larger than this reaches us in several reads."""


@pytest.fixture
async def router() -> Any:
    worker = await media.create_worker()
    try:
        yield await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
    finally:
        await worker.close()


async def test_an_answer_larger_than_the_pipe_arrives_whole(router: Any) -> None:
    send = await router.create_webrtc_transport(listen_infos=LOOPBACK)
    recv = await router.create_webrtc_transport(listen_infos=LOOPBACK)
    producer = await send.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
    caps = router.rtp_capabilities
    consumers = []
    for _ in range(12):
        consumers += await asyncio.gather(
            *(recv.consume(producer_id=producer.id, rtp_capabilities=caps) for _ in range(100))
        )
    dump = await router.dump()
    # Each consumer id appears in two maps of the dump: 1,200 x 2 x 36 bytes is past the pipe's buffer.
    assert 2 * 36 * len(consumers) > PIPE_BUFFER
    (entry,) = dump["mapProducerIdConsumerIds"]
    assert sorted(entry["values"]) == sorted(consumer.id for consumer in consumers)
    # The channel is still in step afterwards: the next answer is the next request's.
    assert (await recv.dump())["id"] == recv.id


async def test_concurrent_requests_each_get_their_own_answer(router: Any) -> None:
    transports = await asyncio.gather(*(router.create_webrtc_transport(listen_infos=LOOPBACK) for _ in range(50)))
    assert len({transport.id for transport in transports}) == 50
    dumps = await asyncio.gather(*(transport.dump() for transport in transports))
    assert [d["id"] for d in dumps] == [transport.id for transport in transports]
    ports = [t.ice_candidates[0]["port"] for t in transports]
    assert len(set(ports)) == 50
