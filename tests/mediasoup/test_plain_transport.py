"""Port of mediasoup's test-PlainTransport.js."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from media.errors import InvalidStateError, NotFoundError, WorkerClosedError
from tests.mediasoup.conftest import AT_LEAST_3_27, Calls, once, router_dump
from tests.mediasoup.test_webrtc_transport import MEDIA_CODECS

PORT_RANGE = {"min": 2000, "max": 3000}
KEY_80 = "ZnQ3eWJraDg0d3ZoYzM5cXN1Y2pnaHU5NWxrZTVv"
KEY_256 = "YTdjcDBvY2JoMGY5YXNlNDc0eDJsdGgwaWRvNnJsamRrdG16aWVpZHphdHo="


@pytest.fixture
async def router(backend_worker: Any) -> Any:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    yield router
    await router.close()


def free_udp_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


async def test_create_plain_transport_succeeds(router: Any) -> None:
    transport = await router.create_plain_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1", "portRange": PORT_RANGE}
    )
    assert (await router_dump(transport))["transportIds"] == [transport.id]
    on_new_transport = Calls()
    router.observer.once("newtransport", on_new_transport)
    # Create a separate transport here.
    transport2 = await router.create_plain_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1", "announcedAddress": "9.9.9.1", "portRange": PORT_RANGE},
        enable_sctp=True,
        app_data={"foo": "bar"},
    )
    assert on_new_transport.count == 1
    assert isinstance(transport2.id, str)
    assert transport2.closed is False
    assert transport2.app_data == {"foo": "bar"}
    assert transport2.tuple["localIp"] == "9.9.9.1"
    assert transport2.tuple["localAddress"] == "9.9.9.1"
    assert isinstance(transport2.tuple["localPort"], int)
    assert transport2.tuple["protocol"] == "udp"
    assert transport2.rtcp_tuple is None
    if AT_LEAST_3_27:
        assert transport2.type == "plain"
        assert transport2.sctp_parameters == {
            "port": 5000, "maxSendMessageSize": 262144, "maxReceiveMessageSize": 262144, "sendBufferSize": 2000000,
            "perStreamSendQueueLimit": 2000000, "maxReceiverWindowBufferSize": 5242880, "isDataChannel": False,
            "OS": 65535, "MIS": 65535, "maxMessageSize": 262144,
        }
        assert transport2.sctp_negotiated_capabilities is None
    else:
        assert transport2.sctp_parameters == {"port": 5000, "OS": 1024, "MIS": 1024, "maxMessageSize": 262144}
    assert transport2.sctp_state == "new"
    assert transport2.srtp_parameters is None
    dump1 = await transport2.dump()
    assert dump1["id"] == transport2.id
    assert dump1["direct"] is False
    assert dump1["producerIds"] == []
    assert dump1["consumerIds"] == []
    assert dump1["tuple"] == transport2.tuple
    assert dump1["rtcpTuple"] == transport2.rtcp_tuple
    assert dump1["sctpParameters"] == transport2.sctp_parameters
    assert dump1["sctpState"] == "new"
    assert "recvRtpHeaderExtensions" in dump1
    assert isinstance(dump1["rtpListener"], dict)
    await transport2.close()
    assert transport2.closed is True

    another = await router.create_plain_transport(listen_ip="127.0.0.1")
    assert another.closed is False

    rtp_port, rtcp_port = free_udp_port(), free_udp_port()
    transport3 = await router.create_plain_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1", "port": rtp_port},
        rtcp_listen_info={"protocol": "udp", "ip": "127.0.0.1", "port": rtcp_port},
    )
    assert transport3.closed is False
    assert transport3.app_data == {}
    for tuple_, port in ((transport3.tuple, rtp_port), (transport3.rtcp_tuple, rtcp_port)):
        assert tuple_["localIp"] == "127.0.0.1"
        assert tuple_["localAddress"] == "127.0.0.1"
        assert tuple_["localPort"] == port
        assert tuple_["protocol"] == "udp"
    assert transport3.sctp_parameters is None
    assert transport3.sctp_state is None
    dump2 = await transport3.dump()
    assert dump2["id"] == transport3.id
    assert dump2["direct"] is False
    assert dump2["tuple"] == transport3.tuple
    assert dump2["rtcpTuple"] == transport3.rtcp_tuple
    assert dump2["sctpState"] is None


async def test_create_plain_transport_with_wrong_arguments_raises_type_error(router: Any) -> None:
    with pytest.raises(TypeError):
        await router.create_plain_transport()
    with pytest.raises(TypeError):
        await router.create_plain_transport(
            listen_info={"protocol": "udp", "ip": "127.0.0.1", "portRange": {"min": 4000, "max": 3000}}
        )
    with pytest.raises(TypeError):
        await router.create_plain_transport(listen_ip="123")
    with pytest.raises(TypeError):
        await router.create_plain_transport(listen_ip=["127.0.0.1"])
    with pytest.raises(TypeError):
        await router.create_pipe_transport(listen_info={"protocol": "tcp", "ip": "127.0.0.1"})
    with pytest.raises(TypeError):
        await router.create_plain_transport(
            listen_info={"protocol": "udp", "ip": "127.0.0.1"}, app_data="NOT-AN-OBJECT"
        )


async def test_create_plain_transport_with_enable_srtp_succeeds(router: Any) -> None:
    # Default crypto suite: AES_CM_128_HMAC_SHA1_80.
    transport = await router.create_plain_transport(listen_ip="127.0.0.1", enable_srtp=True)
    assert isinstance(transport.id, str)
    assert transport.srtp_parameters["cryptoSuite"] == "AES_CM_128_HMAC_SHA1_80"
    assert len(transport.srtp_parameters["keyBase64"]) == 40
    wrong: list[Any] = [
        None,  # Missing srtp_parameters.
        1,
        {"keyBase64": KEY_80},
        {"cryptoSuite": "AES_CM_128_HMAC_SHA1_80"},
        {"cryptoSuite": "FOO", "keyBase64": KEY_80},
        {"cryptoSuite": 123, "keyBase64": KEY_80},
        {"cryptoSuite": "AES_CM_128_HMAC_SHA1_80", "keyBase64": []},
    ]
    for srtp_parameters in wrong:
        with pytest.raises(TypeError):
            await transport.connect(ip="127.0.0.2", port=9999, srtp_parameters=srtp_parameters)
    # Valid srtp_parameters, updating the crypto suite.
    result = await transport.connect(
        ip="127.0.0.2",
        port=9999,
        srtp_parameters={"cryptoSuite": "AEAD_AES_256_GCM", "keyBase64": KEY_256},
    )
    assert result is None
    assert transport.srtp_parameters["cryptoSuite"] == "AEAD_AES_256_GCM"
    assert len(transport.srtp_parameters["keyBase64"]) == 60


async def test_create_plain_transport_with_non_bindable_ip_raises(router: Any) -> None:
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await router.create_plain_transport(listen_ip="8.8.8.8")


MULTICAST_IP = "224.0.0.1"


async def test_two_transports_same_ip_port_with_udp_reuse_port_succeed(router: Any) -> None:
    port = free_udp_port()
    # The ipv6Only flag is ignored since the ip is IPv4.
    flags = [{"udpReusePort": True, "ipv6Only": True}, {"udpReusePort": True}]
    for flag in flags:
        transport = await router.create_plain_transport(
            listen_info={"protocol": "udp", "ip": MULTICAST_IP, "port": port, "flags": flag}
        )
        assert transport is not None


async def test_two_transports_same_ip_port_without_udp_reuse_port_fail(router: Any) -> None:
    port = free_udp_port()
    listen_info = {"protocol": "udp", "ip": MULTICAST_IP, "port": port, "flags": {"udpReusePort": False}}
    assert await router.create_plain_transport(listen_info=listen_info) is not None
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects
        await router.create_plain_transport(listen_info=listen_info)


async def test_plain_transport_get_stats_succeeds(router: Any) -> None:
    transport = await router.create_plain_transport(listen_ip="127.0.0.1")
    [stats] = await transport.get_stats()
    assert stats["type"] == "plain-rtp-transport"
    assert stats["transportId"] == transport.id
    assert isinstance(stats["timestamp"], int)
    for key in (
        "bytesReceived", "recvBitrate", "bytesSent", "sendBitrate", "rtpBytesReceived", "rtpRecvBitrate",
        "rtpBytesSent", "rtpSendBitrate", "rtxBytesReceived", "rtxRecvBitrate", "rtxBytesSent", "rtxSendBitrate",
        "probationBytesSent", "probationSendBitrate",
    ):
        assert stats[key] == 0, key
    assert stats["tuple"]["localIp"] == "127.0.0.1"
    assert stats["tuple"]["localAddress"] == "127.0.0.1"
    assert isinstance(stats["tuple"]["localPort"], int)
    assert stats["tuple"]["protocol"] == "udp"
    assert stats.get("rtcpTuple") is None


async def test_plain_transport_connect_succeeds(router: Any) -> None:
    transport = await router.create_plain_transport(listen_ip="127.0.0.1", rtcp_mux=False)
    assert await transport.connect(ip="1.2.3.4", port=1234, rtcp_port=1235) is None
    # Must fail if connected.
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await transport.connect(ip="1.2.3.4", port=1234, rtcp_port=1235)
    assert transport.tuple["remoteIp"] == "1.2.3.4"
    assert transport.tuple["remotePort"] == 1234
    assert transport.tuple["protocol"] == "udp"
    assert transport.rtcp_tuple["remoteIp"] == "1.2.3.4"
    assert transport.rtcp_tuple["remotePort"] == 1235
    assert transport.rtcp_tuple["protocol"] == "udp"


async def test_plain_transport_connect_with_srtp_parameters_and_comedia_succeeds(router: Any) -> None:
    """From 3.27.1's test-PlainTransport.js: with comedia the worker's connect response has no tuple
    (the remote is learnt from the first packet); connect() with only srtp_parameters still succeeds.
    3.14.16's worker aborts on that request instead, so there the media layer refuses it."""
    transport = await router.create_plain_transport(
        listen_info={"protocol": "udp", "ip": "127.0.0.1"}, enable_srtp=True, comedia=True
    )
    assert transport.srtp_parameters["cryptoSuite"] == "AES_CM_128_HMAC_SHA1_80"
    assert len(transport.srtp_parameters["keyBase64"]) == 40
    assert transport.tuple["localAddress"] == "127.0.0.1"
    assert transport.tuple["protocol"] == "udp"
    assert "remoteIp" not in transport.tuple
    srtp_parameters = {
        "cryptoSuite": "AEAD_AES_256_GCM",
        "keyBase64": "YTdjcDBvY2JoMGY5YXNlNDc0eDJsdGgwaWRvNnJsamRrdG16aWVpZHphdHo=",
    }
    if not AT_LEAST_3_27:
        # The 3.14.16 worker aborts on this request: the media layer refuses it, and the worker lives on.
        with pytest.raises(InvalidStateError, match="comedia"):
            await transport.connect(srtp_parameters=srtp_parameters)
        assert (await transport.dump())["id"] == transport.id
        return
    await transport.connect(srtp_parameters=srtp_parameters)
    assert transport.srtp_parameters["cryptoSuite"] == "AEAD_AES_256_GCM"
    assert len(transport.srtp_parameters["keyBase64"]) == 60
    assert "remoteIp" not in transport.tuple


