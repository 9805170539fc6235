"""Port of mediasoup's test-DataProducer.js."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from media.errors import NotFoundError
from tests.mediasoup.conftest import Calls, once, router_dump

OPTIONS1: dict[str, Any] = {
    "sctp_stream_parameters": {"streamId": 666},
    "label": "foo",
    "protocol": "bar",
    "app_data": {"foo": 1, "bar": "2"},
}
OPTIONS2: dict[str, Any] = {
    "sctp_stream_parameters": {"streamId": 777, "maxRetransmits": 3},
    "label": "foo",
    "protocol": "bar",
    "paused": True,
    "app_data": {"foo": 1, "bar": "2"},
}


@pytest.fixture
async def ctx(backend_worker: Any) -> Any:
    router = await backend_worker.create_router()
    listen = [{"protocol": "udp", "ip": "127.0.0.1"}]
    transport1 = await router.create_webrtc_transport(listen_infos=listen, enable_sctp=True)
    transport2 = await router.create_webrtc_transport(listen_infos=listen, enable_sctp=True)
    yield router, transport1, transport2
    await router.close()


async def test_transport1_produce_data_succeeds(ctx: Any) -> None:
    _, transport1, _ = ctx
    on_new = Calls()
    transport1.observer.once("newdataproducer", on_new)
    data_producer = await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    assert on_new.calls == [(data_producer,)]
    assert isinstance(data_producer.id, str)
    assert not data_producer.closed
    assert data_producer.type == "sctp"
    params = data_producer.sctp_stream_parameters
    assert params["streamId"] == 666
    assert params["ordered"] is True
    assert params.get("maxPacketLifeTime") is None
    assert params.get("maxRetransmits") is None
    assert data_producer.label == "foo"
    assert data_producer.protocol == "bar"
    assert data_producer.paused is False
    assert data_producer.app_data == {"foo": 1, "bar": "2"}
    dump = await router_dump(transport1)
    assert {"key": data_producer.id, "values": []} in dump["mapDataProducerIdDataConsumerIds"]
    assert len(dump["mapDataConsumerIdDataProducerId"]) == 0
    transport_dump = await transport1.dump()
    assert transport_dump["id"] == transport1.id
    assert transport_dump["dataProducerIds"] == [data_producer.id]
    assert transport_dump["dataConsumerIds"] == []


async def test_transport2_produce_data_succeeds(ctx: Any) -> None:
    _, _, transport2 = ctx
    on_new = Calls()
    transport2.observer.once("newdataproducer", on_new)
    data_producer = await transport2.produce_data(**copy.deepcopy(OPTIONS2))
    assert on_new.calls == [(data_producer,)]
    assert not data_producer.closed
    assert data_producer.type == "sctp"
    params = data_producer.sctp_stream_parameters
    assert params["streamId"] == 777
    assert params["ordered"] is False
    assert params.get("maxPacketLifeTime") is None
    assert params["maxRetransmits"] == 3
    assert data_producer.label == "foo"
    assert data_producer.protocol == "bar"
    assert data_producer.paused is True
    assert data_producer.app_data == {"foo": 1, "bar": "2"}
    dump = await router_dump(transport2)
    assert {"key": data_producer.id, "values": []} in dump["mapDataProducerIdDataConsumerIds"]
    assert len(dump["mapDataConsumerIdDataProducerId"]) == 0
    transport_dump = await transport2.dump()
    assert transport_dump["dataProducerIds"] == [data_producer.id]
    assert transport_dump["dataConsumerIds"] == []


@pytest.mark.parametrize("options", [{}, {"sctp_stream_parameters": {"foo": "foo"}}])
async def test_produce_data_with_wrong_arguments_raises_type_error(ctx: Any, options: dict[str, Any]) -> None:
    _, transport1, _ = ctx
    with pytest.raises(TypeError):
        await transport1.produce_data(**options)


async def test_produce_data_with_already_used_stream_id_raises(ctx: Any) -> None:
    _, transport1, _ = ctx
    await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error (the worker refuses)
        await transport1.produce_data(sctp_stream_parameters={"streamId": 666})


async def test_produce_data_with_ordered_and_max_packet_life_time_raises_type_error(ctx: Any) -> None:
    _, transport1, _ = ctx
    with pytest.raises(TypeError):
        await transport1.produce_data(
            sctp_stream_parameters={"streamId": 999, "ordered": True, "maxPacketLifeTime": 4000}
        )


async def test_data_producer_dump_succeeds(ctx: Any) -> None:
    _, transport1, transport2 = ctx
    data_producer1 = await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    dump1 = await data_producer1.dump()
    assert dump1["id"] == data_producer1.id
    assert dump1["type"] == "sctp"
    assert dump1["sctpStreamParameters"]["streamId"] == 666
    assert dump1["sctpStreamParameters"]["ordered"] is True
    assert dump1["sctpStreamParameters"].get("maxPacketLifeTime") is None
    assert dump1["sctpStreamParameters"].get("maxRetransmits") is None
    assert dump1["label"] == "foo"
    assert dump1["protocol"] == "bar"
    assert dump1["paused"] is False
    data_producer2 = await transport2.produce_data(**copy.deepcopy(OPTIONS2))
    dump2 = await data_producer2.dump()
    assert dump2["id"] == data_producer2.id
    assert dump2["type"] == "sctp"
    assert dump2["sctpStreamParameters"]["streamId"] == 777
    assert dump2["sctpStreamParameters"]["ordered"] is False
    assert dump2["sctpStreamParameters"].get("maxPacketLifeTime") is None
    assert dump2["sctpStreamParameters"]["maxRetransmits"] == 3
    assert dump2["label"] == "foo"
    assert dump2["protocol"] == "bar"
    assert dump2["paused"] is True


async def test_data_producer_get_stats_succeeds(ctx: Any) -> None:
    _, transport1, transport2 = ctx
    for transport, options in ((transport1, OPTIONS1), (transport2, OPTIONS2)):
        data_producer = await transport.produce_data(**copy.deepcopy(options))
        [stats] = await data_producer.get_stats()
        assert stats["type"] == "data-producer"
        assert stats["label"] == data_producer.label
        assert stats["protocol"] == data_producer.protocol
        assert stats["messagesReceived"] == 0
        assert stats["bytesReceived"] == 0


async def test_data_producer_pause_and_resume_succeed(ctx: Any) -> None:
    _, transport1, _ = ctx
    data_producer = await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    on_pause, on_resume = Calls(), Calls()
    data_producer.observer.on("pause", on_pause)
    data_producer.observer.on("resume", on_resume)
    await data_producer.pause()
    assert data_producer.paused is True
    assert (await data_producer.dump())["paused"] is True
    await data_producer.resume()
    assert data_producer.paused is False
    assert (await data_producer.dump())["paused"] is False
    calls = (data_producer.pause, data_producer.resume, data_producer.pause, data_producer.pause,
             data_producer.pause, data_producer.resume)
    await asyncio.gather(*[asyncio.ensure_future(call()) for call in calls])
    assert on_pause.count == 3
    assert on_resume.count == 3


async def test_data_producer_pause_and_resume_emit_events(ctx: Any) -> None:
    _, transport1, _ = ctx
    data_producer = await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    events: list[str] = []
    data_producer.observer.once("resume", lambda: events.append("resume"))
    data_producer.observer.once("pause", lambda: events.append("pause"))
    await asyncio.gather(data_producer.pause(), data_producer.resume())
    assert events == ["pause", "resume"]
    assert data_producer.paused is False


async def test_data_producer_close_succeeds(ctx: Any) -> None:
    _, transport1, _ = ctx
    data_producer = await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    on_close = Calls()
    data_producer.observer.once("close", on_close)
    await data_producer.close()
    assert on_close.count == 1
    assert data_producer.closed
    with pytest.raises(NotFoundError):
        await data_producer.dump()
    dump = await router_dump(transport1)
    assert not dump["mapDataProducerIdDataConsumerIds"]
    assert not dump["mapDataConsumerIdDataProducerId"]
    transport_dump = await transport1.dump()
    assert transport_dump["dataProducerIds"] == []
    assert transport_dump["dataConsumerIds"] == []


async def test_data_producer_methods_raise_if_closed(ctx: Any) -> None:
    _, transport1, _ = ctx
    data_producer = await transport1.produce_data(**copy.deepcopy(OPTIONS1))
    await data_producer.close()
    for method in (data_producer.dump, data_producer.get_stats):
        with pytest.raises(NotFoundError):
            await method()


async def test_data_producer_emits_transportclose_if_transport_closed(ctx: Any) -> None:
    _, _, transport2 = ctx
    data_producer = await transport2.produce_data(**copy.deepcopy(OPTIONS2))
    on_close = Calls()
    data_producer.observer.once("close", on_close)
    transport_close = asyncio.ensure_future(once(data_producer, "transportclose"))
    await asyncio.sleep(0)
    await transport2.close()
    await transport_close
    assert on_close.count == 1
    assert data_producer.closed
    with pytest.raises(NotFoundError):
        await data_producer.dump()
