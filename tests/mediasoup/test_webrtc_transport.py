"""Port of mediasoup's test-WebRtcTransport.js."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from media import fbs
from media.errors import NotFoundError, WorkerClosedError
from tests.conftest import REMOTE_BACKENDS
from tests.mediasoup.conftest import AT_LEAST_3_27, Calls, once, router_dump, skip_backends

MEDIA_CODECS: list[dict[str, Any]] = [
    {
        "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2,
        "parameters": {"useinbandfec": 1, "foo": "bar"},
    },
    {"kind": "video", "mimeType": "video/VP8", "clockRate": 90000},
    {
        "kind": "video",
        "mimeType": "video/H264",
        "clockRate": 90000,
        "parameters": {
            "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d0032", "foo": "bar",
        },
    },
]

REMOTE = REMOTE_BACKENDS
INJECTED = "injects a worker notification into the local object's handler; a remote proxy has no channel to inject into"

PORT_RANGE = {"min": 2000, "max": 3000}
LISTEN_INFOS = [{"protocol": "udp", "ip": "127.0.0.1", "portRange": PORT_RANGE}]
ANNOUNCED_LISTEN_INFOS = [
    {"protocol": "udp", "ip": "127.0.0.1", "announcedAddress": "9.9.9.1", "portRange": PORT_RANGE}
]
DTLS_REMOTE_PARAMETERS: dict[str, Any] = {
    "fingerprints": [
        {
            "algorithm": "sha-256",
            "value": "82:5A:68:3D:36:C3:0A:DE:AF:E7:32:43:D2:88:83:57:AC:2D:65:E5:80:C4:B6:FB:AF:1A:A0:21:9F:6D:0C:AD",
        }
    ],
    "role": "client",
}


@pytest.fixture
async def router(backend_worker: Any) -> Any:
    router = await backend_worker.create_router(media_codecs=MEDIA_CODECS)
    yield router
    await router.close()


async def test_create_webrtc_transport_succeeds(router: Any) -> None:
    on_new_transport = Calls()
    router.observer.once("newtransport", on_new_transport)
    if AT_LEAST_3_27:
        # 3.27.1's test: exposeInternalIp on the first listen info (an extra candidate with its ip)
        # and 3.27's SCTP options.
        sctp_options: dict[str, Any] = {
            "max_send_message_size": 1000001, "max_receive_message_size": 1000002,
            "sctp_send_buffer_size": 2000001, "sctp_per_stream_send_queue_limit": 2000002,
            "sctp_max_receiver_window_buffer_size": 2000003,
        }
        first: dict[str, Any] = {"exposeInternalIp": True}
    else:
        sctp_options = {"num_sctp_streams": {"OS": 2048, "MIS": 2048}, "max_sctp_message_size": 1000000}
        first = {}
    transport = await router.create_webrtc_transport(
        listen_infos=[
            {"protocol": "udp", "ip": "127.0.0.1", "announcedAddress": "9.9.9.1", "portRange": PORT_RANGE, **first},
            {"protocol": "tcp", "ip": "127.0.0.1", "announcedAddress": "9.9.9.1", "portRange": PORT_RANGE},
            {"protocol": "udp", "ip": "0.0.0.0", "announcedAddress": "foo1.bar.org", "portRange": PORT_RANGE},
            {"protocol": "tcp", "ip": "0.0.0.0", "announcedAddress": "foo2.bar.org", "portRange": PORT_RANGE},
            {"protocol": "udp", "ip": "127.0.0.1", "announcedAddress": None, "portRange": PORT_RANGE},
            {"protocol": "tcp", "ip": "127.0.0.1", "announcedAddress": None, "portRange": PORT_RANGE},
        ],
        enable_tcp=True,
        prefer_udp=True,
        enable_sctp=True,
        app_data={"foo": "bar"},
        **sctp_options,
    )
    assert (await router_dump(transport))["transportIds"] == [transport.id]
    assert on_new_transport.count == 1
    assert isinstance(transport.id, str)
    assert transport.closed is False
    assert transport.app_data == {"foo": "bar"}
    assert transport.ice_role == "controlled"
    assert transport.ice_parameters["iceLite"] is True
    assert isinstance(transport.ice_parameters["usernameFragment"], str)
    assert isinstance(transport.ice_parameters["password"], str)
    expected = [
        ("9.9.9.1", "udp"), ("9.9.9.1", "tcp"), ("foo1.bar.org", "udp"), ("foo2.bar.org", "tcp"),
        ("127.0.0.1", "udp"), ("127.0.0.1", "tcp"),
    ]
    if AT_LEAST_3_27:
        assert transport.type == "webrtc"
        assert transport.sctp_parameters == {
            "port": 5000, "maxSendMessageSize": 1000001, "maxReceiveMessageSize": 1000002,
            "sendBufferSize": 2000001, "perStreamSendQueueLimit": 2000002, "maxReceiverWindowBufferSize": 2000003,
            "isDataChannel": True, "OS": 65535, "MIS": 65535, "maxMessageSize": 1000002,
        }
        assert transport.sctp_negotiated_capabilities is None
        expected.insert(1, ("127.0.0.1", "udp"))  # the exposed internal ip of the first listen info
    else:
        assert transport.sctp_parameters == {"port": 5000, "OS": 2048, "MIS": 2048, "maxMessageSize": 1000000}
    candidates = transport.ice_candidates
    assert len(candidates) == len(expected)
    for candidate, (ip, protocol) in zip(candidates, expected, strict=True):
        assert candidate["ip"] == ip
        assert candidate["protocol"] == protocol
        assert candidate["type"] == "host"
        assert candidate.get("tcpType") == ("passive" if protocol == "tcp" else None)
    priorities = [c["priority"] for c in candidates]
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) == len(expected)
    assert transport.ice_state == "new"
    assert transport.ice_selected_tuple is None
    assert isinstance(transport.dtls_parameters["fingerprints"], list)
    assert transport.dtls_parameters["role"] == "auto"
    assert transport.dtls_state == "new"
    assert transport.dtls_remote_cert is None
    assert transport.sctp_state == "new"

    dump = await transport.dump()
    assert dump["id"] == transport.id
    assert dump["direct"] is False
    assert dump["producerIds"] == []
    assert dump["consumerIds"] == []
    assert dump["iceRole"] == transport.ice_role
    assert dump["iceParameters"] == transport.ice_parameters
    assert dump["iceCandidates"] == transport.ice_candidates
    assert dump["iceState"] == transport.ice_state
    assert dump.get("iceSelectedTuple") == transport.ice_selected_tuple
    assert dump["dtlsParameters"] == transport.dtls_parameters
    assert dump["dtlsState"] == transport.dtls_state
    assert dump["sctpParameters"] == transport.sctp_parameters
    assert dump["sctpState"] == transport.sctp_state
    if AT_LEAST_3_27:
        assert dump["sctpNegotiatedCapabilities"] == {
            "negotiatedMaxOutboundStreams": 0, "negotiatedMaxInboundStreams": 0,
        }
    assert "recvRtpHeaderExtensions" in dump
    assert isinstance(dump["rtpListener"], dict)
    await transport.close()
    assert transport.closed is True


async def test_create_webrtc_transport_with_deprecated_listen_ips_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(
        listen_ips=[{"ip": "127.0.0.1", "announcedIp": None}],
        enable_udp=True,
        enable_tcp=True,
        prefer_udp=False,
        initial_available_outgoing_bitrate=1000000,
    )
    candidates = transport.ice_candidates
    assert len(candidates) == 2
    assert (candidates[0]["ip"], candidates[0]["protocol"], candidates[0]["type"]) == ("127.0.0.1", "udp", "host")
    assert "tcpType" not in candidates[0]
    assert (candidates[1]["ip"], candidates[1]["protocol"], candidates[1]["type"]) == ("127.0.0.1", "tcp", "host")
    assert candidates[1]["tcpType"] == "passive"
    assert candidates[0]["priority"] > candidates[1]["priority"]


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_create_webrtc_transport_with_fixed_port_succeeds(router: Any) -> None:
    port = free_port(socket.SOCK_STREAM)
    transport = await router.create_webrtc_transport(
        # The udpReusePort flag is ignored since the protocol is TCP.
        listen_infos=[{"protocol": "tcp", "ip": "127.0.0.1", "port": port, "flags": {"udpReusePort": True}}],
    )
    assert transport.ice_candidates[0]["port"] == port


async def test_create_webrtc_transport_with_port_range_succeeds(router: Any) -> None:
    port_range = {"min": 11111, "max": 11112}
    listen = [{"protocol": "udp", "ip": "127.0.0.1", "portRange": port_range}]
    for _ in range(2):
        transport = await router.create_webrtc_transport(listen_infos=listen)
        candidate = transport.ice_candidates[0]
        assert candidate["ip"] == "127.0.0.1"
        assert port_range["min"] <= candidate["port"] <= port_range["max"]
        assert candidate["protocol"] == "udp"
    # No more available ports so it must fail.
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await router.create_webrtc_transport(listen_infos=listen)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"listen_infos": [{"protocol": "udp", "ip": "127.0.0.1", "portRange": {"min": 4000, "max": 3000}}]},
        {"listen_ips": [123]},
        {"listen_infos": "127.0.0.1"},
        {"listen_ips": "127.0.0.1"},
        {"listen_ips": ["127.0.0.1"], "app_data": "NOT-AN-OBJECT"},
        {"listen_ips": ["127.0.0.1"], "enable_sctp": True, "num_sctp_streams": "foo"},
    ],
    ids=["empty", "port-range", "listen-ips-int", "listen-infos-str", "listen-ips-str", "app-data", "sctp-streams"],
)
async def test_create_webrtc_transport_with_wrong_arguments_raises_type_error(
    router: Any, options: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        await router.create_webrtc_transport(**options)


async def test_create_webrtc_transport_with_non_bindable_ip_raises(router: Any) -> None:
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await router.create_webrtc_transport(
            listen_infos=[{"protocol": "udp", "ip": "8.8.8.8", "portRange": PORT_RANGE}]
        )


async def test_webrtc_transport_get_stats_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=ANNOUNCED_LISTEN_INFOS)
    [stats] = await transport.get_stats()
    assert stats["type"] == "webrtc-transport"
    assert stats["transportId"] == transport.id
    assert isinstance(stats["timestamp"], int)
    assert stats["iceRole"] == "controlled"
    assert stats["iceState"] == "new"
    assert stats["dtlsState"] == "new"
    assert stats.get("sctpState") is None
    for key in (
        "bytesReceived", "recvBitrate", "bytesSent", "sendBitrate", "rtpBytesReceived", "rtpRecvBitrate",
        "rtpBytesSent", "rtpSendBitrate", "rtxBytesReceived", "rtxRecvBitrate", "rtxBytesSent", "rtxSendBitrate",
        "probationBytesSent", "probationSendBitrate",
    ):
        assert stats[key] == 0, key
    assert stats.get("iceSelectedTuple") is None
    assert stats.get("maxIncomingBitrate") is None


async def test_webrtc_transport_connect_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=ANNOUNCED_LISTEN_INFOS)
    assert await transport.connect(dtls_parameters=DTLS_REMOTE_PARAMETERS) is None
    # Must fail if connected.
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await transport.connect(dtls_parameters=DTLS_REMOTE_PARAMETERS)
    assert transport.dtls_parameters["role"] == "server"


async def test_webrtc_transport_connect_with_wrong_arguments_raises_type_error(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=ANNOUNCED_LISTEN_INFOS)
    with pytest.raises(TypeError):
        await transport.connect()
    fingerprint = DTLS_REMOTE_PARAMETERS["fingerprints"][0]
    with pytest.raises(TypeError):
        await transport.connect(
            dtls_parameters={"fingerprints": [{**fingerprint, "algorithm": "sha-256000"}], "role": "client"}
        )
    with pytest.raises(TypeError):
        await transport.connect(dtls_parameters={"fingerprints": [fingerprint], "role": "chicken"})
    for _ in range(2):
        with pytest.raises(TypeError):
            await transport.connect(dtls_parameters={"fingerprints": [], "role": "client"})
    assert transport.dtls_parameters["role"] == "auto"


async def test_webrtc_transport_set_max_incoming_bitrate_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=ANNOUNCED_LISTEN_INFOS)
    assert await transport.set_max_incoming_bitrate(1000000) is None
    # Remove limit.
    assert await transport.set_max_incoming_bitrate(0) is None


async def test_webrtc_transport_set_max_outgoing_bitrate_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    assert await transport.set_max_outgoing_bitrate(2000000) is None
    assert await transport.set_max_outgoing_bitrate(0) is None


async def test_webrtc_transport_set_min_outgoing_bitrate_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    assert await transport.set_min_outgoing_bitrate(100000) is None
    assert await transport.set_min_outgoing_bitrate(0) is None


async def test_webrtc_transport_set_max_outgoing_bitrate_lower_than_min_raises(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    await transport.set_min_outgoing_bitrate(3000000)
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await transport.set_max_outgoing_bitrate(2000000)
    await transport.set_min_outgoing_bitrate(0)


async def test_webrtc_transport_set_min_outgoing_bitrate_higher_than_max_raises(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    await transport.set_max_outgoing_bitrate(2000000)
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await transport.set_min_outgoing_bitrate(3000000)
    await transport.set_max_outgoing_bitrate(0)


async def test_webrtc_transport_restart_ice_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    previous = dict(transport.ice_parameters)
    ice_parameters = await transport.restart_ice()
    assert isinstance(ice_parameters["usernameFragment"], str)
    assert isinstance(ice_parameters["password"], str)
    assert ice_parameters["iceLite"] is True
    assert transport.ice_parameters["usernameFragment"] != previous["usernameFragment"]
    assert transport.ice_parameters["password"] != previous["password"]


async def test_transport_enable_trace_event_succeeds(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    await transport.enable_trace_event(["foo", "probation"])
    assert (await transport.dump())["traceEventTypes"] == ["probation"]
    await transport.enable_trace_event([])
    assert (await transport.dump())["traceEventTypes"] == []
    await transport.enable_trace_event(["probation", "FOO", "bwe", "BAR"])
    assert (await transport.dump())["traceEventTypes"] == ["probation", "bwe"]
    await transport.enable_trace_event()
    assert (await transport.dump())["traceEventTypes"] == []


@pytest.mark.parametrize("types", [123, "probation", ["probation", 123.123]])
async def test_transport_enable_trace_event_with_wrong_arguments_raises_type_error(router: Any, types: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    with pytest.raises(TypeError):
        await transport.enable_trace_event(types)


@skip_backends(INJECTED, *REMOTE)
async def test_webrtc_transport_events_succeed(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    events = fbs.enum("Notification.Event")
    # Simulate notifications coming through the channel.
    on_ice_state = Calls()
    transport.on("icestatechange", on_ice_state)
    transport._on_notification(
        events.WEBRTCTRANSPORT_ICE_STATE_CHANGE,
        fbs.new("WebRtcTransport.IceStateChangeNotification", iceState=fbs.enum("WebRtcTransport.IceState").COMPLETED),
    )
    assert on_ice_state.calls == [("completed",)]
    assert transport.ice_state == "completed"

    on_tuple = Calls()
    transport.on("iceselectedtuplechange", on_tuple)
    tuple_ = {
        "localIp": "1.1.1.1", "localAddress": "1.1.1.1", "localPort": 1111, "remoteIp": "2.2.2.2",
        "remotePort": 2222, "protocol": "udp",
    }
    transport._on_notification(
        events.WEBRTCTRANSPORT_ICE_SELECTED_TUPLE_CHANGE,
        fbs.new(
            "WebRtcTransport.IceSelectedTupleChangeNotification",
            tuple=fbs.new(
                "Transport.Tuple", localAddress="1.1.1.1", localPort=1111, remoteIp="2.2.2.2", remotePort=2222,
                protocol=fbs.enum("Transport.Protocol").UDP,
            ),
        ),
    )
    assert on_tuple.calls == [(tuple_,)]
    assert transport.ice_selected_tuple == tuple_

    on_dtls_state = Calls()
    transport.on("dtlsstatechange", on_dtls_state)
    transport._on_notification(
        events.WEBRTCTRANSPORT_DTLS_STATE_CHANGE,
        fbs.new(
            "WebRtcTransport.DtlsStateChangeNotification", dtlsState=fbs.enum("WebRtcTransport.DtlsState").CONNECTING
        ),
    )
    assert on_dtls_state.calls == [("connecting",)]
    assert transport.dtls_state == "connecting"


async def test_webrtc_transport_methods_raise_if_closed(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    on_close = Calls()
    transport.observer.once("close", on_close)
    await transport.close()
    assert on_close.count == 1
    assert transport.closed is True
    assert transport.ice_state == "closed"
    assert transport.ice_selected_tuple is None
    assert transport.dtls_state == "closed"
    assert transport.sctp_state is None
    calls = (
        transport.dump, transport.get_stats, lambda: transport.connect(dtls_parameters=DTLS_REMOTE_PARAMETERS),
        lambda: transport.set_max_incoming_bitrate(200000), lambda: transport.set_max_outgoing_bitrate(200000),
        lambda: transport.set_min_outgoing_bitrate(100000), transport.restart_ice,
    )
    for call in calls:
        with pytest.raises(NotFoundError):
            await call()


async def test_webrtc_transport_emits_routerclose_if_router_closed(router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_ips=["127.0.0.1"], enable_sctp=True)
    on_close = Calls()
    transport.observer.once("close", on_close)
    router_close = asyncio.ensure_future(once(transport, "routerclose"))
    await asyncio.sleep(0)
    await router.close()
    await router_close
    assert on_close.count == 1
    assert transport.closed is True
    assert transport.ice_state == "closed"
    assert transport.ice_selected_tuple is None
    assert transport.dtls_state == "closed"
    assert transport.sctp_state == "closed"
    with pytest.raises(NotFoundError):
        await transport.dump()


async def test_webrtc_transport_emits_routerclose_if_worker_closed(backend_worker: Any, router: Any) -> None:
    transport = await router.create_webrtc_transport(listen_infos=LISTEN_INFOS)
    on_close = Calls()
    transport.observer.once("close", on_close)
    router_close = asyncio.ensure_future(once(transport, "routerclose"))
    await asyncio.sleep(0)
    await backend_worker.close()
    await router_close
    assert on_close.count == 1
    assert transport.closed is True
    assert transport.ice_state == "closed"
    assert transport.ice_selected_tuple is None
    assert transport.dtls_state == "closed"
    assert transport.sctp_state is None
    with pytest.raises(WorkerClosedError):
        await transport.dump()
