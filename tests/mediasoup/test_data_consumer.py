"""Port of mediasoup's test-DataConsumer.js."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from media.errors import NotFoundError
from tests.mediasoup.conftest import AT_LEAST_3_27, Calls, once, router_dump, wait_for

SUBCHANNELS = [0, 1, 1, 1, 2, 65535, 65536, 65537, 100]


@pytest.fixture
async def ctx(backend_worker: Any) -> Any:
    router = await backend_worker.create_router()
    listen = [{"protocol": "udp", "ip": "127.0.0.1"}]
    transport1 = await router.create_webrtc_transport(listen_infos=listen, enable_sctp=True)
    transport2 = await router.create_webrtc_transport(listen_infos=listen, enable_sctp=True)
    direct = await router.create_direct_transport()
    data_producer = await transport1.produce_data(
        sctp_stream_parameters={"streamId": 12345, "ordered": False, "maxPacketLifeTime": 5000},
        label="foo",
        protocol="bar",
    )
    yield router, transport2, direct, data_producer
    await router.close()


async def test_consume_data_succeeds(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    on_new = Calls()
    transport2.observer.once("newdataconsumer", on_new)
    data_consumer = await transport2.consume_data(
        data_producer_id=data_producer.id, max_packet_life_time=4000, subchannels=SUBCHANNELS,
        app_data={"baz": "LOL"},
    )
    assert on_new.calls == [(data_consumer,)]
    assert isinstance(data_consumer.id, str)
    assert data_consumer.data_producer_id == data_producer.id
    assert not data_consumer.closed
    assert data_consumer.type == "sctp"
    params = data_consumer.sctp_stream_parameters
    assert isinstance(params["streamId"], int)
    assert params["ordered"] is False
    assert params["maxPacketLifeTime"] == 4000
    assert params.get("maxRetransmits") is None
    assert data_consumer.label == "foo"
    assert data_consumer.protocol == "bar"
    assert data_consumer.paused is False
    assert {0, 1, 2, 100, 65535} <= set(data_consumer.subchannels)
    assert data_consumer.app_data == {"baz": "LOL"}
    dump = await router_dump(transport2)
    assert {"key": data_producer.id, "values": [data_consumer.id]} in dump["mapDataProducerIdDataConsumerIds"]
    assert {"key": data_consumer.id, "value": data_producer.id} in dump["mapDataConsumerIdDataProducerId"]
    transport_dump = await transport2.dump()
    assert transport_dump["id"] == transport2.id
    assert transport_dump["dataProducerIds"] == []
    assert transport_dump["dataConsumerIds"] == [data_consumer.id]


async def test_data_consumer_dump_succeeds(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(
        data_producer_id=data_producer.id, max_packet_life_time=4000, subchannels=SUBCHANNELS,
        app_data={"baz": "LOL"},
    )
    dump = await data_consumer.dump()
    assert dump["id"] == data_consumer.id
    assert dump["dataProducerId"] == data_consumer.data_producer_id
    assert dump["type"] == "sctp"
    assert dump["sctpStreamParameters"]["streamId"] == data_consumer.sctp_stream_parameters["streamId"]
    assert dump["sctpStreamParameters"]["ordered"] is False
    assert dump["sctpStreamParameters"]["maxPacketLifeTime"] == 4000
    assert dump["sctpStreamParameters"].get("maxRetransmits") is None
    assert dump["label"] == "foo"
    assert dump["protocol"] == "bar"
    assert dump["paused"] is False
    assert dump["dataProducerPaused"] is False
    assert {0, 1, 2, 100, 65535} <= set(dump["subchannels"])


async def test_consume_data_with_unknown_data_producer_id_fails(ctx: Any) -> None:
    """From 3.27.1's test-DataConsumer.js (NotFoundError, still a KeyError as before 3.27 named it)."""
    _router, transport2, _direct, _data_producer = ctx
    with pytest.raises(NotFoundError):
        await transport2.consume_data(data_producer_id="12345678")


async def test_data_consumer_dump_with_ordered_override_succeeds(ctx: Any) -> None:
    """From 3.27.1's test-DataConsumer.js: ordered=True drops the producer's maxPacketLifeTime."""
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id, ordered=True)
    dump = await data_consumer.dump()
    assert dump["sctpStreamParameters"]["ordered"] is True
    assert dump["sctpStreamParameters"].get("maxPacketLifeTime") is None
    assert dump["sctpStreamParameters"].get("maxRetransmits") is None
    if AT_LEAST_3_27:
        assert dump["bufferedAmount"] == 0
        assert dump["bufferedAmountLowThreshold"] == 1024  # 3.27's default per-stream threshold


