"""Port of mediasoup's test-WebRtcServer.js (worker-level: the `worker` fixture, a local worker)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import media
from media.errors import NotFoundError, WorkerClosedError
from tests.mediasoup.conftest import AT_LEAST_3_27, Calls, once


def assert_no_tuple_hashes(dump: dict[str, Any]) -> None:
    """3.14.16's dump lists the server's tuple hashes (none here); 3.27.1's has no such field."""
    if AT_LEAST_3_27:
        assert "tupleHashes" not in dump
    else:
        assert dump["tupleHashes"] == []


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


def tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


async def check_created_server(worker: Any, listen_infos: list[dict[str, Any]], ports: tuple[Any, Any]) -> None:
    on_new = Calls()
    worker.observer.once("newwebrtcserver", on_new)
    server = await worker.create_webrtc_server(listen_infos=listen_infos, app_data={"foo": 123})
    assert on_new.calls == [(server,)]
    assert isinstance(server.id, str)
    assert server.closed is False
    assert server.app_data == {"foo": 123}
    dump = await worker.dump()
    assert dump["pid"] == worker.pid
    assert dump["webRtcServerIds"] == [server.id]
    assert dump["routerIds"] == []
    assert dump["channelMessageHandlers"]["channelRequestHandlers"] == [server.id]
    assert dump["channelMessageHandlers"]["channelNotificationHandlers"] == []
    server_dump = await server.dump()
    assert server_dump["id"] == server.id
    [udp] = server_dump["udpSockets"]
    [tcp] = server_dump["tcpServers"]
    assert udp["ip"] == "127.0.0.1" and tcp["ip"] == "127.0.0.1"
    for socket_dump, port in ((udp, ports[0]), (tcp, ports[1])):
        assert socket_dump["port"] == port if port is not None else isinstance(socket_dump["port"], int)
    assert server_dump["webRtcTransportIds"] == []
    assert server_dump["localIceUsernameFragments"] == []
    assert_no_tuple_hashes(server_dump)
    assert len(worker.webrtc_servers) == 1
    await worker.close()
    assert server.closed is True
    assert len(worker.webrtc_servers) == 0


async def test_create_webrtc_server_succeeds(worker: Any) -> None:
    port1, port2 = udp_port(), tcp_port()
    await check_created_server(
        worker,
        [
            {"protocol": "udp", "ip": "127.0.0.1", "port": port1},
            {"protocol": "tcp", "ip": "127.0.0.1", "announcedAddress": "1.2.3.4", "port": port2},
        ],
        (port1, port2),
    )


async def test_create_webrtc_server_with_port_range_succeeds(worker: Any) -> None:
    port1, port2 = udp_port(), tcp_port()
    await check_created_server(
        worker,
        [
            {"protocol": "udp", "ip": "127.0.0.1", "portRange": {"min": port1, "max": port1}},
            {
                "protocol": "tcp", "ip": "127.0.0.1", "announcedAddress": "1.2.3.4",
                "portRange": {"min": port2, "max": port2},
            },
        ],
        (port1, port2),
    )


async def test_create_webrtc_server_without_port_or_port_range_succeeds(worker: Any) -> None:
    await check_created_server(
        worker,
        [
            {"protocol": "udp", "ip": "127.0.0.1"},
            {"protocol": "tcp", "ip": "127.0.0.1", "announcedAddress": "1.2.3.4"},
        ],
        (None, None),
    )


async def test_create_webrtc_server_with_wrong_arguments_raises_type_error(worker: Any) -> None:
    with pytest.raises(TypeError):
        await worker.create_webrtc_server()
    with pytest.raises(TypeError):
        await worker.create_webrtc_server(listen_infos="NOT-AN-ARRAY")
    with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
        await worker.create_webrtc_server(listen_infos=["NOT-AN-OBJECT"])
    # Empty listen_infos so should fail.
    with pytest.raises(TypeError):
        await worker.create_webrtc_server(listen_infos=[])


