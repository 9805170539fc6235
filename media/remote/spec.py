"""What the Remote Mediasoup server exposes per object type, shared by server and client.

One table drives both sides, so a property or event added here is mirrored
everywhere at once: the server reads ``state`` properties off the media
object and forwards ``events``; the client turns them back into properties
and events of the same names. Names stay the Python API's (snake_case); RTP
parameters keep mediasoup's JSON shape, so values cross unchanged.

Values that JSON cannot carry travel tagged: bytes as ``{"$bytes": base64}``
(RTP packets, data messages) and exceptions as their message.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from typing import Any

from rope.values import SCALARS, copied

ROOT_ID = "mediasoup"
"""The id of the root object (type "Mediasoup") whose create_worker() starts it all."""

OBSERVER_PREFIX = "observer:"
"""Observer events the server forwards as events named ``observer:<name>``."""

FORWARDED_OBSERVER_EVENTS = ("pause", "resume", "addproducer", "removeproducer",
                             "webrtctransporthandled", "webrtctransportunhandled")
"""Observer events that are not a repeat of an application event (repeats are rebuilt by the client)."""

OBSERVER_REPEATS = frozenset({
    "score", "layerschange", "trace", "videoorientationchange", "icestatechange", "iceselectedtuplechange",
    "dtlsstatechange", "sctpstatechange", "tuple", "rtcptuple", "volumes", "silence", "dominantspeaker",
})
"""Application events mediasoup also emits on the observer."""


@dataclass(frozen=True)
class TypeSpec:
    state: tuple[str, ...]
    methods: tuple[str, ...]
    events: tuple[str, ...]
    closing_events: tuple[str, ...] = ()
    """Events after which the object is closed (emitted by mediasoup just before its observer "close")."""
    parent_close_event: str = ""
    """What the object emits when its parent goes (a cascade the client runs itself when the server is lost)."""
    vertical_state: tuple[str, ...] = ()
    """Properties only a vertical object (`media.vertical`) has, sent when the object has them: its real
    routers and workers travel as `RealRouter`/`RealWorker` descriptions (they are not exposed objects)."""
    vertical_events: tuple[str, ...] = ()
    """A vertical object's own observer events, forwarded as ``observer:<name>`` (real routers described)."""


_TRANSPORT_STATE = ("id", "closed", "type", "sctp_parameters", "sctp_state", "sctp_negotiated_capabilities", "app_data")
_TRANSPORT_METHODS = ("close", "dump", "get_stats", "connect", "set_max_incoming_bitrate", "set_max_outgoing_bitrate",
                      "set_min_outgoing_bitrate", "enable_trace_event", "produce", "consume", "produce_data",
                      "consume_data")
_TRANSPORT_EVENTS = ("routerclose", "listenserverclose", "sctpstatechange", "trace")
_TRANSPORT = {"closing_events": ("routerclose", "listenserverclose"), "parent_close_event": "routerclose",
              "vertical_state": ("real_router",)}
_RTP_OBSERVER = TypeSpec(
    state=("id", "closed", "paused", "app_data"),
    methods=("close", "pause", "resume", "add_producer", "remove_producer"),
    events=("routerclose", "volumes", "silence", "dominantspeaker"),
    closing_events=("routerclose",),
    parent_close_event="routerclose",
)