async def test_consume_data_from_a_direct_data_producer_succeeds(ctx: Any) -> None:
    """From 3.27.1's test-DataConsumer.js: an SCTP consumer of a direct DataProducer gets an ordered stream."""
    _router, transport2, direct, _data_producer = ctx
    direct_data_producer = await direct.produce_data()
    on_new = Calls()
    transport2.observer.once("newdataconsumer", on_new)
    data_consumer = await transport2.consume_data(data_producer_id=direct_data_producer.id)
    assert on_new.calls == [(data_consumer,)]
    assert data_consumer.data_producer_id == direct_data_producer.id
    assert data_consumer.type == "sctp"
    params = data_consumer.sctp_stream_parameters
    assert isinstance(params["streamId"], int)
    assert params["ordered"] is True
    assert params.get("maxPacketLifeTime") is None
    assert params.get("maxRetransmits") is None
    assert (data_consumer.label, data_consumer.protocol, data_consumer.paused) == ("", "", False)
    assert data_consumer.subchannels == []
    assert data_consumer.app_data == {}
    dump = await router_dump(transport2)
    assert {"key": direct_data_producer.id, "values": [data_consumer.id]} in dump["mapDataProducerIdDataConsumerIds"]
    assert {"key": data_consumer.id, "value": direct_data_producer.id} in dump["mapDataConsumerIdDataProducerId"]
    transport_dump = await transport2.dump()
    assert transport_dump["dataProducerIds"] == []
    assert transport_dump["dataConsumerIds"] == [data_consumer.id]

    other = await transport2.consume_data(
        data_producer_id=direct_data_producer.id, ordered=False, max_retransmits=2, subchannels=[0, 1]
    )
    other_dump = await other.dump()
    assert other_dump["type"] == "sctp"
    assert other_dump["sctpStreamParameters"]["streamId"] == other.sctp_stream_parameters["streamId"]
    assert other_dump["sctpStreamParameters"]["ordered"] is False
    assert other_dump["sctpStreamParameters"].get("maxPacketLifeTime") is None
    assert other_dump["sctpStreamParameters"]["maxRetransmits"] == 2
    assert (other_dump["label"], other_dump["protocol"], other_dump["paused"]) == ("", "", False)
    assert other_dump["dataProducerPaused"] is False
    assert {0, 1} <= set(other_dump["subchannels"])


async def test_data_consumer_send_on_a_direct_transport_raises_type_error(ctx: Any) -> None:
    """From 3.27.1's test-DataConsumer.js (both workers answer TypeError)."""
    _router, _transport2, direct, data_producer = ctx
    data_consumer = await direct.consume_data(data_producer_id=data_producer.id)
    with pytest.raises(TypeError):
        await data_consumer.send("foo")


