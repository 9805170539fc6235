"""A Router: a mediasoup router on one worker, holding transports and their producers.

Events: "workerclose". Observer: "close", "newtransport".
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from media import fbs, ortc, piping, wire
from media.channel import Channel
from media.direct_transport import DirectTransport
from media.errors import NotFoundError, closed_error
from media.events import EventEmitter
from media.memo import JsonMemo
from media.pipe_transport import PipeTransport
from media.piping import PipeToRouterResult
from media.plain_transport import PlainTransport
from media.rtp_observer import ActiveSpeakerObserver, AudioLevelObserver, RtpObserver
from media.webrtc_transport import WebRtcTransport

if TYPE_CHECKING:
    from media.data_producer import DataProducer
    from media.producer import Producer
    from media.transport import Transport
    from media.webrtc_server import WebRtcServer
    from media.worker import Worker

def _check_listen_info(info: Any) -> None:
    if not isinstance(info, dict) or not isinstance(info.get("ip"), str):
        raise TypeError(f"invalid listen info {info!r}: needs at least an 'ip' string")
    if info.get("protocol", "udp") not in ("udp", "tcp"):
        raise TypeError(f"invalid listen info protocol {info.get('protocol')!r} (udp or tcp)")


def _check_num_sctp_streams(streams: Any) -> None:
    if streams is not None and (
        not isinstance(streams, dict) or not _is_int(streams.get("OS")) or not _is_int(streams.get("MIS"))
    ):
        raise TypeError("if given, num_sctp_streams must be a dict with int OS and MIS")


def _sctp_options(arguments: dict[str, Any]) -> dict[str, int | None]:
    """The 3.27 SCTP keyword arguments among a create_*_transport() call's `locals()`, all checked
    (3.14's message-size arguments too): given ones must be positive ints."""
    for key in (*wire.SCTP_DEFAULTS, "max_sctp_message_size", "max_message_size"):
        value = arguments.get(key)
        if value is not None and (not _is_int(value) or value <= 0):
            raise TypeError(f"if given, {key} must be a positive int")
    return {key: arguments.get(key) for key in wire.SCTP_DEFAULTS}


def _listen_infos_from_ips(
    listen_ips: Any, port: int | None, enable_udp: bool, enable_tcp: bool, prefer_udp: bool, prefer_tcp: bool
) -> list[dict[str, Any]]:
    """mediasoup's deprecated `listenIps` (strings or {ip, announcedIp}) as listen infos, one per protocol."""
    if not isinstance(listen_ips, list):
        raise TypeError("listen_ips must be a list")
    protocols: list[str] = []
    if enable_udp and (prefer_udp or not enable_tcp or not prefer_tcp):
        protocols = ["udp", "tcp"] if enable_tcp else ["udp"]
    elif enable_tcp and ((prefer_tcp and not prefer_udp) or not enable_udp):
        protocols = ["tcp", "udp"] if enable_udp else ["tcp"]
    infos = []
    for listen_ip in listen_ips:
        entry = {"ip": listen_ip} if isinstance(listen_ip, str) else listen_ip
        if not isinstance(entry, dict) or not isinstance(entry.get("ip"), str):
            raise TypeError(f"invalid listen ip {listen_ip!r}")
        for protocol in protocols:
            info: dict[str, Any] = {"protocol": protocol, "ip": entry["ip"]}
            info["announcedAddress"] = entry.get("announcedIp")
            if port is not None:
                info["port"] = port
            infos.append(info)
    return infos


def _single_listen_info(listen_info: Any, listen_ip: Any, port: int | None) -> dict[str, Any]:
    """A plain or pipe transport's listen info, or mediasoup's deprecated `listenIp` (+ `port`) as one (UDP)."""
    if (listen_info is None) == (listen_ip is None):
        raise TypeError("give exactly one of listen_info or (deprecated) listen_ip")
    if listen_ip is not None:
        [listen_info] = _listen_infos_from_ips([listen_ip], port, True, False, False, False)
    _check_listen_info(listen_info)
    return listen_info


def _is_int(value: Any) -> bool:
    """An int that is not a bool (mediasoup rejects `interval: false`)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_app_data(app_data: Any) -> None:
    if app_data is not None and not isinstance(app_data, dict):
        raise TypeError("if given, app_data must be a dict")


def _base_options(**fields: Any) -> Any:
    """Transport.Options with the defaults every kind starts from."""
    return fbs.new("Transport.Options", **{"direct": False, **fields})


_NOT_OPTIONS = frozenset({"self", "app_data"})
_WEBRTC_TRANSPORT_OPTIONS: JsonMemo[Any] = JsonMemo(64)
"""create_webrtc_transport()'s arguments -> its checked options table, shared by every request with
equal ones (every participant of a room gets transports made alike): 18-20 µs of checks and tables
per transport, 7.3 with the memo's key and check (issue 15)."""


def _webrtc_transport_options(
    *,
    listen_infos: list[dict[str, Any]] | None,
    webrtc_server: str | None,
    listen_ips: list[Any] | None,
    port: int | None,
    enable_udp: bool | None,
    enable_tcp: bool | None,
    prefer_udp: bool,
    prefer_tcp: bool,
    initial_available_outgoing_bitrate: int,
    enable_sctp: bool,
    num_sctp_streams: dict[str, int] | None,
    max_sctp_message_size: int | None,
    ice_consent_timeout: int,
    **sctp: int | None,
) -> Any:
    """The WebRtcTransportOptions of create_webrtc_transport()'s arguments (``webrtc_server``: its id),
    checked; TypeError for a bad one."""
    _check_num_sctp_streams(num_sctp_streams)
    # As mediasoup: a WebRtcServer offers both protocols unless told; individual listening, UDP only.
    if enable_udp is None:
        enable_udp = True
    if enable_tcp is None:
        enable_tcp = webrtc_server is not None
    if listen_ips is not None:
        listen_infos = _listen_infos_from_ips(listen_ips, port, enable_udp, enable_tcp, prefer_udp, prefer_tcp)
    if listen_infos is not None:
        if not isinstance(listen_infos, list) or not listen_infos:
            raise TypeError("listen_infos must be a non-empty list of {protocol, ip, ...}")
        for info in listen_infos:
            _check_listen_info(info)
    listen = fbs.enum("WebRtcTransport.Listen")
    return fbs.new(
        "WebRtcTransport.WebRtcTransportOptions",
        base=_base_options(
            initialAvailableOutgoingBitrate=initial_available_outgoing_bitrate,
            isDataChannel=True,
            **wire.sctp_options_to_fbs(
                enable_sctp=enable_sctp,
                num_sctp_streams=num_sctp_streams,
                max_sctp_message_size=max_sctp_message_size,
                options=_sctp_options({"max_sctp_message_size": max_sctp_message_size, **sctp}),
                defaults_3_14=(262_144, 262_144),
            ),
        ),
        listenType=listen.ListenServer if webrtc_server else listen.ListenIndividual,
        listen=fbs.new("WebRtcTransport.ListenServer", webRtcServerId=webrtc_server)
        if webrtc_server
        else fbs.new(
            "WebRtcTransport.ListenIndividual",
            listenInfos=[wire.listen_info_to_fbs(info) for info in listen_infos or []],
        ),
        enableUdp=enable_udp,
        enableTcp=enable_tcp,
        preferUdp=prefer_udp,
        preferTcp=prefer_tcp,
        iceConsentTimeout=ice_consent_timeout,
    )


class Router(EventEmitter):
    def __init__(
        self,
        *,
        router_id: str,
        rtp_capabilities: dict[str, Any],
        channel: Channel,
        app_data: dict[str, Any] | None,
        worker: Worker,
    ) -> None:
        super().__init__()
        self._id = router_id
        self._rtp_capabilities = rtp_capabilities
        self._channel = channel
        self._worker = worker
        self._closed = False
        self._transports: dict[str, Transport] = {}
        self._producers: dict[str, Producer] = {}
        self._data_producers: dict[str, DataProducer] = {}
        self._rtp_observers: dict[str, RtpObserver] = {}
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()
        # One PipeTransport pair per pair of routers, shared by every piped producer (`media.piping`).
        self._pipe_pairs: dict[str, piping.PairFuture] = {}

    @property
    def id(self) -> str:
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def worker(self) -> Worker:
        return self._worker

    @property
    def rtp_capabilities(self) -> dict[str, Any]:
        return self._rtp_capabilities

    def update_media_codecs(self, media_codecs: list[dict[str, Any]]) -> None:
        """Replace the router's codecs (mediasoup 3.27's updateMediaCodecs()): new RTP capabilities
        for what is created from now on; existing producers and consumers keep theirs."""
        self._rtp_capabilities = ortc.generate_router_rtp_capabilities(ortc.clone(media_codecs))

    @property
    def transports(self) -> dict[str, Transport]:
        return dict(self._transports)

    @property
    def producers(self) -> dict[str, Producer]:
        return dict(self._producers)

    def get_producer(self, producer_id: str) -> Producer | None:
        return self._producers.get(producer_id)

    @property
    def data_producers(self) -> dict[str, DataProducer]:
        return dict(self._data_producers)

    def get_data_producer(self, data_producer_id: str) -> DataProducer | None:
        return self._data_producers.get(data_producer_id)

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error("Router", worker_closed=self._channel.closed)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        body = fbs.new("Worker.CloseRouterRequest", routerId=self._id)
        try:
            await self._channel.request("WORKER_CLOSE_ROUTER", "Worker_CloseRouterRequest", body)
        except Exception:  # the worker may be gone already; the router is closed either way
            pass
        self._close_children()
        self.emit("@close")
        self.observer.emit("close")

    def worker_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_children()
        self.emit("workerclose")
        self.observer.emit("close")

    def _close_children(self) -> None:
        for transport in list(self._transports.values()):
            transport.router_closed()
        self._transports.clear()
        for rtp_observer in list(self._rtp_observers.values()):
            rtp_observer.router_closed()
        self._rtp_observers.clear()
        self._producers.clear()
        self._data_producers.clear()

    async def dump(self) -> dict[str, Any]:
        self._check_open()
        return fbs.to_plain(await self._channel.request("ROUTER_DUMP", handler_id=self._id))

    def can_consume(self, *, producer_id: str, rtp_capabilities: dict[str, Any]) -> bool:
        producer = self._producers.get(producer_id)
        if producer is None:
            return False
        return ortc.can_consume_with(producer.consumable_rtp_parameters, rtp_capabilities)

    async def create_webrtc_transport(
        self,
        *,
        listen_infos: list[dict[str, Any]] | None = None,
        webrtc_server: WebRtcServer | None = None,
        listen_ips: list[Any] | None = None,
        port: int | None = None,
        enable_udp: bool | None = None,
        enable_tcp: bool | None = None,
        prefer_udp: bool = False,
        prefer_tcp: bool = False,
        initial_available_outgoing_bitrate: int = 600_000,
        enable_sctp: bool = False,
        num_sctp_streams: dict[str, int] | None = None,
        max_sctp_message_size: int | None = None,
        max_send_message_size: int | None = None,
        max_receive_message_size: int | None = None,
        sctp_send_buffer_size: int | None = None,
        sctp_per_stream_send_queue_limit: int | None = None,
        sctp_max_receiver_window_buffer_size: int | None = None,
        sctp_default_stream_buffered_amount_low_threshold: int | None = None,
        ice_consent_timeout: int = 30,
        app_data: dict[str, Any] | None = None,
    ) -> WebRtcTransport:
        self._check_open()
        if [listen_infos, webrtc_server, listen_ips].count(None) != 2:
            raise TypeError("give exactly one of listen_infos, webrtc_server or (deprecated) listen_ips")
        _check_app_data(app_data)
        arguments = {key: value for key, value in locals().items() if key not in _NOT_OPTIONS}
        arguments["webrtc_server"] = webrtc_server.id if webrtc_server is not None else None
        options = _WEBRTC_TRANSPORT_OPTIONS.get([arguments], lambda: _webrtc_transport_options(**arguments))
        if webrtc_server is not None and webrtc_server.closed:
            raise NotFoundError("WebRtcServer closed")
        transport: WebRtcTransport = await self._create_transport(  # type: ignore[assignment]
            WebRtcTransport, "WebRtcTransport", options, app_data,
            method="ROUTER_CREATE_WEBRTCTRANSPORT_WITH_SERVER" if webrtc_server else None,
        )
        if webrtc_server is not None:
            webrtc_server._handle_transport(transport)
        return transport

    async def create_plain_transport(
        self,
        *,
        listen_info: dict[str, Any] | None = None,
        rtcp_listen_info: dict[str, Any] | None = None,
        listen_ip: Any = None,
        port: int | None = None,
        rtcp_mux: bool = True,
        comedia: bool = False,
        enable_sctp: bool = False,
        num_sctp_streams: dict[str, int] | None = None,
        max_sctp_message_size: int | None = None,
        max_send_message_size: int | None = None,
        max_receive_message_size: int | None = None,
        sctp_send_buffer_size: int | None = None,
        sctp_per_stream_send_queue_limit: int | None = None,
        sctp_max_receiver_window_buffer_size: int | None = None,
        sctp_default_stream_buffered_amount_low_threshold: int | None = None,
        enable_srtp: bool = False,
        srtp_crypto_suite: str = "AES_CM_128_HMAC_SHA1_80",
        app_data: dict[str, Any] | None = None,
    ) -> PlainTransport:
        self._check_open()
        listen_info = _single_listen_info(listen_info, listen_ip, port)
        if rtcp_listen_info is not None:
            _check_listen_info(rtcp_listen_info)
            rtcp_mux = False  # as mediasoup: a separate RTCP listen info means no RTCP mux
        _check_app_data(app_data)
        _check_num_sctp_streams(num_sctp_streams)
        suites = fbs.enum("SrtpParameters.SrtpCryptoSuite")
        if not hasattr(suites, srtp_crypto_suite):
            raise TypeError(f"invalid srtp_crypto_suite {srtp_crypto_suite!r}")
        options = fbs.new(
            "PlainTransport.PlainTransportOptions",
            base=_base_options(
                **wire.sctp_options_to_fbs(
                    enable_sctp=enable_sctp,
                    num_sctp_streams=num_sctp_streams,
                    max_sctp_message_size=max_sctp_message_size,
                    options=_sctp_options(locals()),
                    defaults_3_14=(262_144, 262_144),
                ),
            ),
            listenInfo=wire.listen_info_to_fbs(listen_info),
            rtcpListenInfo=wire.listen_info_to_fbs(rtcp_listen_info) if rtcp_listen_info else None,
            rtcpMux=rtcp_mux,
            comedia=comedia,
            enableSrtp=enable_srtp,
            srtpCryptoSuite=getattr(suites, srtp_crypto_suite),
        )
        return await self._create_transport(PlainTransport, "PlainTransport", options, app_data)  # type: ignore[return-value]

    async def create_pipe_transport(
        self,
        *,
        listen_info: dict[str, Any] | None = None,
        listen_ip: Any = None,
        port: int | None = None,
        enable_sctp: bool = False,
        num_sctp_streams: dict[str, int] | None = None,
        max_sctp_message_size: int | None = None,
        max_send_message_size: int | None = None,
        max_receive_message_size: int | None = None,
        sctp_send_buffer_size: int | None = None,
        sctp_per_stream_send_queue_limit: int | None = None,
        sctp_max_receiver_window_buffer_size: int | None = None,
        sctp_default_stream_buffered_amount_low_threshold: int | None = None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
        app_data: dict[str, Any] | None = None,
    ) -> PipeTransport:
        self._check_open()
        listen_info = _single_listen_info(listen_info, listen_ip, port)
        _check_app_data(app_data)
        _check_num_sctp_streams(num_sctp_streams)
        options = fbs.new(
            "PipeTransport.PipeTransportOptions",
            base=_base_options(
                **wire.sctp_options_to_fbs(
                    enable_sctp=enable_sctp,
                    num_sctp_streams=num_sctp_streams,
                    max_sctp_message_size=max_sctp_message_size,
                    options=_sctp_options(locals()),
                    defaults_3_14=(268_435_456, 268_435_456),
                ),
            ),
            listenInfo=wire.listen_info_to_fbs(listen_info),
            enableRtx=enable_rtx,
            enableSrtp=enable_srtp,
        )
        return await self._create_transport(PipeTransport, "PipeTransport", options, app_data)  # type: ignore[return-value]

    async def create_direct_transport(
        self,
        *,
        max_message_size: int | None = None,
        max_send_message_size: int | None = None,
        max_receive_message_size: int | None = None,
        app_data: dict[str, Any] | None = None,
    ) -> DirectTransport:
        self._check_open()
        _check_app_data(app_data)
        options = fbs.new(
            "DirectTransport.DirectTransportOptions",
            base=_base_options(direct=True, **wire.direct_options_to_fbs(max_message_size, _sctp_options(locals()))),
        )
        return await self._create_transport(DirectTransport, "DirectTransport", options, app_data)  # type: ignore[return-value]

    async def create_audio_level_observer(
        self,
        *,
        max_entries: int = 1,
        threshold: int = -80,
        interval: int = 1000,
        app_data: dict[str, Any] | None = None,
    ) -> AudioLevelObserver:
        self._check_open()
        if not _is_int(max_entries) or max_entries <= 0:
            raise TypeError("if given, max_entries must be a positive int")
        if not _is_int(threshold) or not -127 <= threshold <= 0:
            raise TypeError("if given, threshold must be an int between -127 and 0")
        if not _is_int(interval) or interval < 0:
            raise TypeError("if given, interval must be a non-negative int (ms)")
        _check_app_data(app_data)
        options = fbs.new(
            "AudioLevelObserver.AudioLevelObserverOptions", maxEntries=max_entries, threshold=threshold,
            interval=interval,
        )
        return await self._create_rtp_observer(AudioLevelObserver, "AudioLevelObserver", options, app_data)  # type: ignore[return-value]

    async def create_active_speaker_observer(
        self, *, interval: int = 300, app_data: dict[str, Any] | None = None
    ) -> ActiveSpeakerObserver:
        self._check_open()
        if not _is_int(interval) or interval < 0:
            raise TypeError("if given, interval must be a non-negative int (ms)")
        _check_app_data(app_data)
        options = fbs.new("ActiveSpeakerObserver.ActiveSpeakerObserverOptions", interval=interval)
        return await self._create_rtp_observer(ActiveSpeakerObserver, "ActiveSpeakerObserver", options, app_data)  # type: ignore[return-value]

    async def _create_rtp_observer(
        self, cls: type[RtpObserver], kind: str, options: Any, app_data: dict[str, Any] | None
    ) -> RtpObserver:
        rtp_observer_id = str(uuid.uuid4())
        body = fbs.new(f"Router.Create{kind}Request", rtpObserverId=rtp_observer_id, options=options)
        await self._channel.request(f"ROUTER_CREATE_{kind.upper()}", f"Router_Create{kind}Request", body, self._id)
        rtp_observer = cls(rtp_observer_id=rtp_observer_id, router=self, channel=self._channel, app_data=app_data)
        self._rtp_observers[rtp_observer_id] = rtp_observer
        rtp_observer.on("@close", lambda: self._rtp_observers.pop(rtp_observer_id, None))
        self.observer.emit("newrtpobserver", rtp_observer)
        return rtp_observer

    async def _create_transport(
        self,
        cls: type[Transport],
        kind: str,
        options: Any,
        app_data: dict[str, Any] | None,
        method: str | None = None,
    ) -> Transport:
        """One request shape for every kind: ROUTER_CREATE_<KIND> answered with the kind's dump."""
        transport_id = str(uuid.uuid4())
        body = fbs.new(f"Router.Create{kind}Request", transportId=transport_id, options=options)
        dump = await self._channel.request(
            method or f"ROUTER_CREATE_{kind.upper()}", f"Router_Create{kind}Request", body, self._id
        )
        transport = cls(transport_id=transport_id, dump=dump, router=self, channel=self._channel, app_data=app_data)
        self._register_transport(transport)
        return transport

    def _register_transport(self, transport: Transport) -> None:
        self._transports[transport.id] = transport
        transport.on("@close", lambda: self._transports.pop(transport.id, None))
        # A WebRtcServer's close closes its transports in the worker: the router forgets them too.
        transport.on("@listenserverclose", lambda: self._transports.pop(transport.id, None))
        transport.on("@newproducer", lambda producer: self._producers.__setitem__(producer.id, producer))
        transport.on("@producerclose", lambda producer: self._producers.pop(producer.id, None))
        transport.on("@newdataproducer", lambda dp: self._data_producers.__setitem__(dp.id, dp))
        transport.on("@dataproducerclose", lambda dp: self._data_producers.pop(dp.id, None))
        self.observer.emit("newtransport", transport)

    async def _close_transport(self, transport_id: str) -> None:
        """Ask the worker to close a transport; a gone router or worker makes it moot."""
        if self._closed:
            return
        body = fbs.new("Router.CloseTransportRequest", transportId=transport_id)
        try:
            await self._channel.request("ROUTER_CLOSE_TRANSPORT", "Router_CloseTransportRequest", body, self._id)
        except Exception:
            pass

    async def pipe_to_router(
        self,
        *,
        producer_id: str | None = None,
        data_producer_id: str | None = None,
        router: Any,
        keep_id: bool = True,
        listen_info: dict[str, Any] | None = None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
    ) -> PipeToRouterResult:
        """Make a producer (or data producer) of this router consumable on another router, local or remote.

        The pipe consumer and pipe producer are linked: closing, pausing or
        resuming one side follows on the other.
        """
        self._check_open()
        if (producer_id is None) == (data_producer_id is None):
            raise TypeError("give exactly one of producer_id or data_producer_id")
        if router is self:
            raise TypeError("cannot use this Router as destination")
        if router.closed:
            raise NotFoundError("destination Router closed")
        options: dict[str, Any] = {
            "keep_id": keep_id, "listen_info": listen_info, "enable_rtx": enable_rtx, "enable_srtp": enable_srtp,
        }
        if data_producer_id is not None:
            data_producer = self.get_data_producer(data_producer_id)
            if data_producer is None:
                raise NotFoundError(f'DataProducer with id "{data_producer_id}" not found')
            return await piping.pipe_data_to_router(self, data_producer, router, **options)
        assert producer_id is not None
        producer = self.get_producer(producer_id)
        if producer is None:
            raise NotFoundError(f'Producer with id "{producer_id}" not found')
        return await piping.pipe_to_router(self, producer, router, **options)