async def test_create_webrtc_server_with_unavailable_listen_infos_raises(worker: Any) -> None:
    worker2 = await media.create_worker()
    try:
        port1, port2 = udp_port(), udp_port()
        # Using an unavailable listen IP.
        with pytest.raises(Exception):  # noqa: B017 - upstream: rejects with Error
            await worker.create_webrtc_server(
                listen_infos=[
                    {"protocol": "udp", "ip": "127.0.0.1", "port": port1},
                    {"protocol": "udp", "ip": "1.2.3.4", "port": port2},
                ]
            )
        # Using the same UDP port in two listen infos.
        with pytest.raises(Exception):  # noqa: B017
            await worker.create_webrtc_server(
                listen_infos=[
                    {"protocol": "udp", "ip": "127.0.0.1", "port": port1},
                    {"protocol": "udp", "ip": "127.0.0.1", "announcedAddress": "1.2.3.4", "port": port1},
                ]
            )
        await worker.create_webrtc_server(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1", "port": port1}])
        # Using the same UDP port in a second worker.
        with pytest.raises(Exception):  # noqa: B017
            await worker2.create_webrtc_server(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1", "port": port1}])
    finally:
        await worker2.close()


async def test_create_webrtc_server_raises_worker_closed_error_if_worker_closed(worker: Any) -> None:
    await worker.close()
    with pytest.raises(WorkerClosedError):
        await worker.create_webrtc_server(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1", "port": udp_port()}])


async def test_webrtc_server_close_succeeds(worker: Any) -> None:
    server = await worker.create_webrtc_server(
        listen_infos=[{"protocol": "udp", "ip": "127.0.0.1", "port": udp_port()}]
    )
    on_close = Calls()
    server.observer.once("close", on_close)
    await server.close()
    with pytest.raises(NotFoundError):
        await server.dump()
    assert on_close.count == 1
    assert server.closed is True


async def test_webrtc_server_emits_workerclose_if_worker_closed(worker: Any) -> None:
    server = await worker.create_webrtc_server(
        listen_infos=[{"protocol": "tcp", "ip": "127.0.0.1", "port": tcp_port()}]
    )
    on_close = Calls()
    server.observer.once("close", on_close)
    worker_close = asyncio.ensure_future(once(server, "workerclose"))
    await asyncio.sleep(0)
    await worker.close()
    await worker_close
    assert on_close.count == 1
    assert server.closed is True
    with pytest.raises(WorkerClosedError):
        await server.dump()


async def create_server_and_transport(worker: Any, **options: Any) -> tuple[Any, Any, Any, Calls, Calls, int, int]:
    port1, port2 = udp_port(), tcp_port()
    server = await worker.create_webrtc_server(
        listen_infos=[
            {"protocol": "udp", "ip": "127.0.0.1", "port": port1},
            {"protocol": "tcp", "ip": "127.0.0.1", "port": port2},
        ]
    )
    on_handled, on_unhandled = Calls(), Calls()
    server.observer.once("webrtctransporthandled", on_handled)
    server.observer.once("webrtctransportunhandled", on_unhandled)
    router = await worker.create_router()
    on_new_transport = Calls()
    router.observer.once("newtransport", on_new_transport)
    transport = await router.create_webrtc_transport(webrtc_server=server, app_data={"foo": "bar"}, **options)
    assert (await router.dump())["transportIds"] == [transport.id]
    assert on_handled.calls == [(transport,)]
    assert on_new_transport.calls == [(transport,)]
    assert transport.closed is False
    assert transport.app_data == {"foo": "bar"}
    return server, router, transport, on_handled, on_unhandled, port1, port2


def check_server_dump(dump: dict[str, Any], server: Any, ports: tuple[int, int], transport_ids: list[str]) -> None:
    assert dump["id"] == server.id
    assert dump["udpSockets"] == [{"ip": "127.0.0.1", "port": ports[0]}]
    assert dump["tcpServers"] == [{"ip": "127.0.0.1", "port": ports[1]}]
    assert dump["webRtcTransportIds"] == transport_ids


async def test_create_webrtc_transport_with_webrtc_server_succeeds_and_transport_is_closed(worker: Any) -> None:
    # UDP disabled: the ICE candidates only have TCP.
    server, router, transport, _, on_unhandled, port1, port2 = await create_server_and_transport(
        worker, enable_udp=False
    )
    [candidate] = transport.ice_candidates
    assert (candidate["ip"], candidate["port"], candidate["protocol"]) == ("127.0.0.1", port2, "tcp")
    assert candidate["type"] == "host"
    assert candidate["tcpType"] == "passive"
    assert transport.ice_state == "new"
    assert transport.ice_selected_tuple is None
    assert len(server.webrtc_transports) == 1
    assert len(router.transports) == 1
    dump = await server.dump()
    check_server_dump(dump, server, (port1, port2), [transport.id])
    assert [f["webRtcTransportId"] for f in dump["localIceUsernameFragments"]] == [transport.id]
    assert_no_tuple_hashes(dump)
    await transport.close()
    assert transport.closed is True
    assert on_unhandled.calls == [(transport,)]
    assert len(server.webrtc_transports) == 0
    assert len(router.transports) == 0
    dump = await server.dump()
    check_server_dump(dump, server, (port1, port2), [])
    assert dump["localIceUsernameFragments"] == []
    assert_no_tuple_hashes(dump)


async def test_create_webrtc_transport_with_webrtc_server_succeeds_and_server_is_closed(worker: Any) -> None:
    server, router, transport, _, on_unhandled, port1, port2 = await create_server_and_transport(worker)
    candidates = transport.ice_candidates
    assert len(candidates) == 2
    assert (candidates[0]["ip"], candidates[0]["port"], candidates[0]["protocol"]) == ("127.0.0.1", port1, "udp")
    assert candidates[0]["type"] == "host"
    assert "tcpType" not in candidates[0]
    assert (candidates[1]["ip"], candidates[1]["port"], candidates[1]["protocol"]) == ("127.0.0.1", port2, "tcp")
    assert candidates[1]["type"] == "host"
    assert candidates[1]["tcpType"] == "passive"
    assert transport.ice_state == "new"
    assert transport.ice_selected_tuple is None
    assert len(server.webrtc_transports) == 1
    assert len(router.transports) == 1
    dump = await server.dump()
    check_server_dump(dump, server, (port1, port2), [transport.id])
    assert [f["webRtcTransportId"] for f in dump["localIceUsernameFragments"]] == [transport.id]
    # Restarting ICE adds a new entry in localIceUsernameFragments.
    await transport.restart_ice()
    dump = await server.dump()
    check_server_dump(dump, server, (port1, port2), [transport.id])
    assert [f["webRtcTransportId"] for f in dump["localIceUsernameFragments"]] == [transport.id, transport.id]
    assert_no_tuple_hashes(dump)
    on_close, on_listen_server_close = Calls(), Calls()
    server.observer.once("close", on_close)
    transport.once("listenserverclose", on_listen_server_close)
    await server.close()
    assert server.closed is True
    assert on_close.count == 1
    assert on_listen_server_close.count == 1
    assert on_unhandled.calls == [(transport,)]
    assert transport.closed is True
    assert transport.ice_state == "closed"
    assert transport.ice_selected_tuple is None
    assert transport.dtls_state == "closed"
    assert transport.sctp_state is None
    assert len(server.webrtc_transports) == 0
    assert len(router.transports) == 0
    dump = await worker.dump()
    assert dump["pid"] == worker.pid
    assert dump["webRtcServerIds"] == []
    assert dump["routerIds"] == [router.id]
    assert dump["channelMessageHandlers"]["channelRequestHandlers"] == [router.id]
    assert dump["channelMessageHandlers"]["channelNotificationHandlers"] == []
    router_dump = await router.dump()
    assert router_dump["id"] == router.id
    assert router_dump["transportIds"] == []