async def test_data_consumer_get_stats_succeeds(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    [stats] = await data_consumer.get_stats()
    assert stats["type"] == "data-consumer"
    assert stats["label"] == data_consumer.label
    assert stats["protocol"] == data_consumer.protocol
    assert stats["messagesSent"] == 0
    assert stats["bytesSent"] == 0


async def test_data_consumer_set_subchannels_succeeds(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    await data_consumer.set_subchannels([999, 999, 998, 65536])
    assert {0, 998, 999} <= set(data_consumer.subchannels)


async def test_data_consumer_add_and_remove_subchannel_succeed(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    await data_consumer.set_subchannels([])
    assert data_consumer.subchannels == []
    await data_consumer.add_subchannel(5)
    assert {5} <= set(data_consumer.subchannels)
    await data_consumer.add_subchannel(10)
    assert {5, 10} <= set(data_consumer.subchannels)
    await data_consumer.add_subchannel(5)
    assert {5, 10} <= set(data_consumer.subchannels)
    await data_consumer.remove_subchannel(666)
    assert {5, 10} <= set(data_consumer.subchannels)
    await data_consumer.remove_subchannel(5)
    assert {10} <= set(data_consumer.subchannels)
    await data_consumer.set_subchannels([])
    assert data_consumer.subchannels == []


async def test_consume_data_on_a_direct_transport_succeeds(ctx: Any) -> None:
    _router, _transport2, direct, data_producer = ctx
    on_new = Calls()
    direct.observer.once("newdataconsumer", on_new)
    data_consumer = await direct.consume_data(data_producer_id=data_producer.id, paused=True,
                                              app_data={"hehe": "HEHE"})
    assert on_new.calls == [(data_consumer,)]
    assert data_consumer.data_producer_id == data_producer.id
    assert not data_consumer.closed
    assert data_consumer.type == "direct"
    assert data_consumer.sctp_stream_parameters is None
    assert data_consumer.label == "foo"
    assert data_consumer.protocol == "bar"
    assert data_consumer.paused is True
    assert data_consumer.app_data == {"hehe": "HEHE"}
    transport_dump = await direct.dump()
    assert transport_dump["id"] == direct.id
    assert transport_dump["dataProducerIds"] == []
    assert transport_dump["dataConsumerIds"] == [data_consumer.id]


async def test_data_consumer_dump_on_a_direct_transport_succeeds(ctx: Any) -> None:
    _router, _transport2, direct, data_producer = ctx
    data_consumer = await direct.consume_data(data_producer_id=data_producer.id, paused=True)
    dump = await data_consumer.dump()
    assert dump["id"] == data_consumer.id
    assert dump["dataProducerId"] == data_consumer.data_producer_id
    assert dump["type"] == "direct"
    assert dump["sctpStreamParameters"] is None
    assert dump["label"] == "foo"
    assert dump["protocol"] == "bar"
    assert dump["paused"] is True
    assert dump["subchannels"] == []


async def test_data_consumer_get_stats_on_a_direct_transport_succeeds(ctx: Any) -> None:
    _router, _transport2, direct, data_producer = ctx
    data_consumer = await direct.consume_data(data_producer_id=data_producer.id)
    [stats] = await data_consumer.get_stats()
    assert stats["type"] == "data-consumer"
    assert stats["label"] == data_consumer.label
    assert stats["protocol"] == data_consumer.protocol
    assert stats["messagesSent"] == 0
    assert stats["bytesSent"] == 0


async def test_data_consumer_pause_and_resume_succeed(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    on_pause, on_resume = Calls(), Calls()
    data_consumer.observer.on("pause", on_pause)
    data_consumer.observer.on("resume", on_resume)
    await data_consumer.pause()
    assert data_consumer.paused is True
    assert (await data_consumer.dump())["paused"] is True
    await data_consumer.resume()
    assert data_consumer.paused is False
    assert (await data_consumer.dump())["paused"] is False
    calls = (data_consumer.pause, data_consumer.resume, data_consumer.pause, data_consumer.pause,
             data_consumer.pause, data_consumer.resume)
    await asyncio.gather(*[asyncio.ensure_future(call()) for call in calls])
    assert on_pause.count == 3
    assert on_resume.count == 3


async def test_data_producer_pause_and_resume_emit_events_on_the_consumer(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    events: list[str] = []
    data_consumer.observer.once("resume", lambda: events.append("resume"))
    data_consumer.observer.once("pause", lambda: events.append("pause"))
    await asyncio.gather(data_producer.pause(), data_producer.resume())
    await wait_for(lambda: len(events) == 2)
    assert events == ["pause", "resume"]
    assert data_consumer.paused is False


async def test_data_consumer_close_succeeds(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    on_close = Calls()
    data_consumer.observer.once("close", on_close)
    await data_consumer.close()
    assert on_close.count == 1
    assert data_consumer.closed
    with pytest.raises(NotFoundError):
        await data_consumer.dump()
    dump = await router_dump(transport2)
    assert {"key": data_producer.id, "values": []} in dump["mapDataProducerIdDataConsumerIds"]
    assert dump["mapDataConsumerIdDataProducerId"] == []
    transport_dump = await transport2.dump()
    assert transport_dump["dataProducerIds"] == []
    assert transport_dump["dataConsumerIds"] == []


async def test_data_consumer_methods_raise_if_closed(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    await data_consumer.close()
    for method in (data_consumer.dump, data_consumer.get_stats):
        with pytest.raises(NotFoundError):
            await method()


async def test_data_consumer_emits_dataproducerclose_if_data_producer_closed(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    on_close = Calls()
    data_consumer.observer.once("close", on_close)
    producer_close = asyncio.ensure_future(once(data_consumer, "dataproducerclose"))
    await asyncio.sleep(0)
    await data_producer.close()
    await producer_close
    assert on_close.count == 1
    assert data_consumer.closed
    with pytest.raises(NotFoundError):
        await data_consumer.dump()


async def test_data_consumer_emits_transportclose_if_transport_closed(ctx: Any) -> None:
    _router, transport2, _direct, data_producer = ctx
    data_consumer = await transport2.consume_data(data_producer_id=data_producer.id)
    on_close = Calls()
    data_consumer.observer.once("close", on_close)
    transport_close = asyncio.ensure_future(once(data_consumer, "transportclose"))
    await asyncio.sleep(0)
    await transport2.close()
    await transport_close
    assert on_close.count == 1
    assert data_consumer.closed
    with pytest.raises(NotFoundError):
        await data_consumer.dump()
    dump = await router_dump(transport2)
    assert dump["mapDataConsumerIdDataProducerId"] == []
    assert all(entry["values"] == [] for entry in dump["mapDataProducerIdDataConsumerIds"])