SPECS: dict[str, TypeSpec] = {
    "Worker": TypeSpec(
        state=("pid", "closed", "died", "subprocess_closed", "app_data"),
        methods=("close", "dump", "get_resource_usage", "update_settings", "create_webrtc_server", "create_router"),
        events=("died", "subprocessclose"),
        closing_events=("died",),
        parent_close_event="died",
        vertical_state=("capacity", "real_workers"),
    ),
    "WebRtcServer": TypeSpec(
        state=("id", "closed", "app_data"),
        methods=("close", "dump"),
        events=("workerclose",),
        closing_events=("workerclose",),
        parent_close_event="workerclose",
    ),
    "Router": TypeSpec(
        # room_producers, newproducer, producerclose: a swarm room's (a vertical router's) producers, every
        # entry's; None and never emitted on other routers.
        state=("id", "closed", "rtp_capabilities", "room_producers", "app_data"),
        methods=("close", "dump", "create_webrtc_transport", "create_plain_transport", "create_pipe_transport",
                 "create_direct_transport", "create_audio_level_observer", "create_active_speaker_observer",
                 "pipe_to_router", "update_media_codecs"),
        events=("workerclose", "newproducer", "producerclose"),
        closing_events=("workerclose",),
        parent_close_event="workerclose",
        vertical_state=("real_routers", "pipe_count", "homes"),
        vertical_events=("newpipe", "pipeclose", "produceradd", "realrouterclose"),
    ),
    "WebRtcTransport": TypeSpec(
        state=(*_TRANSPORT_STATE, "ice_role", "ice_parameters", "ice_candidates", "ice_state", "ice_selected_tuple",
               "dtls_parameters", "dtls_state", "dtls_remote_cert"),
        methods=(*_TRANSPORT_METHODS, "restart_ice"),
        events=(*_TRANSPORT_EVENTS, "icestatechange", "iceselectedtuplechange", "dtlsstatechange"),
        **_TRANSPORT,  # type: ignore[arg-type]
    ),
    "PlainTransport": TypeSpec(
        state=(*_TRANSPORT_STATE, "rtcp_mux", "comedia", "tuple", "rtcp_tuple", "srtp_parameters"),
        methods=_TRANSPORT_METHODS,
        events=(*_TRANSPORT_EVENTS, "tuple", "rtcptuple"),
        **_TRANSPORT,  # type: ignore[arg-type]
    ),
    "PipeTransport": TypeSpec(
        state=(*_TRANSPORT_STATE, "tuple", "rtx", "srtp_parameters"),
        methods=_TRANSPORT_METHODS,
        events=_TRANSPORT_EVENTS,
        **_TRANSPORT,  # type: ignore[arg-type]
    ),
    "DirectTransport": TypeSpec(
        state=_TRANSPORT_STATE,
        methods=(*_TRANSPORT_METHODS, "send_rtcp"),
        events=(*_TRANSPORT_EVENTS, "rtcp"),
        **_TRANSPORT,  # type: ignore[arg-type]
    ),
    "Producer": TypeSpec(
        state=("id", "kind", "rtp_parameters", "type", "consumable_rtp_parameters", "paused", "score", "closed",
               "app_data"),
        methods=("close", "dump", "get_stats", "pause", "resume", "enable_trace_event", "send"),
        events=("transportclose", "score", "videoorientationchange", "trace"),
        closing_events=("transportclose",),
        parent_close_event="transportclose",
    ),
    "Consumer": TypeSpec(
        state=("id", "producer_id", "kind", "rtp_parameters", "type", "paused", "producer_paused", "score",
               "preferred_layers", "current_layers", "priority", "closed", "app_data"),
        methods=("close", "dump", "get_stats", "pause", "resume", "set_preferred_layers", "set_priority",
                 "unset_priority", "request_key_frame", "enable_trace_event"),
        events=("transportclose", "producerclose", "producerpause", "producerresume", "score", "layerschange",
                "trace", "rtp"),
        closing_events=("transportclose", "producerclose"),
        parent_close_event="transportclose",
    ),
    "DataProducer": TypeSpec(
        state=("id", "type", "sctp_stream_parameters", "label", "protocol", "paused", "closed", "app_data"),
        methods=("close", "dump", "get_stats", "pause", "resume", "send"),
        events=("transportclose",),
        closing_events=("transportclose",),
        parent_close_event="transportclose",
    ),
    "DataConsumer": TypeSpec(
        state=("id", "data_producer_id", "type", "sctp_stream_parameters", "label", "protocol", "paused",
               "data_producer_paused", "subchannels", "closed", "app_data"),
        methods=("close", "dump", "get_stats", "pause", "resume", "get_buffered_amount",
                 "set_buffered_amount_low_threshold", "send", "set_subchannels", "add_subchannel",
                 "remove_subchannel"),
        events=("transportclose", "dataproducerclose", "dataproducerpause", "dataproducerresume", "message",
                "sctpsendbufferfull", "bufferedamountlow"),
        closing_events=("transportclose", "dataproducerclose"),
        parent_close_event="transportclose",
    ),
    "AudioLevelObserver": _RTP_OBSERVER,
    "ActiveSpeakerObserver": _RTP_OBSERVER,
}

