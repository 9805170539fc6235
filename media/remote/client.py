"""Remote Mediasoup client: mediasoup's API, 1:1, over a ROPE session.

`RemoteMediasoup(rope_client)` offers ``create_worker(**settings)``, and every
object it leads to (Worker, Router, WebRtcTransport, Producer, Consumer, ...)
has the local class's name, methods (same signatures: they are copied from
`media`'s classes), properties, events (``media.events.EventEmitter``),
``observer`` and ``app_data``. An application, or the vertical layer above,
cannot tell a remote worker from a local one.

Each object is a thin view of its ROPE proxy: properties read the proxy's
state (kept in sync by ROPE, updated before a call's answer arrives), methods
are ROPE calls, events are the server's events re-emitted. Objects appear
when the server announces them, so several clients of one server see each
other's objects. Closing follows the server: a forwarded closing event
("transportclose", "routerclose", "died", ...) or the proxy going away
closes the object; when the ROPE connection is lost for good every worker
"dies" and its objects close with their parents' events, as on a local worker
whose process exits.

Sync methods of the API stay sync: ``can_consume``/``get_producer`` are answered
from the mirrored state, ``send()``-like calls are fire-and-forget calls (in
order) owned by the connection's task set.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import orjson

import media.consumer as _consumer
import media.data_consumer as _data_consumer
import media.data_producer as _data_producer
import media.direct_transport as _direct
import media.pipe_transport as _pipe
import media.plain_transport as _plain
import media.producer as _producer
import media.router as _router
import media.rtp_observer as _rtp_observer
import media.transport as _transport
import media.webrtc_server as _webrtc_server
import media.webrtc_transport as _webrtc
import media.worker as _worker
from media import ortc, piping
from media.channel import WorkerNotFoundError, WorkerTimeout, WorkerTypeError
from media.errors import (
    InvalidStateError,
    NotFoundError,
    UnsupportedError,
    WorkerClosedError,
    WorkerError,
    closed_error,
)
from media.events import EventEmitter
from media.piping import PipeToRouterResult
from media.remote.spec import (
    OBSERVER_PREFIX,
    OBSERVER_REPEATS,
    ROOT_ID,
    SPECS,
    RealRouter,
    RealWorker,
    TypeSpec,
    pack,
    real_from_wire,
    unpack_bytes,
)
from media.vertical.pool import Capacity
from rope import ClientClosed, ConnectionLost, RemoteError, RemoteObject, RopeClient, RopeError, UnknownObject
from rope.values import AS_IS, SCALARS, untagged

log = logging.getLogger("media.remote.client")

_LOCAL_ERRORS: dict[str, type[Exception]] = {
    "InvalidStateError": InvalidStateError,
    "UnsupportedError": UnsupportedError,
    "NotFoundError": NotFoundError,
    "WorkerClosedError": WorkerClosedError,
}

_WORKER_ERRORS: dict[str, type[WorkerError]] = {
    "WorkerError": WorkerError, "WorkerTypeError": WorkerTypeError, "WorkerTimeout": WorkerTimeout,
    "WorkerNotFoundError": WorkerNotFoundError,
}


def _local_error(error: RemoteError) -> Exception:
    """The media error a remote failure stands for (built-in types are already subclassed by ROPE)."""
    data = error.data if isinstance(error.data, dict) else {}
    cls = _WORKER_ERRORS.get(error.remote_type)
    if cls is not None:
        return cls(str(data.get("method", "?")), str(data.get("reason", error.message)))
    local = _LOCAL_ERRORS.get(error.remote_type)
    return local(error.message) if local is not None else error


def _log_failure(what: str, future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("%s failed: %r", what, future.exception())


def _remote(name: str, template: Callable[..., Any]) -> Any:
    """An async method with ``template``'s signature that calls ``name`` on the server object.

    Arguments are checked locally (a wrong keyword raises TypeError at once, as
    locally); only those given are sent, so the server applies its defaults.
    """
    signature = inspect.signature(template)
    parameters = list(signature.parameters.values())[1:]
    keywords = frozenset(p.name for p in parameters)
    required = frozenset(p.name for p in parameters if p.default is p.empty)
    # Most of the API takes keywords only (consume(*, producer_id, ...)): checking the names is all that
    # binding does for them, at a fraction of `Signature.bind`'s cost (it ran on every remote call).
    keywords_only = all(p.kind is p.KEYWORD_ONLY for p in parameters)

    async def method(self: RemoteBase, *args: Any, **kwargs: Any) -> Any:
        if keywords_only and not args and required <= kwargs.keys() <= keywords:
            return await self._call(name, **kwargs)
        bound = signature.bind(self, *args, **kwargs)  # positional parameters, or the TypeError
        return await self._call(name, *bound.args[1:], **bound.kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = template.__doc__
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


def _state(name: str) -> Any:
    return property(lambda self: self._proxy.state.get(name), doc=f"Mirrored ``{name}``.")


def _real_state(name: str) -> Any:
    """A vertical object's property (real routers/workers as `RealRouter`/`RealWorker`); None on others."""
    return property(lambda self: real_from_wire(self._proxy.state.get(name)),
                    doc=f"Mirrored ``{name}`` of a vertical object (`media.vertical`); None for others.")