async def test_plain_transport_connect_with_wrong_arguments_raises_type_error(router: Any) -> None:
    transport = await router.create_plain_transport(listen_ip="127.0.0.1", rtcp_mux=False)
    # No SRTP enabled so passing srtp_parameters must fail.
    with pytest.raises(TypeError):
        await transport.connect(
            ip="127.0.0.2", port=9998, rtcp_port=9999,
            srtp_parameters={"cryptoSuite": "AES_CM_128_HMAC_SHA1_80", "keyBase64": KEY_80},
        )
    with pytest.raises(TypeError):
        await transport.connect()
    with pytest.raises(TypeError):
        await transport.connect(ip="::::1234")
    # rtcp_mux is off, so rtcp_port must be given.
    with pytest.raises(TypeError):
        await transport.connect(ip="127.0.0.1", port=1234)
    with pytest.raises(TypeError):
        await transport.connect(ip="127.0.0.1", port="chicken", rtcp_port=1235)


async def test_plain_transport_methods_raise_if_closed(router: Any) -> None:
    transport = await router.create_plain_transport(listen_ip="127.0.0.1")
    on_close = Calls()
    transport.observer.once("close", on_close)
    await transport.close()
    assert on_close.count == 1
    assert transport.closed is True
    for call in (transport.dump, transport.get_stats, transport.connect):
        with pytest.raises(NotFoundError):
            await call()