CHILD_EVENTS: dict[str, tuple[str, ...]] = {
    "Worker": ("newrouter", "newwebrtcserver"),
    "Router": ("newtransport", "newrtpobserver"),
    "Transport": ("newproducer", "newconsumer", "newdataproducer", "newdataconsumer"),
}
"""Observer events announcing a new child, by parent kind (every transport type is "Transport")."""


@dataclass(frozen=True)
class RealWorker:
    """A real worker behind a vertical one, as a client of a vertical server sees it."""

    pid: int


@dataclass(frozen=True)
class RealRouter:
    """A real router behind a vertical router, as a client sees it (like a local one: ``id``, ``worker.pid``)."""

    id: str
    worker: RealWorker


def describe_real(value: Any) -> Any:
    """A vertical property or event argument for the wire: real routers and workers (local, remote or
    already described) become ``{"id", "worker": {"pid"}}`` / ``{"pid"}``; anything else as `pack`."""
    if isinstance(value, dict):
        return {str(key): describe_real(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [describe_real(item) for item in value]
    worker = getattr(value, "worker", None)
    if worker is not None and isinstance(getattr(value, "id", None), str):
        return {"id": value.id, "worker": {"pid": worker.pid}}
    if isinstance(getattr(value, "pid", None), int) and hasattr(value, "observer"):
        return {"pid": value.pid}
    return pack(value)


def real_from_wire(value: Any) -> Any:
    """Undo `describe_real` for the client: `RealRouter`/`RealWorker` again (other values untouched)."""
    if isinstance(value, list):
        return [real_from_wire(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"id", "worker"} and isinstance(value["worker"], dict):
            return RealRouter(str(value["id"]), RealWorker(int(value["worker"]["pid"])))
        if set(value) == {"pid"}:
            return RealWorker(int(value["pid"]))
        return {key: real_from_wire(item) for key, item in value.items()}
    return value


def type_name(obj: Any) -> str | None:
    """The spec type of a media-like object: local, vertical (its real transport's) or remote."""
    inner = getattr(obj, "_inner", None)  # a VerticalTransport wraps the real transport
    if inner is not None:
        obj = inner
    for cls in type(obj).__mro__:
        name = cls.__name__.removeprefix("Vertical")
        if name in SPECS:
            return name
    return None


def family(name: str) -> str:
    return "Transport" if name.endswith("Transport") else name


def pack(value: Any) -> Any:
    """A JSON-able copy of a plain value: bytes tagged, dataclasses as dicts, exceptions as text."""
    kind = type(value)
    if kind in SCALARS:
        return value
    return copied(value, _pack) if kind is dict or kind is list else _pack(value)


def _pack(value: Any) -> Any:
    """`pack` by hand: what JSON would change (bytes, a tuple, a dataclass...) is in ``value``."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is dict:
        return {key if type(key) is str else str(key): item if type(item) in SCALARS else _pack(item)
                for key, item in value.items()}
    if kind is list:
        return [item if type(item) in SCALARS else _pack(item) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(key): _pack(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_pack(item) for item in value]
    if isinstance(value, BaseException):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _pack(getattr(value, field.name)) for field in dataclasses.fields(value)}
    return value


def unpack_bytes(value: Any) -> Any:
    """Undo `pack`'s bytes tagging (recursively); leaves everything else as is."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(tagged := value.get("$bytes"), str):
            return base64.b64decode(tagged)
        return {key: unpack_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unpack_bytes(item) for item in value]
    return value
