"""Port of mediasoup's test-DirectTransport.js."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from media.errors import NotFoundError, WorkerClosedError
from tests.mediasoup.conftest import Calls, once, router_dump, wait_for


@pytest.fixture
async def router(backend_worker: Any) -> Any:
    router = await backend_worker.create_router()
    yield router
    await router.close()


def as_bytes(message: str | bytes) -> bytes:
    return message.encode() if isinstance(message, str) else message


async def test_create_direct_transport_succeeds(router: Any) -> None:
    on_new_transport = Calls()
    router.observer.once("newtransport", on_new_transport)
    transport = await router.create_direct_transport(max_message_size=1024, app_data={"foo": "bar"})
    assert (await router_dump(transport))["transportIds"] == [transport.id]
    assert on_new_transport.calls == [(transport,)]
    assert isinstance(transport.id, str)
    assert not transport.closed
    assert transport.app_data == {"foo": "bar"}
    dump = await transport.dump()
    assert dump["id"] == transport.id
    assert dump["direct"] is True
    for key in ("producerIds", "consumerIds", "dataProducerIds", "dataConsumerIds"):
        assert dump[key] == []
    assert dump["recvRtpHeaderExtensions"] is not None
    assert isinstance(dump["rtpListener"], dict)
    await transport.close()
    assert transport.closed


@pytest.mark.parametrize("max_message_size", ["foo", -2000])
async def test_create_direct_transport_with_wrong_arguments_raises_type_error(
    router: Any, max_message_size: Any
) -> None:
    with pytest.raises(TypeError):
        await router.create_direct_transport(max_message_size=max_message_size)


async def test_direct_transport_get_stats_succeeds(router: Any) -> None:
    transport = await router.create_direct_transport()
    stats = await transport.get_stats()
    assert len(stats) == 1
    assert stats[0]["type"] == "direct-transport"
    assert stats[0]["transportId"] == transport.id
    assert isinstance(stats[0]["timestamp"], int)
    for key in (
        "bytesReceived", "recvBitrate", "bytesSent", "sendBitrate", "rtpBytesReceived", "rtpRecvBitrate",
        "rtpBytesSent", "rtpSendBitrate", "rtxBytesReceived", "rtxRecvBitrate", "rtxBytesSent", "rtxSendBitrate",
        "probationBytesSent", "probationSendBitrate",
    ):
        assert stats[0][key] == 0, key


async def test_direct_transport_connect_succeeds(router: Any) -> None:
    transport = await router.create_direct_transport()
    assert await transport.connect() is None


async def test_data_producer_send_succeeds(router: Any) -> None:
    transport = await router.create_direct_transport()
    data_producer = await transport.produce_data(label="foo", protocol="bar", app_data={"foo": "bar"})
    data_consumer = await transport.consume_data(data_producer_id=data_producer.id)
    num_messages, pause_sending_at, resume_sending_at, pause_receiving_at, resume_receiving_at = 200, 10, 20, 40, 60
    expected_received = (
        num_messages - (resume_sending_at - pause_sending_at) - (resume_receiving_at - pause_receiving_at)
    )
    sent_bytes = effectively_sent_bytes = received_bytes = 0
    received: list[tuple[int, int]] = []

    def on_message(message: str | bytes, ppid: int) -> None:
        nonlocal received_bytes
        received_bytes += len(as_bytes(message))
        received.append((int(as_bytes(message)), ppid))

    data_consumer.on("message", on_message)
    for message_id in range(1, num_messages + 1):
        if message_id == pause_sending_at:
            await data_producer.pause()
        elif message_id == resume_sending_at:
            await data_producer.resume()
        elif message_id == pause_receiving_at:
            await data_consumer.pause()
        elif message_id == resume_receiving_at:
            await data_consumer.resume()
        message: str | bytes = str(message_id) if message_id < num_messages / 2 else str(message_id).encode()
        data_producer.send(message)
        sent_bytes += len(as_bytes(message))
        if not data_producer.paused and not data_consumer.paused:
            effectively_sent_bytes += len(as_bytes(message))
    await wait_for(lambda: received and received[-1][0] == num_messages)
    for message_id, ppid in received:
        if message_id < num_messages / 2:
            assert ppid == 51, message_id
        elif message_id > num_messages / 2:
            assert ppid == 53, message_id
    assert len(received) == expected_received
    assert received_bytes == effectively_sent_bytes
    [producer_stats] = await data_producer.get_stats()
    assert producer_stats["type"] == "data-producer"
    assert producer_stats["label"] == data_producer.label
    assert producer_stats["protocol"] == data_producer.protocol
    assert producer_stats["messagesReceived"] == num_messages
    assert producer_stats["bytesReceived"] == sent_bytes
    [consumer_stats] = await data_consumer.get_stats()
    assert consumer_stats["type"] == "data-consumer"
    assert consumer_stats["label"] == data_consumer.label
    assert consumer_stats["protocol"] == data_consumer.protocol
    assert consumer_stats["messagesSent"] == expected_received
    assert consumer_stats["bytesSent"] == received_bytes


async def test_data_producer_send_with_subchannels_succeeds(router: Any) -> None:
    transport = await router.create_direct_transport()
    data_producer = await transport.produce_data()
    consumer1 = await transport.consume_data(data_producer_id=data_producer.id, subchannels=[1, 11, 666])
    consumer2 = await transport.consume_data(data_producer_id=data_producer.id, subchannels=[2, 22, 666])
    received1: list[str] = []
    received2: list[str] = []
    consumer1.on("message", lambda message, _ppid: received1.append(message))
    consumer2.on("message", lambda message, _ppid: received2.append(message))
    data_producer.send("both", None, None, None)
    data_producer.send("both", None, [1, 2], None)
    data_producer.send("both", None, [11, 22, 33], 666)
    data_producer.send("none", None, [3], 666)
    data_producer.send("none", None, [666], 3)
    data_producer.send("dc1", None, [1], None)
    data_producer.send("dc1", None, [11], 1)
    data_producer.send("dc1", None, [666], 11)
    data_producer.send("dc2", None, [666], 2)
    subchannels = asyncio.ensure_future(consumer2.set_subchannels([*consumer2.subchannels, 1]))
    await asyncio.sleep(0)  # the request goes out before the next message, as in Node
    data_producer.send("both", None, [1], 666)
    await subchannels
    await wait_for(lambda: len(received1) == 7 and len(received2) == 5)
    assert all(message in ("both", "dc1") for message in received1)
    assert all(message in ("both", "dc2") for message in received2)


async def test_direct_transport_methods_raise_if_closed(router: Any) -> None:
    transport = await router.create_direct_transport()
    on_close = Calls()
    transport.observer.once("close", on_close)
    await transport.close()
    assert on_close.count == 1
    assert transport.closed
    for method in (transport.dump, transport.get_stats):
        with pytest.raises(NotFoundError):
            await method()


async def test_direct_transport_emits_routerclose_if_router_closed(router: Any) -> None:
    transport = await router.create_direct_transport()
    on_close = Calls()
    transport.observer.once("close", on_close)
    router_close = asyncio.ensure_future(once(transport, "routerclose"))
    await asyncio.sleep(0)
    await router.close()
    await router_close
    assert on_close.count == 1
    assert transport.closed
    with pytest.raises(NotFoundError):
        await transport.get_stats()


async def test_direct_transport_emits_routerclose_if_worker_closed(router: Any, backend_worker: Any) -> None:
    transport = await router.create_direct_transport()
    on_close = Calls()
    transport.observer.once("close", on_close)
    router_close = asyncio.ensure_future(once(transport, "routerclose"))
    await asyncio.sleep(0)
    await backend_worker.close()
    await router_close
    assert on_close.count == 1
    assert transport.closed
    with pytest.raises(WorkerClosedError):
        await transport.get_stats()