async def test_create_plain_transport_with_fixed_port_succeeds(router: Any) -> None:
    port = free_udp_port()
    transport = await router.create_plain_transport(listen_info={"protocol": "udp", "ip": "127.0.0.1", "port": port})
    assert transport.tuple["localPort"] == port


async def test_plain_transport_emits_routerclose_if_router_closed(router: Any) -> None:
    transport = await router.create_plain_transport(listen_ip="127.0.0.1")
    on_close = Calls()
    transport.observer.once("close", on_close)
    router_close = asyncio.ensure_future(once(transport, "routerclose"))
    await asyncio.sleep(0)
    await router.close()
    await router_close
    assert on_close.count == 1
    assert transport.closed is True
    with pytest.raises(NotFoundError):
        await transport.dump()


async def test_plain_transport_emits_routerclose_if_worker_closed(backend_worker: Any, router: Any) -> None:
    transport = await router.create_plain_transport(listen_ip="127.0.0.1")
    on_close = Calls()
    transport.observer.once("close", on_close)
    router_close = asyncio.ensure_future(once(transport, "routerclose"))
    await asyncio.sleep(0)
    await backend_worker.close()
    await router_close
    assert on_close.count == 1
    assert transport.closed is True
    with pytest.raises(WorkerClosedError):
        await transport.dump()
