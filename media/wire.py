"""Conversions between mediasoup's JSON-shaped dicts and the channel's FlatBuffers tables.

Applications, clients (pymediasoup, mediasoup-client) and ROPE all speak the
camelCase JSON shape; only the channel speaks FlatBuffers. Keeping every
conversion here means no other module knows the wire schema.
"""

from __future__ import annotations

import functools
from typing import Any

from media import fbs
from media.memo import JsonMemo

HEADER_EXTENSION_URIS: dict[str, tuple[str, ...]] = {
    "urn:ietf:params:rtp-hdrext:sdes:mid": ("Mid",),
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id": ("RtpStreamId",),
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id": ("RepairRtpStreamId",),
    "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07": ("FrameMarkingDraft07",),
    "urn:ietf:params:rtp-hdrext:framemarking": ("FrameMarking",),
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level": ("SsrcAudioLevel", "AudioLevel"),
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension": (
        "DependencyDescriptor",
    ),
    "urn:3gpp:video-orientation": ("VideoOrientation",),
    "urn:ietf:params:rtp-hdrext:toffset": ("TimeOffset",),
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01": ("TransportWideCcDraft01",),
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": ("AbsSendTime",),
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time": ("AbsCaptureTime",),
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay": ("PlayoutDelay",),
    "urn:mediasoup:params:rtp-hdrext:packet-id": ("MediasoupPacketId",),
}
"""Header extension URI -> its `RtpParameters.RtpHeaderExtensionUri` name, per worker version (3.14
calls ssrc-audio-level "AudioLevel" and has framemarking; 3.27 has dependency-descriptor and packet-id)."""


def header_extension_uri_to_fbs(uri: str) -> int:
    """The worker's number for a header extension URI; TypeError if this worker version lacks it.

    Worked out once per URI (five per consume()): the enum's lookups by name cost more than the
    rest of the extension's table."""
    return _cached_uri_number(uri) if type(uri) is str else _uri_number(uri)


def _uri_number(uri: Any) -> int:
    uri_enum = fbs.enum("RtpParameters.RtpHeaderExtensionUri")
    for name in HEADER_EXTENSION_URIS.get(uri, ()):
        if hasattr(uri_enum, name):
            return int(getattr(uri_enum, name))
    raise TypeError(f"invalid RtpHeaderExtensionUri: {uri}")


_cached_uri_number = functools.cache(_uri_number)


def header_extension_uri_from_fbs(value: int) -> str:
    name = fbs.enum_names("RtpParameters.RtpHeaderExtensionUri")[value]
    return next(uri for uri, names in HEADER_EXTENSION_URIS.items() if name in names)