def _capacity(value: Any) -> Capacity | None:
    return Capacity(**value) if isinstance(value, dict) else None


@functools.cache
def _remote_events(spec_events: tuple[str, ...], proxy_events: tuple[str, ...]) -> frozenset[str]:
    """The server events a remote object handles: its spec's and those its server announced."""
    return frozenset((*spec_events, *proxy_events))


class RemoteBase(EventEmitter):
    """What every remote object shares: identity, closing, calls and forwarded events."""

    TYPE: ClassVar[str] = ""
    CHILD_EVENT: ClassVar[str] = ""
    """The observer event the parent emits for a new object of this class."""

    def __init__(self, mediasoup: RemoteMediasoup, proxy: RemoteObject, parent: RemoteBase | None) -> None:
        super().__init__()
        self._mediasoup = mediasoup
        self._proxy = proxy
        self._parent = parent
        self._spec: TypeSpec = SPECS[proxy.type]
        self._closed = bool(proxy.state.get("closed")) or proxy.closed
        self._children: dict[str, RemoteBase] = {}
        app_data = proxy.state.get("app_data")
        self.app_data: dict[str, Any] = dict(app_data) if isinstance(app_data, dict) else {}
        self.observer = EventEmitter()
        self._remote_events = _remote_events(self._spec.events, proxy.events)
        proxy.observer.on("event", self._on_any_event)
        proxy.observer.on("close", self._on_proxy_close)

    def __repr__(self) -> str:
        return f"<remote {self._proxy.type} {self._proxy.state.get('id') or self._proxy.id}>"

    id = _state("id")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def proxy(self) -> RemoteObject:
        """The ROPE proxy underneath (its ``id`` names the object on the server)."""
        return self._proxy

    def _children_of(self, *types: type[RemoteBase]) -> dict[str, Any]:
        return {child.id: child for child in self._children.values() if isinstance(child, types)}

    # -- calls ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> InvalidStateError:
        """As the local object raises it: `WorkerClosedError` once its worker is closed, else `NotFoundError`."""
        node: RemoteBase | None = self
        while node is not None and not isinstance(node, Worker):
            node = node._parent
        return closed_error(self.TYPE, worker_closed=node is None or node.closed)

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._check_open()
        return await self._send(method, *args, **kwargs)

    async def _send(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await self._proxy.call(method, *args, **kwargs)  # encoded once, by `RemoteMediasoup._encode`
        except RemoteError as error:
            raise _local_error(error) from None
        except UnknownObject:
            raise self._closed_error() from None
        return self._mediasoup._decode(result)

    def _fire(self, method: str, *args: Any) -> None:
        """A call nobody awaits (the API's sync ``send()``s), queued on the connection now, so that it keeps
        its place among the calls that follow (a ``pause()`` after a ``send()`` must not overtake it)."""
        self._check_open()
        client = self._proxy.client
        params = {"session": client.session, "object": self._proxy.id, "method": method, "args": pack(list(args))}
        try:
            future = client.connection._request("rope.call", params)
        except RopeError as error:
            log.debug("%s.%s not sent: %r", self.TYPE, method, error)
            return
        future.add_done_callback(partial(_log_failure, f"{self.TYPE}.{method}"))

    # -- closing -------------------------------------------------------------------------

    async def close(self) -> None:
        """Close on the server; children close with their events (forwarded before the answer)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._send("close")
        except (InvalidStateError, ConnectionLost, ClientClosed):
            pass  # gone already: closed either way
        self._finish_close(None)
        self.emit("@close")
        self.observer.emit("close")

    def _finish_close(self, event: str | None, *args: Any) -> None:
        """Close what the server did not close for us (a lost server), detach, emit ``event``."""
        self._closed = True
        for child in reversed(list(self._children.values())):
            child._parent_closed()
        if self._parent is not None:
            self._parent._children.pop(self._proxy.id, None)
        if event is not None:
            self.emit(event, *args)
        self._mediasoup._objects.pop(self._proxy.id, None)  # its observer "close" follows at once

    def _parent_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finish_close(self._spec.parent_close_event, *self._parent_close_args())
        self.observer.emit("close")

    def _parent_close_args(self) -> tuple[Any, ...]:
        return ()

    def _on_proxy_close(self) -> None:
        """The server closed the object without a closing event (another client closed it, or it is gone)."""
        if self._closed:
            return
        self._finish_close(None)
        self.observer.emit("close")

    def _lost(self) -> None:
        """The server is gone for good."""
        self._parent_closed()

    # -- events ----------------------------------------------------------------------------

    def _on_any_event(self, event: str, *args: Any) -> None:
        if event in self._remote_events:
            self._on_remote_event(event, *args)

    def _on_remote_event(self, event: str, *args: Any) -> None:
        values = [self._mediasoup._decode(arg) for arg in args]
        if event.startswith(OBSERVER_PREFIX):
            self.observer.emit(event[len(OBSERVER_PREFIX):], *values)
            return
        if event in self._spec.closing_events:
            if self._closed:
                return
            self._finish_close(event, *self._closing_args(event, values))
            self.observer.emit("close")
            return
        self.emit(event, *values)
        if event in OBSERVER_REPEATS:
            self.observer.emit(event, *values)

    def _closing_args(self, event: str, values: list[Any]) -> list[Any]:
        return values

    def _child_added(self, child: RemoteBase, notify: bool) -> None:
        self._children[child._proxy.id] = child
        if notify and child.CHILD_EVENT:
            self.observer.emit(child.CHILD_EVENT, child)


class Worker(RemoteBase):
    TYPE = "Worker"
    CHILD_EVENT = "newworker"

    pid = _state("pid")

    @property
    def died(self) -> bool:
        return bool(self._proxy.state.get("died")) or self._died

    _died = False

    @property
    def subprocess_closed(self) -> bool:
        """Mirrored: whether the server's worker process has exited."""
        return bool(self._proxy.state.get("subprocess_closed"))

    @property
    def routers(self) -> frozenset[Router]:
        return frozenset(self._children_of(Router).values())

    @property
    def webrtc_servers(self) -> frozenset[WebRtcServer]:
        return frozenset(self._children_of(WebRtcServer).values())

    real_workers = _real_state("real_workers")
    """A vertical worker's real workers now (`RealWorker`s); None for a plain worker."""

    @property
    def capacity(self) -> Capacity | None:
        """A vertical worker's `Capacity`; None for a plain worker."""
        return _capacity(self._proxy.state.get("capacity"))

    dump = _remote("dump", _worker.Worker.dump)
    get_resource_usage = _remote("get_resource_usage", _worker.Worker.get_resource_usage)
    update_settings = _remote("update_settings", _worker.Worker.update_settings)
    create_webrtc_server = _remote("create_webrtc_server", _worker.Worker.create_webrtc_server)
    create_router = _remote("create_router", _worker.Worker.create_router)

    def _closing_args(self, event: str, values: list[Any]) -> list[Any]:
        self._died = True
        return [RuntimeError(values[0] if values else "worker died")]

    def _parent_close_args(self) -> tuple[Any, ...]:
        self._died = True
        return (RuntimeError("remote worker lost: the Remote Mediasoup server is gone"),)

    def _on_proxy_close(self) -> None:
        if self._proxy.state.get("closed"):
            super()._on_proxy_close()  # another client closed it
        else:
            self._parent_closed()  # gone without a word (the server restarted): it died


class WebRtcServer(RemoteBase):
    TYPE = "WebRtcServer"
    CHILD_EVENT = "newwebrtcserver"

    def __init__(self, mediasoup: RemoteMediasoup, proxy: RemoteObject, parent: RemoteBase | None) -> None:
        super().__init__(mediasoup, proxy, parent)
        self._transports: dict[str, Any] = {}
        self.observer.on("webrtctransporthandled", lambda t: self._transports.__setitem__(t.id, t))
        self.observer.on("webrtctransportunhandled", lambda t: self._transports.pop(t.id, None))

    @property
    def webrtc_transports(self) -> dict[str, Any]:
        return dict(self._transports)

    dump = _remote("dump", _webrtc_server.WebRtcServer.dump)


class Router(RemoteBase):
    TYPE = "Router"
    CHILD_EVENT = "newrouter"

    def __init__(self, mediasoup: RemoteMediasoup, proxy: RemoteObject, parent: RemoteBase | None) -> None:
        super().__init__(mediasoup, proxy, parent)
        self._pipe_pairs: dict[str, piping.PairFuture] = {}
        self._updated_rtp_capabilities: dict[str, Any] | None = None
        proxy.observer.on("statechange", self._on_state_change)

    @property
    def rtp_capabilities(self) -> Any:
        """Mirrored; after `update_media_codecs()`, this client's until the server's state reflects a change."""
        if self._updated_rtp_capabilities is not None:
            return self._updated_rtp_capabilities
        return self._proxy.state.get("rtp_capabilities")

    def _on_state_change(self, changes: dict[str, Any]) -> None:
        if "rtp_capabilities" in changes:
            self._updated_rtp_capabilities = None

    def update_media_codecs(self, media_codecs: list[dict[str, Any]]) -> None:
        """As the local router's, synchronous: validated and applied here (the same `ortc`), and sent to the
        server's router in call order, so this client's later calls find it applied."""
        self._updated_rtp_capabilities = ortc.generate_router_rtp_capabilities(ortc.clone(media_codecs))
        if not self._closed:
            self._fire("update_media_codecs", media_codecs)
    room_producers = _state("room_producers")
    """A swarm room's producers, whichever entry they came through (None for a plain router)."""
    real_routers = _real_state("real_routers")
    """A vertical router's real routers now (`RealRouter`s: ``id``, ``worker.pid``); None for a plain router."""
    pipe_count = _state("pipe_count")
    """A vertical router's pipes (producer x real router) alive now; None for a plain router."""
    homes = _real_state("homes")
    """A vertical router's producer id -> the `RealRouter` its media enters; None for a plain router."""

    def home_router(self, producer_id: str) -> RealRouter:
        """The real router our producer's media enters (KeyError for an unknown one), as locally."""
        home = (self.homes or {}).get(producer_id)
        if home is None:
            raise KeyError(f'Producer with id "{producer_id}" not found')
        return home

    def _on_remote_event(self, event: str, *args: Any) -> None:
        """A vertical router's own observer events ("newpipe", "pipeclose", "produceradd", "realrouterclose") carry
        `RealRouter`s where the local ones carry real routers."""
        name = event.removeprefix(OBSERVER_PREFIX)
        if event.startswith(OBSERVER_PREFIX) and name in self._spec.vertical_events:
            self.observer.emit(name, *(real_from_wire(self._mediasoup._decode(arg)) for arg in args))
            return
        super()._on_remote_event(event, *args)

    @property
    def worker(self) -> Worker:
        assert isinstance(self._parent, Worker)
        return self._parent

    @property
    def transports(self) -> dict[str, Transport]:
        return self._children_of(Transport)

    @property
    def producers(self) -> dict[str, Producer]:
        return {p.id: p for t in self.transports.values() for p in t.producers.values()}

    @property
    def data_producers(self) -> dict[str, DataProducer]:
        return {p.id: p for t in self.transports.values() for p in t.data_producers.values()}

    def get_producer(self, producer_id: str) -> Producer | None:
        return self.producers.get(producer_id)

    def get_data_producer(self, data_producer_id: str) -> DataProducer | None:
        return self.data_producers.get(data_producer_id)

    def can_consume(self, *, producer_id: str, rtp_capabilities: dict[str, Any]) -> bool:
        """Answered here, from the producer's mirrored consumable parameters, as the local router does."""
        producer = self.get_producer(producer_id)
        if producer is None:
            return False
        try:
            caps = ortc.clone(rtp_capabilities)
            ortc.validate_rtp_capabilities(caps)
            return ortc.can_consume(producer.consumable_rtp_parameters, caps)
        except (TypeError, ValueError):
            return False

    dump = _remote("dump", _router.Router.dump)
    create_webrtc_transport = _remote("create_webrtc_transport", _router.Router.create_webrtc_transport)
    create_plain_transport = _remote("create_plain_transport", _router.Router.create_plain_transport)
    create_pipe_transport = _remote("create_pipe_transport", _router.Router.create_pipe_transport)
    create_direct_transport = _remote("create_direct_transport", _router.Router.create_direct_transport)
    create_audio_level_observer = _remote("create_audio_level_observer", _router.Router.create_audio_level_observer)
    create_active_speaker_observer = _remote(
        "create_active_speaker_observer", _router.Router.create_active_speaker_observer
    )

    async def pipe_to_router(
        self,
        *,
        producer_id: str,
        router: Any,
        keep_id: bool = True,
        listen_info: dict[str, Any] | None = None,
        enable_rtx: bool = False,
        enable_srtp: bool = False,
    ) -> PipeToRouterResult:
        """Pipe a producer to ``router``: on this server, the server pipes; elsewhere, `media.piping` does,
        its PipeTransports' tuples crossing the network (``listen_info``: the IP both ends listen on)."""
        self._check_open()
        if router is self:
            raise TypeError("cannot use this Router as destination")
        if router.closed:
            raise NotFoundError("destination Router closed")
        producer = self.get_producer(producer_id)
        if producer is None:
            raise NotFoundError(f'Producer with id "{producer_id}" not found')
        options: dict[str, Any] = {"keep_id": keep_id, "enable_rtx": enable_rtx, "enable_srtp": enable_srtp}
        if listen_info is not None:
            options["listen_info"] = listen_info
        if isinstance(router, Router) and router._mediasoup is self._mediasoup:
            result = await self._call("pipe_to_router", producer_id=producer_id, router=router, **options)
            return PipeToRouterResult(pipe_consumer=result["pipe_consumer"], pipe_producer=result["pipe_producer"])
        return await piping.pipe_to_router(self, producer, router, **options)


class Transport(RemoteBase):
    TYPE = "Transport"
    CHILD_EVENT = "newtransport"

    sctp_parameters = _state("sctp_parameters")
    sctp_state = _state("sctp_state")
    sctp_negotiated_capabilities = _state("sctp_negotiated_capabilities")
    type = _state("type")

    @property
    def router(self) -> Router:
        assert isinstance(self._parent, Router)
        return self._parent

    real_router = _real_state("real_router")
    """The `RealRouter` a vertical router's transport lives on; None for a plain router's."""

    @property
    def producers(self) -> dict[str, Producer]:
        return self._children_of(Producer)

    @property
    def consumers(self) -> dict[str, Consumer]:
        return self._children_of(Consumer)

    @property
    def data_producers(self) -> dict[str, DataProducer]:
        return self._children_of(DataProducer)

    @property
    def data_consumers(self) -> dict[str, DataConsumer]:
        return self._children_of(DataConsumer)

    dump = _remote("dump", _transport.Transport.dump)
    get_stats = _remote("get_stats", _transport.Transport.get_stats)
    set_max_incoming_bitrate = _remote("set_max_incoming_bitrate", _transport.Transport.set_max_incoming_bitrate)
    set_max_outgoing_bitrate = _remote("set_max_outgoing_bitrate", _transport.Transport.set_max_outgoing_bitrate)
    set_min_outgoing_bitrate = _remote("set_min_outgoing_bitrate", _transport.Transport.set_min_outgoing_bitrate)
    enable_trace_event = _remote("enable_trace_event", _transport.Transport.enable_trace_event)
    produce = _remote("produce", _transport.Transport.produce)
    consume = _remote("consume", _transport.Transport.consume)
    produce_data = _remote("produce_data", _transport.Transport.produce_data)
    consume_data = _remote("consume_data", _transport.Transport.consume_data)


class WebRtcTransport(Transport):
    TYPE = "WebRtcTransport"

    ice_role = _state("ice_role")
    ice_parameters = _state("ice_parameters")
    ice_candidates = _state("ice_candidates")
    ice_state = _state("ice_state")
    ice_selected_tuple = _state("ice_selected_tuple")
    dtls_parameters = _state("dtls_parameters")
    dtls_state = _state("dtls_state")
    dtls_remote_cert = _state("dtls_remote_cert")

    connect = _remote("connect", _webrtc.WebRtcTransport.connect)
    restart_ice = _remote("restart_ice", _webrtc.WebRtcTransport.restart_ice)


class PlainTransport(Transport):
    TYPE = "PlainTransport"

    rtcp_mux = _state("rtcp_mux")
    comedia = _state("comedia")
    tuple = _state("tuple")
    rtcp_tuple = _state("rtcp_tuple")
    srtp_parameters = _state("srtp_parameters")

    connect = _remote("connect", _plain.PlainTransport.connect)


class PipeTransport(Transport):
    TYPE = "PipeTransport"

    tuple = _state("tuple")
    rtx = _state("rtx")
    srtp_parameters = _state("srtp_parameters")

    connect = _remote("connect", _pipe.PipeTransport.connect)
    consume = _remote("consume", _pipe.PipeTransport.consume)


class DirectTransport(Transport):
    TYPE = "DirectTransport"

    connect = _remote("connect", _direct.DirectTransport.connect)

    def send_rtcp(self, rtcp_packet: bytes) -> None:
        if not isinstance(rtcp_packet, bytes | bytearray):
            raise TypeError("rtcp_packet must be bytes")
        self._fire("send_rtcp", bytes(rtcp_packet))


class Producer(RemoteBase):
    TYPE = "Producer"
    CHILD_EVENT = "newproducer"

    kind = _state("kind")
    rtp_parameters = _state("rtp_parameters")
    type = _state("type")
    consumable_rtp_parameters = _state("consumable_rtp_parameters")
    paused = _state("paused")
    score = _state("score")

    dump = _remote("dump", _producer.Producer.dump)
    get_stats = _remote("get_stats", _producer.Producer.get_stats)
    pause = _remote("pause", _producer.Producer.pause)
    resume = _remote("resume", _producer.Producer.resume)
    enable_trace_event = _remote("enable_trace_event", _producer.Producer.enable_trace_event)

    def send(self, rtp_packet: bytes) -> None:
        """Inject one RTP packet (DirectTransport producers only); sent in order, not awaited."""
        self._fire("send", bytes(rtp_packet))


class Consumer(RemoteBase):
    TYPE = "Consumer"
    CHILD_EVENT = "newconsumer"

    producer_id = _state("producer_id")
    kind = _state("kind")
    rtp_parameters = _state("rtp_parameters")
    type = _state("type")
    paused = _state("paused")
    producer_paused = _state("producer_paused")
    score = _state("score")
    preferred_layers = _state("preferred_layers")
    current_layers = _state("current_layers")
    priority = _state("priority")

    dump = _remote("dump", _consumer.Consumer.dump)
    get_stats = _remote("get_stats", _consumer.Consumer.get_stats)
    pause = _remote("pause", _consumer.Consumer.pause)
    resume = _remote("resume", _consumer.Consumer.resume)
    set_preferred_layers = _remote("set_preferred_layers", _consumer.Consumer.set_preferred_layers)
    set_priority = _remote("set_priority", _consumer.Consumer.set_priority)
    unset_priority = _remote("unset_priority", _consumer.Consumer.unset_priority)
    request_key_frame = _remote("request_key_frame", _consumer.Consumer.request_key_frame)
    enable_trace_event = _remote("enable_trace_event", _consumer.Consumer.enable_trace_event)


class DataProducer(RemoteBase):
    TYPE = "DataProducer"
    CHILD_EVENT = "newdataproducer"

    type = _state("type")
    sctp_stream_parameters = _state("sctp_stream_parameters")
    label = _state("label")
    protocol = _state("protocol")
    paused = _state("paused")

    dump = _remote("dump", _data_producer.DataProducer.dump)
    get_stats = _remote("get_stats", _data_producer.DataProducer.get_stats)
    pause = _remote("pause", _data_producer.DataProducer.pause)
    resume = _remote("resume", _data_producer.DataProducer.resume)

    def send(self, message: str | bytes, ppid: int | None = None, subchannels: list[int] | None = None,
             required_subchannel: int | None = None) -> None:
        """Send one message (DataProducers on a DirectTransport only); sent in order, not awaited."""
        self._check_open()
        if self.type != "direct":
            raise InvalidStateError("send() is only for DataProducers on a DirectTransport")
        if not isinstance(message, str | bytes | bytearray):
            raise TypeError("message must be str or bytes")
        self._fire("send", message, ppid, subchannels, required_subchannel)


class DataConsumer(RemoteBase):
    TYPE = "DataConsumer"
    CHILD_EVENT = "newdataconsumer"

    data_producer_id = _state("data_producer_id")
    type = _state("type")
    sctp_stream_parameters = _state("sctp_stream_parameters")
    label = _state("label")
    protocol = _state("protocol")
    paused = _state("paused")
    data_producer_paused = _state("data_producer_paused")
    subchannels = _state("subchannels")

    dump = _remote("dump", _data_consumer.DataConsumer.dump)
    get_stats = _remote("get_stats", _data_consumer.DataConsumer.get_stats)
    pause = _remote("pause", _data_consumer.DataConsumer.pause)
    resume = _remote("resume", _data_consumer.DataConsumer.resume)
    get_buffered_amount = _remote("get_buffered_amount", _data_consumer.DataConsumer.get_buffered_amount)
    set_buffered_amount_low_threshold = _remote(
        "set_buffered_amount_low_threshold", _data_consumer.DataConsumer.set_buffered_amount_low_threshold
    )
    send = _remote("send", _data_consumer.DataConsumer.send)
    set_subchannels = _remote("set_subchannels", _data_consumer.DataConsumer.set_subchannels)
    add_subchannel = _remote("add_subchannel", _data_consumer.DataConsumer.add_subchannel)
    remove_subchannel = _remote("remove_subchannel", _data_consumer.DataConsumer.remove_subchannel)


class RtpObserver(RemoteBase):
    TYPE = "RtpObserver"
    CHILD_EVENT = "newrtpobserver"

    paused = _state("paused")

    pause = _remote("pause", _rtp_observer.RtpObserver.pause)
    resume = _remote("resume", _rtp_observer.RtpObserver.resume)
    add_producer = _remote("add_producer", _rtp_observer.RtpObserver.add_producer)
    remove_producer = _remote("remove_producer", _rtp_observer.RtpObserver.remove_producer)


class AudioLevelObserver(RtpObserver):
    TYPE = "AudioLevelObserver"


class ActiveSpeakerObserver(RtpObserver):
    TYPE = "ActiveSpeakerObserver"


CLASSES: dict[str, type[RemoteBase]] = {
    cls.TYPE: cls
    for cls in (Worker, WebRtcServer, Router, WebRtcTransport, PlainTransport, PipeTransport, DirectTransport,
                Producer, Consumer, DataProducer, DataConsumer, AudioLevelObserver, ActiveSpeakerObserver)
}


class RemoteMediasoup:
    """mediasoup's module-level API (``create_worker``, ``observer``, ``version``) over one ROPE session.

    ``owns_connection``: `close()` also closes the session's connection (the
    ``connect_*`` helpers return such instances).
    """

    def __init__(self, client: RopeClient, *, owns_connection: bool = False) -> None:
        self.client = client
        self._owns_connection = owns_connection
        self._objects: dict[str, RemoteBase] = {}
        self._closing = False
        self.observer = EventEmitter()
        """"newworker" (worker) for every worker that appears on the server (any client's)."""
        client.encode = self._encode  # one walk: our objects and rope's proxies to references, values packed
        self._root = client.get(ROOT_ID)
        client.on("objectadd", lambda proxy: self._adopt(proxy, notify=True))
        client.on("close", self._on_client_close)
        for proxy in list(client.objects.values()):
            self._adopt(proxy, notify=False)

    def __repr__(self) -> str:
        return f"<RemoteMediasoup {self.client!r}>"

    @property
    def version(self) -> str | None:
        return self._root.state.get("version")

    @property
    def capacity(self) -> Capacity | None:
        """A vertical server's `Capacity` (`media.vertical.Vertical.capacity`); None for a plain one."""
        return _capacity(self._root.state.get("capacity"))

    @property
    def workers(self) -> list[Worker]:
        return [obj for obj in self._objects.values() if isinstance(obj, Worker) and not obj.closed]

    async def create_worker(
        self,
        *,
        log_level: str = "error",
        log_tags: list[str] | None = None,
        rtc_min_port: int = 10000,
        rtc_max_port: int = 59999,
        dtls_certificate_file: str | None = None,
        dtls_private_key_file: str | None = None,
        libwebrtc_field_trials: str | None = None,
        app_data: dict[str, Any] | None = None,
        capacity: Capacity | None = None,
    ) -> Worker:
        """Start a worker on the server (the settings apply there, file paths included). ``capacity``: a
        vertical server's worker's own, tighter than the server's (`media.vertical.Vertical.create_worker`)."""
        if capacity is not None and not isinstance(capacity, Capacity):
            raise TypeError(f"capacity must be a Capacity, not {type(capacity).__name__}")
        settings = {
            "log_level": log_level, "log_tags": log_tags, "rtc_min_port": rtc_min_port, "rtc_max_port": rtc_max_port,
            "dtls_certificate_file": dtls_certificate_file, "dtls_private_key_file": dtls_private_key_file,
            "libwebrtc_field_trials": libwebrtc_field_trials, "app_data": app_data, "capacity": capacity,
        }
        return await self._root_call(
            "create_worker", **{name: value for name, value in settings.items() if value is not None}
        )

    async def get_supported_rtp_capabilities(self) -> dict[str, Any]:
        return await self._root_call("get_supported_rtp_capabilities")

    async def get_node_stats(self) -> dict[str, Any]:
        """`media.stats.get_stats` run on the server for its workers (its CPU, its memory): one call."""
        return await self._root_call("get_stats")

    async def _root_call(self, method: str, **kwargs: Any) -> Any:
        try:
            result = await self._root.call(method, **kwargs)
        except RemoteError as error:
            raise _local_error(error) from None
        return self._decode(result)

    # -- the object table ------------------------------------------------------------------

    def _adopt(self, proxy: RemoteObject, notify: bool) -> None:
        cls = CLASSES.get(proxy.type)
        if cls is None or proxy.id in self._objects:
            return
        parent = self._objects.get(proxy.parent_id) if proxy.parent_id else None
        obj = cls(self, proxy, parent)
        self._objects[proxy.id] = obj  # until it closes (`RemoteBase._finish_close`)
        if obj.closed:
            self._objects.pop(proxy.id, None)
            return
        if parent is not None:
            parent._child_added(obj, notify)
        elif notify and isinstance(obj, Worker):
            self.observer.emit("newworker", obj)

    def get(self, rope_id: str) -> RemoteBase | None:
        """The object behind ROPE id ``rope_id`` (see `RemoteBase.proxy`)."""
        return self._objects.get(rope_id)

    def _encode(self, value: Any) -> Any:
        """Call arguments for the wire (the session's `RopeClient.encode`): our objects and proxies as references.

        What orjson writes as it is (no object of ours, no bytes, no subclass) goes as it is: orjson
        tells in 6 µs for a consume()'s capabilities, where the walk took 23 (issue 15)."""
        try:
            orjson.dumps(value, option=AS_IS)
        except TypeError:
            return self._encode_value(value)
        return value

    def _encode_value(self, value: Any) -> Any:
        kind = type(value)  # exact types first, scalar leaves without a call: this walks every call's arguments
        if kind is dict:
            return {key if type(key) is str else str(key): item if type(item) in SCALARS else self._encode_value(item)
                    for key, item in value.items()}
        if kind is list or kind is tuple:
            return [item if type(item) in SCALARS else self._encode_value(item) for item in value]
        if kind in SCALARS:
            return value
        if isinstance(value, RemoteBase):
            if value._mediasoup is not self:
                raise TypeError(f"{value!r} belongs to another Remote Mediasoup server")
            return {"$ref": value._proxy.id}
        if isinstance(value, RemoteObject):
            return {"$ref": value.id}
        if isinstance(value, dict):
            return {str(key): self._encode_value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._encode_value(item) for item in value]
        if hasattr(value, "observer") and hasattr(value, "closed"):
            raise TypeError(f"{type(value).__name__} objects of another back-end cannot be sent to this server")
        return pack(value)

    def _decode(self, value: Any) -> Any:
        """Results and event arguments for the application: proxies as our objects, ``$bytes`` as bytes."""
        return value if untagged(value) else self._decode_value(value)

    def _decode_value(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            if len(value) == 1 and "$bytes" in value:
                return unpack_bytes(value)
            return {key: item if type(item) in SCALARS else self._decode_value(item) for key, item in value.items()}
        if kind is list:
            return [item if type(item) in SCALARS else self._decode_value(item) for item in value]
        if isinstance(value, RemoteObject):
            return self._objects.get(value.id)
        if isinstance(value, dict):
            return self._decode_value(dict(value))
        if isinstance(value, list):
            return self._decode_value(list(value))
        return value

    # -- losing the server -------------------------------------------------------------------

    def _on_client_close(self) -> None:
        """The session ended: for good (every worker "dies"), or because we closed it (no "died")."""
        for worker in [obj for obj in self._objects.values() if isinstance(obj, Worker)]:
            if self._closing:
                worker._finish_close(None)
                worker.observer.emit("close")
            else:
                worker._lost()
        self._objects.clear()

    async def close(self) -> None:
        """Stop using the server: local objects close; closes an owned connection. What this session made
        keeps running there for the server's grace period (`media.remote.sessions`), then closes."""
        self._closing = True
        await self.client.close()
        if self._owns_connection:
            await self.client.connection.close()


async def connect_websocket(url: str, *, token: str | None = None, **options: Any) -> RemoteMediasoup:
    """A `RemoteMediasoup` over a new WebSocket connection (closed by its `close()`)."""
    from rope.websocket import connect_websocket as rope_connect

    connection = await rope_connect(url, token=token, **options)
    try:
        return RemoteMediasoup(await connection.client(), owns_connection=True)
    except BaseException:
        await connection.close()
        raise


async def connect_libp2p(host: Any, peer_id: str, **options: Any) -> RemoteMediasoup:
    """A `RemoteMediasoup` over a new libp2p stream of ``host`` (closed by its `close()`); ``options``
    go to `rope.libp2p.connect_libp2p` (``dial``, ``token``, a reconnection policy...)."""
    from rope.libp2p import connect_libp2p as rope_connect

    connection = await rope_connect(host, peer_id, **options)
    try:
        return RemoteMediasoup(await connection.client(), owns_connection=True)
    except BaseException:
        await connection.close()
        raise


__all__ = [
    "ActiveSpeakerObserver",
    "AudioLevelObserver",
    "Consumer",
    "DataConsumer",
    "DataProducer",
    "DirectTransport",
    "PipeTransport",
    "PlainTransport",
    "Producer",
    "RealRouter",
    "RealWorker",
    "RemoteMediasoup",
    "RopeError",
    "Router",
    "Transport",
    "WebRtcServer",
    "WebRtcTransport",
    "Worker",
    "connect_libp2p",
    "connect_websocket",
]