def _str(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


# --- codec / header-extension parameters (a union-typed key/value list) ----

def parameters_to_fbs(parameters: dict[str, Any] | None) -> list[Any]:
    value_enum = fbs.enum("RtpParameters.Value")
    out = []
    for key, value in (parameters or {}).items():
        if isinstance(value, bool):
            kind, inner = value_enum.Boolean, fbs.new("RtpParameters.Boolean", value=int(value))
        elif isinstance(value, int):
            kind, inner = value_enum.Integer32, fbs.new("RtpParameters.Integer32", value=value)
        elif isinstance(value, float):
            if value.is_integer():
                kind, inner = value_enum.Integer32, fbs.new("RtpParameters.Integer32", value=int(value))
            else:
                kind, inner = value_enum.Double, fbs.new("RtpParameters.Double", value=value)
        elif isinstance(value, str):
            kind, inner = value_enum.String, fbs.new("RtpParameters.String", value=value)
        elif isinstance(value, list) and all(isinstance(v, int) for v in value):
            kind, inner = value_enum.Integer32Array, fbs.new("RtpParameters.Integer32Array", value=list(value))
        else:
            raise TypeError(f"invalid parameter type [key:{key!r}, value:{value!r}]")
        out.append(fbs.new("RtpParameters.Parameter", name=key, valueType=kind, value=inner))
    return out


def parameters_from_fbs(parameters: list[Any] | None) -> dict[str, Any]:
    value_enum = fbs.enum("RtpParameters.Value")
    out: dict[str, Any] = {}
    for parameter in parameters or []:
        value = parameter.value.value
        if parameter.valueType == value_enum.Boolean:
            value = bool(value)
        elif parameter.valueType == value_enum.String:
            value = _str(value)
        elif parameter.valueType == value_enum.Integer32Array:
            value = [int(v) for v in value]
        out[_str(parameter.name) or ""] = value
    return out


# --- RtpParameters ----------------------------------------------------------

def encodings_to_fbs(encodings: list[dict[str, Any]] | None) -> list[Any]:
    out = []
    for encoding in encodings or []:
        out.append(
            fbs.new(
                "RtpParameters.RtpEncodingParameters",
                ssrc=encoding.get("ssrc") or None,
                rid=encoding.get("rid"),
                codecPayloadType=encoding.get("codecPayloadType") or None,
                rtx=fbs.new("RtpParameters.Rtx", ssrc=encoding["rtx"]["ssrc"]) if encoding.get("rtx") else None,
                dtx=bool(encoding.get("dtx", False)),
                scalabilityMode=encoding.get("scalabilityMode") or None,
                maxBitrate=encoding.get("maxBitrate"),
            )
        )
    return out


def encodings_from_fbs(encodings: list[Any] | None) -> list[dict[str, Any]]:
    out = []
    for enc in encodings or []:
        encoding: dict[str, Any] = {}
        if enc.ssrc is not None:
            encoding["ssrc"] = enc.ssrc
        if enc.rid:
            encoding["rid"] = _str(enc.rid)
        if enc.codecPayloadType is not None:
            encoding["codecPayloadType"] = enc.codecPayloadType
        if enc.rtx is not None:
            encoding["rtx"] = {"ssrc": enc.rtx.ssrc}
        if enc.dtx:
            encoding["dtx"] = True
        if enc.scalabilityMode:
            encoding["scalabilityMode"] = _str(enc.scalabilityMode)
        if enc.maxBitrate is not None:
            encoding["maxBitrate"] = enc.maxBitrate
        out.append(encoding)
    return out


def rtp_parameters_to_fbs(params: dict[str, Any]) -> Any:
    codecs, header_extensions = _negotiated_to_fbs(params["codecs"], params.get("headerExtensions") or [])
    rtcp = params.get("rtcp") or {}
    out = fbs.new(
        "RtpParameters.RtpParameters",
        mid=params.get("mid"),
        codecs=codecs,
        headerExtensions=header_extensions,
        encodings=encodings_to_fbs(params.get("encodings")),
        rtcp=fbs.new(
            "RtpParameters.RtcpParameters",
            cname=rtcp.get("cname"),
            reducedSize=bool(rtcp.get("reducedSize", True)),
        ),
    )
    if params.get("msid") and fbs.has("RtpParameters.RtpParameters", "msid"):  # 3.27+
        out.msid = params["msid"]
    return out


_NEGOTIATED_TABLES: JsonMemo[tuple[list[Any], list[Any]]] = JsonMemo(64)
"""An RtpParameters' codecs and header extensions -> their tables, shared by every request with equal
ones. Every consumer of one producer through the same capabilities has the same, and their tables
were most of `rtp_parameters_to_fbs`: 15 of 21.6 µs for one opus codec and five extensions (issue 15)."""


def _negotiated_to_fbs(codecs: Any, header_extensions: Any) -> tuple[list[Any], list[Any]]:
    return _NEGOTIATED_TABLES.get(
        [codecs, header_extensions], lambda: (_codecs_to_fbs(codecs), _header_extensions_to_fbs(header_extensions))
    )


def _codecs_to_fbs(codecs: list[dict[str, Any]]) -> list[Any]:
    return [
        fbs.new(
            "RtpParameters.RtpCodecParameters",
            mimeType=codec["mimeType"],
            payloadType=codec["payloadType"],
            clockRate=codec["clockRate"],
            channels=codec.get("channels"),
            parameters=parameters_to_fbs(codec.get("parameters")),
            rtcpFeedback=[
                fbs.new("RtpParameters.RtcpFeedback", type=fb["type"], parameter=fb.get("parameter") or None)
                for fb in codec.get("rtcpFeedback") or []
            ],
        )
        for codec in codecs
    ]


def _header_extensions_to_fbs(header_extensions: list[dict[str, Any]]) -> list[Any]:
    return [
        fbs.new(
            "RtpParameters.RtpHeaderExtensionParameters",
            uri=header_extension_uri_to_fbs(ext["uri"]),
            id=ext["id"],
            encrypt=bool(ext.get("encrypt", False)),
            parameters=parameters_to_fbs(ext.get("parameters")),
        )
        for ext in header_extensions
    ]


def rtp_parameters_from_fbs(data: Any) -> dict[str, Any]:
    codecs = []
    for codec in data.codecs or []:
        entry: dict[str, Any] = {
            "mimeType": _str(codec.mimeType),
            "payloadType": codec.payloadType,
            "clockRate": codec.clockRate,
        }
        if codec.channels is not None:
            entry["channels"] = codec.channels
        entry["parameters"] = parameters_from_fbs(codec.parameters)
        entry["rtcpFeedback"] = [
            {"type": _str(fb.type), **({"parameter": _str(fb.parameter)} if fb.parameter else {})}
            for fb in codec.rtcpFeedback or []
        ]
        codecs.append(entry)
    result: dict[str, Any] = {
        "codecs": codecs,
        "headerExtensions": [
            {
                "uri": header_extension_uri_from_fbs(ext.uri),
                "id": ext.id,
                "encrypt": bool(ext.encrypt),
                "parameters": parameters_from_fbs(ext.parameters),
            }
            for ext in data.headerExtensions or []
        ],
        "encodings": encodings_from_fbs(data.encodings),
        "rtcp": {"cname": _str(data.rtcp.cname), "reducedSize": bool(data.rtcp.reducedSize)}
        if data.rtcp is not None
        else {},
    }
    if data.mid:
        result["mid"] = _str(data.mid)
    if getattr(data, "msid", None):
        result["msid"] = _str(data.msid)
    return result


def trace_event_types_from_fbs(path: str, types: list[int] | None) -> list[str]:
    """`Producer.TraceEventType` / `Consumer.TraceEventType` numbers -> mediasoup's names ("pli")."""
    names = fbs.enum_names(path)
    return [names[t].lower() for t in types or []]


def trace_event_types_to_fbs(path: str, types: Any) -> list[int]:
    """mediasoup's enableTraceEvent() argument: a list of strings; unknown names are ignored."""
    if not isinstance(types, list):
        raise TypeError("types must be a list")
    if any(not isinstance(t, str) for t in types):
        raise TypeError("every type must be a string")
    enum = fbs.enum(path)
    return [getattr(enum, t.upper()) for t in types if t and hasattr(enum, t.upper()) and not t.startswith("_")]


def producer_dump_from_fbs(dump: Any) -> dict[str, Any]:
    """Producer.DumpResponse -> mediasoup's ProducerDump (parseProducerDump)."""
    return {
        "id": _str(dump.id),
        "kind": fbs.enum_names("RtpParameters.MediaKind")[dump.kind].lower(),
        "type": rtp_type_from_fbs(dump.type),
        "rtpParameters": rtp_parameters_from_fbs(dump.rtpParameters),
        "rtpMapping": fbs.to_plain(dump.rtpMapping),
        "rtpStreams": [flatten(fbs.to_plain(stream)) for stream in dump.rtpStreams] if dump.rtpStreams else None,
        "traceEventTypes": trace_event_types_from_fbs("Producer.TraceEventType", dump.traceEventTypes),
        "paused": bool(dump.paused),
    }


def consumer_dump_from_fbs(dump: Any) -> dict[str, Any]:
    """Consumer.DumpResponse -> mediasoup's ConsumerDump (parseConsumerDump): names and JSON RTP parameters."""
    data = dump.data
    base = data.base
    out = flatten(fbs.to_plain(data))
    out.update(
        {
            "id": _str(base.id),
            "type": rtp_type_from_fbs(base.type),
            "producerId": _str(base.producerId),
            "kind": fbs.enum_names("RtpParameters.MediaKind")[base.kind].lower(),
            "rtpParameters": rtp_parameters_from_fbs(base.rtpParameters),
            "consumableRtpEncodings": encodings_from_fbs(base.consumableRtpEncodings),
            "supportedCodecPayloadTypes": [int(pt) for pt in base.supportedCodecPayloadTypes or []],
            "traceEventTypes": trace_event_types_from_fbs("Consumer.TraceEventType", base.traceEventTypes),
            "paused": bool(base.paused),
            "producerPaused": bool(base.producerPaused),
            "priority": base.priority,
        }
    )
    return out


def rtp_mapping_to_fbs(mapping: dict[str, Any]) -> Any:
    return fbs.new(
        "RtpParameters.RtpMapping",
        codecs=[
            fbs.new(
                "RtpParameters.CodecMapping",
                payloadType=c["payloadType"],
                mappedPayloadType=c["mappedPayloadType"],
            )
            for c in mapping["codecs"]
        ],
        encodings=[_encoding_mapping_to_fbs(e) for e in mapping["encodings"]],
    )


def _encoding_mapping_to_fbs(encoding: dict[str, Any]) -> Any:
    out = fbs.new(
        "RtpParameters.EncodingMapping",
        rid=encoding.get("rid"),
        ssrc=encoding.get("ssrc"),
        mappedSsrc=encoding["mappedSsrc"],
    )
    if fbs.has("RtpParameters.EncodingMapping", "scalabilityMode"):  # 3.14 (3.27 dropped it)
        out.scalabilityMode = encoding.get("scalabilityMode")
    return out


def media_kind_to_fbs(kind: str) -> int:
    return getattr(fbs.enum("RtpParameters.MediaKind"), kind.upper())


def rtp_type_to_fbs(kind: str) -> int:
    return getattr(fbs.enum("RtpParameters.Type"), kind.upper())


def rtp_type_from_fbs(value: int) -> str:
    return fbs.enum_names("RtpParameters.Type")[value].lower()


def consumer_layers_to_fbs(layers: dict[str, Any] | None) -> Any:
    if not layers:
        return None
    return fbs.new(
        "Consumer.ConsumerLayers",
        spatialLayer=layers["spatialLayer"],
        temporalLayer=layers.get("temporalLayer"),
    )


def consumer_layers_from_fbs(layers: Any) -> dict[str, Any] | None:
    if layers is None:
        return None
    out = {"spatialLayer": layers.spatialLayer}
    if layers.temporalLayer is not None:
        out["temporalLayer"] = layers.temporalLayer
    return out


# --- transports -------------------------------------------------------------

def listen_info_to_fbs(info: dict[str, Any]) -> Any:
    protocol = fbs.enum("Transport.Protocol")
    port_range = info.get("portRange") or {}
    flags = info.get("flags") or {}
    out = fbs.new(
        "Transport.ListenInfo",
        protocol=protocol.UDP if info.get("protocol", "udp") == "udp" else protocol.TCP,
        ip=info["ip"],
        announcedAddress=info.get("announcedAddress") or info.get("announcedIp"),
        port=info.get("port", 0),
        portRange=fbs.new("Transport.PortRange", min=port_range.get("min", 0), max=port_range.get("max", 0)),
        flags=fbs.new(
            "Transport.SocketFlags",
            ipv6Only=bool(flags.get("ipv6Only", False)),
            udpReusePort=bool(flags.get("udpReusePort", False)),
        ),
        sendBufferSize=info.get("sendBufferSize", 0),
        recvBufferSize=info.get("recvBufferSize", 0),
    )
    if info.get("exposeInternalIp"):
        # 3.27+: with an announced address, also a candidate with the listening ip itself.
        if not fbs.has("Transport.ListenInfo", "exposeInternalIp"):
            raise TypeError("listen info exposeInternalIp needs mediasoup 3.27+")
        out.exposeInternalIp = True
    return out


def protocol_from_fbs(value: int) -> str:
    return fbs.enum_names("Transport.Protocol")[value].lower()


def tuple_from_fbs(t: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "localAddress": _str(t.localAddress),
        "localIp": _str(t.localAddress),
        "localPort": t.localPort,
        "protocol": protocol_from_fbs(t.protocol),
    }
    if t.remoteIp:
        out["remoteIp"] = _str(t.remoteIp)
        out["remotePort"] = t.remotePort
    return out


def sctp_parameters_from_fbs(p: Any) -> dict[str, Any] | None:
    """A transport's SctpParameters as mediasoup's Node layer gives them.

    3.14 negotiates stream counts (OS, MIS) and one maxMessageSize; 3.27's own SCTP
    stack has send/receive sizes and buffers instead, and its Node layer still
    reports OS = MIS = 65535 and maxMessageSize = maxReceiveMessageSize for
    backwards compatibility; so does this.
    """
    if p is None:
        return None
    if not hasattr(p, "maxReceiveMessageSize"):
        return {"port": p.port, "OS": p.os, "MIS": p.mis, "maxMessageSize": p.maxMessageSize}
    return {
        "port": p.port,
        "maxSendMessageSize": p.maxSendMessageSize,
        "maxReceiveMessageSize": p.maxReceiveMessageSize,
        "sendBufferSize": p.sendBufferSize,
        "perStreamSendQueueLimit": p.perStreamSendQueueLimit,
        "maxReceiverWindowBufferSize": p.maxReceiverWindowBufferSize,
        "isDataChannel": bool(p.isDataChannel),
        "OS": 65535,
        "MIS": 65535,
        "maxMessageSize": p.maxReceiveMessageSize,
    }


def sctp_negotiated_capabilities_from_fbs(p: Any) -> dict[str, int] | None:
    if p is None:
        return None
    return {
        "negotiatedMaxOutboundStreams": p.negotiatedMaxOutboundStreams,
        "negotiatedMaxInboundStreams": p.negotiatedMaxInboundStreams,
    }


SCTP_DEFAULTS: dict[str, int] = {
    "max_send_message_size": 262_144,
    "max_receive_message_size": 262_144,
    "sctp_send_buffer_size": 2_000_000,
    "sctp_per_stream_send_queue_limit": 2_000_000,
    "sctp_max_receiver_window_buffer_size": 5_242_880,
    "sctp_default_stream_buffered_amount_low_threshold": 1024,
}
"""3.27's Node defaults for the SCTP transport options (the same for every transport kind)."""


def sctp_options_to_fbs(
    *,
    enable_sctp: bool,
    num_sctp_streams: dict[str, int] | None,
    max_sctp_message_size: int | None,
    options: dict[str, int | None],
    defaults_3_14: tuple[int, int],
) -> dict[str, Any]:
    """The SCTP fields of `Transport.Options` for this worker version.

    `options` holds 3.27's keyword arguments (SCTP_DEFAULTS' names; None = default);
    3.14's `num_sctp_streams` and `max_sctp_message_size` are accepted by both:
    on 3.27 the latter sets both message sizes, the former has no counterpart
    (3.27 always offers 65535 streams) and is ignored, as 3.27's Node layer does.
    `defaults_3_14` is the transport kind's 3.14 (max message size, send buffer size).
    """
    if fbs.has("Transport.Options", "numSctpStreams"):  # 3.14
        streams = num_sctp_streams or {"OS": 1024, "MIS": 1024}
        return {
            "enableSctp": enable_sctp,
            "numSctpStreams": fbs.new("SctpParameters.NumSctpStreams", os=streams["OS"], mis=streams["MIS"]),
            "maxSctpMessageSize": max_sctp_message_size or defaults_3_14[0],
            "sctpSendBufferSize": options.get("sctp_send_buffer_size") or defaults_3_14[1],
        }
    values = {key: options.get(key) or default for key, default in SCTP_DEFAULTS.items()}
    if max_sctp_message_size:
        values["max_send_message_size"] = values["max_receive_message_size"] = max_sctp_message_size
    return {
        "enableSctp": enable_sctp,
        "maxSendMessageSize": values["max_send_message_size"],
        "maxReceiveMessageSize": values["max_receive_message_size"],
        "sctpSendBufferSize": values["sctp_send_buffer_size"],
        "sctpPerStreamSendQueueLimit": values["sctp_per_stream_send_queue_limit"],
        "sctpMaxReceiverWindowBufferSize": values["sctp_max_receiver_window_buffer_size"],
        "sctpDefaultStreamBufferedAmountLowThreshold": values["sctp_default_stream_buffered_amount_low_threshold"],
    }


def direct_options_to_fbs(max_message_size: int | None, options: dict[str, int | None]) -> dict[str, Any]:
    """A DirectTransport's message-size fields of `Transport.Options` for this worker version."""
    if fbs.has("Transport.Options", "maxMessageSize"):  # 3.14
        return {"maxMessageSize": max_message_size or 262_144}
    send = options.get("max_send_message_size") or max_message_size or SCTP_DEFAULTS["max_send_message_size"]
    receive = options.get("max_receive_message_size") or max_message_size or SCTP_DEFAULTS["max_receive_message_size"]
    return {"maxSendMessageSize": send, "maxReceiveMessageSize": receive}


def data_consumer_type_path() -> str:
    """Where this version's schema keeps the data consumer type enum (3.27 gave consumers their own)."""
    return "DataConsumer.Type" if fbs.has("DataConsumer.Type") else "DataProducer.Type"


def dtls_parameters_to_fbs(params: dict[str, Any]) -> Any:
    algorithm = fbs.enum("WebRtcTransport.FingerprintAlgorithm")
    role = fbs.enum("WebRtcTransport.DtlsRole")
    fingerprints = []
    for fp in params.get("fingerprints") or []:
        name = str(fp["algorithm"]).replace("-", "").upper()
        if not hasattr(algorithm, name):
            raise TypeError(f"invalid DTLS fingerprint algorithm {fp['algorithm']!r}")
        fingerprints.append(
            fbs.new("WebRtcTransport.Fingerprint", algorithm=getattr(algorithm, name), value=fp["value"])
        )
    return fbs.new(
        "WebRtcTransport.DtlsParameters",
        fingerprints=fingerprints,
        role=_dtls_role_to_fbs(role, params.get("role", "auto")),
    )


def _dtls_role_to_fbs(role: Any, name: Any) -> int:
    if not isinstance(name, str) or not hasattr(role, name.upper()) or name.startswith("_"):
        raise TypeError(f"invalid DTLS role {name!r} (auto, client or server)")
    return int(getattr(role, name.upper()))


def dtls_parameters_from_fbs(p: Any) -> dict[str, Any]:
    algorithms = fbs.enum_names("WebRtcTransport.FingerprintAlgorithm")
    roles = fbs.enum_names("WebRtcTransport.DtlsRole")
    return {
        "fingerprints": [
            {"algorithm": _fingerprint_algorithm_name(algorithms[fp.algorithm]), "value": _str(fp.value)}
            for fp in p.fingerprints or []
        ],
        "role": roles[p.role].lower(),
    }


def _fingerprint_algorithm_name(fbs_name: str) -> str:
    return fbs_name.lower().replace("sha", "sha-")


def ice_parameters_from_fbs(p: Any) -> dict[str, Any]:
    return {"usernameFragment": _str(p.usernameFragment), "password": _str(p.password), "iceLite": bool(p.iceLite)}


def ice_candidates_from_fbs(candidates: list[Any] | None) -> list[dict[str, Any]]:
    out = []
    for c in candidates or []:
        candidate: dict[str, Any] = {
            "foundation": _str(c.foundation),
            "priority": c.priority,
            "address": _str(c.address),
            "ip": _str(c.address),
            "protocol": protocol_from_fbs(c.protocol),
            "port": c.port,
            "type": "host",
        }
        if c.tcpType is not None:
            candidate["tcpType"] = "passive"
        out.append(candidate)
    return out


def srtp_parameters_to_fbs(params: dict[str, Any]) -> Any:
    suite = fbs.enum("SrtpParameters.SrtpCryptoSuite")
    if (
        not isinstance(params, dict)
        or not isinstance(params.get("cryptoSuite"), str)
        or not hasattr(suite, params["cryptoSuite"])
        or params["cryptoSuite"].startswith("_")
        or not isinstance(params.get("keyBase64"), str)
    ):
        raise TypeError(f"invalid srtp_parameters {params!r} (a dict with cryptoSuite and keyBase64)")
    return fbs.new(
        "SrtpParameters.SrtpParameters",
        cryptoSuite=getattr(suite, params["cryptoSuite"]),
        keyBase64=params["keyBase64"],
    )


def srtp_parameters_from_fbs(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "cryptoSuite": fbs.enum_names("SrtpParameters.SrtpCryptoSuite")[p.cryptoSuite],
        "keyBase64": _str(p.keyBase64),
    }


# --- dumps and stats ----------------------------------------------------------

_ENUM_FIELDS = {
    "iceRole": "WebRtcTransport.IceRole",
    "iceState": "WebRtcTransport.IceState",
    "dtlsState": "WebRtcTransport.DtlsState",
    "sctpState": "SctpAssociation.SctpState",
    "kind": "RtpParameters.MediaKind",
    "protocol": "Transport.Protocol",
}


def flatten(plain: Any) -> Any:
    """Merge the schema's nesting (`base`, `data`) into one level, as mediasoup's parsers do."""
    if isinstance(plain, list):
        return [flatten(item) for item in plain]
    if not isinstance(plain, dict):
        return plain
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key in ("base", "data") and isinstance(value, dict):
            out.update(flatten(value))
        else:
            out[key] = flatten(value)
    return out


def name_enums(plain: dict[str, Any]) -> dict[str, Any]:
    """Enum numbers of well-known fields -> mediasoup's lowercase names ("connected", "video")."""
    out = dict(plain)
    for key, path in _ENUM_FIELDS.items():
        if isinstance(out.get(key), int) and not isinstance(out.get(key), bool):
            out[key] = fbs.enum_names(path)[out[key]].lower()
    for key in ("iceSelectedTuple", "tuple", "rtcpTuple"):
        if isinstance(out.get(key), dict):
            out[key] = name_enums(out[key])
    return out


_TRANSPORT_FIELD_PARSERS = {
    "iceParameters": lambda v: ice_parameters_from_fbs(v),
    "iceCandidates": lambda v: ice_candidates_from_fbs(v),
    "dtlsParameters": lambda v: dtls_parameters_from_fbs(v),
    "iceSelectedTuple": lambda v: tuple_from_fbs(v),
    "tuple": lambda v: tuple_from_fbs(v),
    "rtcpTuple": lambda v: tuple_from_fbs(v),
    "srtpParameters": lambda v: srtp_parameters_from_fbs(v),
}


def _transport_fields(response: Any, out: dict[str, Any]) -> dict[str, Any]:
    """The kind-specific fields of a transport dump or stats as mediasoup's parsers give them."""
    for key, parse in _TRANSPORT_FIELD_PARSERS.items():
        if hasattr(response, key):
            value = getattr(response, key)
            out[key] = parse(value) if value is not None else None
    return name_enums(out)


def transport_dump_from_fbs(dump: Any) -> dict[str, Any]:
    """A transport kind's DumpResponse -> mediasoup's dump (parseBaseTransportDump + the kind's own fields)."""
    out = flatten(fbs.to_plain(dump))
    base = dump.base
    out["sctpParameters"] = sctp_parameters_from_fbs(base.sctpParameters)
    out["traceEventTypes"] = trace_event_types_from_fbs("Transport.TraceEventType", base.traceEventTypes)
    return _transport_fields(dump, out)


def transport_stats_from_fbs(stats: Any) -> dict[str, Any]:
    """A transport kind's GetStatsResponse -> mediasoup's stats entry (without its "type")."""
    return _transport_fields(stats, flatten(fbs.to_plain(stats)))


def rtp_stream_stats_from_fbs(stats: list[Any] | None) -> list[dict[str, Any]]:
    """RtpStream.Stats entries -> mediasoup's inbound-rtp / outbound-rtp stats dicts."""
    kinds = fbs.enum("RtpStream.StatsData")
    out = []
    for entry in stats or []:
        kind = "inbound-rtp" if entry.dataType == kinds.RecvStats else "outbound-rtp"
        out.append({"type": kind, **name_enums(flatten(fbs.to_plain(entry.data)))})
    return out


def sctp_stream_parameters_to_fbs(params: dict[str, Any] | None) -> Any:
    if params is None:
        return None
    return fbs.new(
        "SctpParameters.SctpStreamParameters",
        streamId=params["streamId"],
        ordered=params.get("ordered"),
        maxPacketLifeTime=params.get("maxPacketLifeTime"),
        maxRetransmits=params.get("maxRetransmits"),
    )


def subchannels_to_fbs(subchannels: list[int] | None) -> list[int] | None:
    """Subchannels are uint16 on the wire; mediasoup's builder keeps the low 16 bits (65536 -> 0)."""
    if subchannels is None:
        return None
    if not isinstance(subchannels, list) or any(not isinstance(s, int) or isinstance(s, bool) for s in subchannels):
        raise TypeError("subchannels must be a list of ints")
    return [s & 0xFFFF for s in subchannels]


def data_dump_from_fbs(dump: Any, type_path: str = "DataProducer.Type") -> dict[str, Any]:
    """DataProducer / DataConsumer DumpResponse -> mediasoup's dump ("sctp"/"direct", JSON stream parameters)."""
    out = fbs.to_plain(dump)
    out["type"] = fbs.enum_names(type_path)[dump.type].lower()
    out["sctpStreamParameters"] = sctp_stream_parameters_from_fbs(dump.sctpStreamParameters)
    return out


def sctp_stream_parameters_from_fbs(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    out: dict[str, Any] = {"streamId": p.streamId}
    for key in ("ordered", "maxPacketLifeTime", "maxRetransmits"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key)
    return out
