"""Server-side ORTC logic, a faithful port of mediasoup 3.14.16's ``ortc.js``.

Everything works on JSON-shaped dicts with mediasoup's camelCase keys so that
capabilities and parameters pass unchanged between clients (mediasoup-client,
pymediasoup, ...), this layer and the worker. Following ``ortc.js``:

* The ``validate_*`` functions **mutate their argument**: they fill in the same
  defaults mediasoup fills (``parameters: {}``, ``rtcpFeedback: []``,
  ``channels: 1`` for audio, ``reducedSize: True`` ...) and raise ``TypeError``
  (mediasoup throws ``TypeError``) naming the offending field. Callers that must
  not see their input changed pass ``clone(x)`` instead.
* ``get_producer_rtp_parameters_mapping`` may rewrite an H264
  ``profile-level-id`` in the Producer's parameters to the negotiated answer.
* Results are built the way mediasoup builds them: where ``ortc.js`` clones
  (``utils.clone``) we deep-copy, and where it shares an object (for instance
  the consumable codec's ``parameters`` are the Producer's own dict, the
  consumer's ``rtcp`` is the consumable one) we share it too.

JavaScript's truthiness differs from Python's (``[]`` and ``{}`` are truthy,
``typeof`` distinguishes ``true`` from ``1``), so the checks below go through
``_truthy`` and ``_is_number`` to accept and reject exactly what mediasoup does.
``None`` stands for both ``undefined`` and JSON ``null``.

H264 profile handling mirrors the npm ``h264-profile-level-id`` 2.0.0 used by
mediasoup (see ``_h264_is_same_profile``); it is kept here instead of importing
the ``h264_profile_level_id`` package pymediasoup depends on because that port
(1.0.0, of the older JS library) lacks the PredictiveHigh444 profile (``f4``),
treats an empty ``profile-level-id`` as invalid rather than as absent, and
raises instead of answering "not the same profile" for non-string values.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
from typing import Any, Literal, TypeVar

from media.errors import UnsupportedError
from media.memo import JsonMemo
from media.scalability_modes import parse_scalability_mode
from media.supported_rtp_capabilities import SUPPORTED_RTP_CAPABILITIES
from rope.values import copied

__all__ = [
    "MediaKind",
    "NumSctpStreams",
    "RtcpFeedback",
    "RtcpParameters",
    "RtpCapabilities",
    "RtpCodecCapability",
    "RtpCodecParameters",
    "RtpEncodingParameters",
    "RtpHeaderExtension",
    "RtpHeaderExtensionParameters",
    "RtpMapping",
    "RtpParameters",
    "SctpCapabilities",
    "SctpParameters",
    "SctpStreamParameters",
    "can_consume",
    "clone",
    "generate_random_number",
    "generate_router_rtp_capabilities",
    "get_consumable_rtp_parameters",
    "get_consumer_rtp_parameters",
    "get_pipe_consumer_rtp_parameters",
    "get_producer_rtp_parameters_mapping",
    "is_rtx_codec",
    "match_codecs",
    "validate_numsctp_streams",
    "validate_rtcp_feedback",
    "validate_rtcp_parameters",
    "validate_rtp_capabilities",
    "validate_rtp_codec_capability",
    "validate_rtp_codec_parameters",
    "validate_rtp_encoding_parameters",
    "validate_rtp_header_extension",
    "validate_rtp_header_extension_parameters",
    "validate_rtp_parameters",
    "validate_sctp_capabilities",
    "validate_sctp_parameters",
    "validate_sctp_stream_parameters",
    "validated_rtp_capabilities",
]

# JSON shapes, named after mediasoup's TypeScript types.
MediaKind = Literal["audio", "video"]
RtpCapabilities = dict[str, Any]
RtpCodecCapability = dict[str, Any]
RtcpFeedback = dict[str, Any]
RtpHeaderExtension = dict[str, Any]
RtpParameters = dict[str, Any]
RtpCodecParameters = dict[str, Any]
RtpHeaderExtensionParameters = dict[str, Any]
RtpEncodingParameters = dict[str, Any]
RtcpParameters = dict[str, Any]
RtpMapping = dict[str, Any]
"""``{"codecs": [{"payloadType", "mappedPayloadType"}],
"encodings": [{"mappedSsrc", "rid"?, "ssrc"?, "scalabilityMode"?}]}``."""
SctpCapabilities = dict[str, Any]
NumSctpStreams = dict[str, Any]
SctpParameters = dict[str, Any]
SctpStreamParameters = dict[str, Any]

_T = TypeVar("_T")

# Order matters: 100-127 are handed out first, 96-99 last (as mediasoup does).
DYNAMIC_PAYLOAD_TYPES: tuple[int, ...] = (*range(100, 128), 96, 97, 98, 99)

_MIME_TYPE_RE = re.compile(r"^(audio|video)/(.+)", re.IGNORECASE)
_RTX_MIME_TYPE_RE = re.compile(r".+/rtx\Z", re.IGNORECASE)

_MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
_ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
_TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
_ABS_CAPTURE_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
_DEPENDENCY_DESCRIPTOR_URI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
_ABS_CAPTURE_TIME_ONLY_IF_PRODUCED = any(
    ext["uri"] == _DEPENDENCY_DESCRIPTOR_URI for ext in SUPPORTED_RTP_CAPABILITIES["headerExtensions"]
)
"""3.27's ortc forwards abs-capture-time only when the Producer sends it; 3.14's always
(told apart by 3.27's table, the first to list the dependency descriptor)."""
_PIPE_DEPENDENCY_DESCRIPTOR: dict[str, Any] | None = next(
    (
        {"uri": ext["uri"], "id": ext["preferredId"], "encrypt": ext["preferredEncrypt"], "parameters": {}}
        for ext in SUPPORTED_RTP_CAPABILITIES["headerExtensions"]
        if ext["uri"] == _DEPENDENCY_DESCRIPTOR_URI and ext.get("direction") != "sendrecv"
    ),
    None,
)
"""The header extension 3.27 adds to every pipe consumer (None with 3.14's table)."""


# --------------------------------------------------------------------------
# JavaScript semantics helpers.
# --------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    """JavaScript truthiness: only None, False, 0, NaN and "" are falsy (``[]``/``{}`` are truthy)."""
    if value is None or value is False:
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _is_number(value: Any) -> bool:
    """``typeof value === 'number'``; Python's bool is an int but JSON's true is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _or_zero(value: Any) -> Any:
    """``value || 0``."""
    return value if _truthy(value) else 0


def clone(value: _T) -> _T:
    """Deep copy, as mediasoup's ``utils.clone`` (structuredClone) does before mutating.

    RTP parameters and capabilities are JSON shapes: ``copy.deepcopy``'s memo and
    dispatch cost about a fifth of every ``consume()`` (profiled with
    ``bench.control_plane``); orjson copies them fastest (`rope.values.copied`), and
    what JSON would change is copied by hand (a tuple, an application's own object in
    app data: deepcopy).
    """
    return copied(value, _clone_json)


_SCALARS = (str, int, float, bool, type(None))


def _clone_json(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _SCALARS else _clone_json(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _SCALARS else _clone_json(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def generate_random_number() -> int:
    """A random SSRC in [100000000, 999999999), like ``utils.generateRandomNumber``.

    A CSPRNG as Node's ``crypto.randomInt``: SSRCs should not be guessable across sessions.
    """
    return 100_000_000 + secrets.randbelow(999_999_999 - 100_000_000)


# --------------------------------------------------------------------------
# Validation. Each validator fills defaults in place and raises TypeError.
# --------------------------------------------------------------------------


def validate_rtp_capabilities(caps: RtpCapabilities) -> None:
    """Validate RtpCapabilities, filling missing ``codecs``/``headerExtensions`` with ``[]``."""
    if not isinstance(caps, dict):
        raise TypeError("caps is not an object")
    # codecs is optional. If unset, fill with an empty array.
    codecs = caps.get("codecs")
    if _truthy(codecs) and not isinstance(codecs, list):
        raise TypeError("caps.codecs is not an array")
    if not _truthy(codecs):
        caps["codecs"] = []
    for codec in caps["codecs"]:
        validate_rtp_codec_capability(codec)
    # headerExtensions is optional. If unset, fill with an empty array.
    header_extensions = caps.get("headerExtensions")
    if _truthy(header_extensions) and not isinstance(header_extensions, list):
        raise TypeError("caps.headerExtensions is not an array")
    if not _truthy(header_extensions):
        caps["headerExtensions"] = []
    for ext in caps["headerExtensions"]:
        validate_rtp_header_extension(ext)


_VALIDATED: JsonMemo[RtpCapabilities] = JsonMemo(32)
"""Capabilities as given -> their validated copy (see `validated_rtp_capabilities`)."""
_last_validated: tuple[Any, Any, RtpCapabilities] | None = None
"""(the dict last given, a copy of it as given or None, its validated copy): the one-object fast path."""


def validated_rtp_capabilities(caps: Any) -> RtpCapabilities:
    """A validated copy of ``caps``, shared by every call with the same capabilities: never mutate it.

    Every ``consume()`` used to clone and validate the endpoint's capabilities
    (the router's hold ~20 codecs and header extensions): a fifth of its CPU,
    though an application passes the same few capabilities over and over. A hit
    must have been given exactly this input (`media.memo.JsonMemo`: the same JSON,
    which tells ``True`` from ``1`` and ``1`` from ``1.0``, and an input ``==`` to
    that JSON read back, which tells a tuple from a list and a NaN from a null).
    What JSON cannot hold as it is gets validated afresh on every call, and so do
    invalid capabilities, which raise TypeError each time.

    Fast path (a tenth of the key's cost): the very dict of the last call, still
    ``==`` to what it was. The one change that can slip past ``==`` is a number
    turned in place into an equal bool or float (``1`` -> ``True``), which then
    gets the answer for the number instead of a TypeError.
    """
    global _last_validated
    last = _last_validated
    if last is not None and last[0] is caps and last[1] is not None and last[1] == caps:
        return last[2]
    if type(caps) is not dict:
        validate_rtp_capabilities(caps)  # raises the right TypeError
    found = _VALIDATED.get([caps], lambda: _validated_copy(caps))
    # Snapshot a dict only once it comes back (a fresh dict per call, e.g. parsed from JSON, never will).
    _last_validated = (caps, clone(caps) if last is not None and last[0] is caps else None, found)
    return found


def _validated_copy(caps: RtpCapabilities) -> RtpCapabilities:
    found = clone(caps)
    validate_rtp_capabilities(found)
    return found


def _is_validated(caps: Any) -> bool:
    """Whether ``caps`` is one of `validated_rtp_capabilities`' shared copies (nothing left to fill in)."""
    return _VALIDATED.holds(caps)


def _validate_codec_parameters_and_feedback(codec: dict[str, Any]) -> None:
    """Shared tail of the codec capability and codec parameters validators."""
    # parameters is optional. If unset, set it to an empty object.
    if not isinstance(codec.get("parameters"), dict):
        codec["parameters"] = {}
    parameters: dict[str, Any] = codec["parameters"]
    for key, value in parameters.items():
        # None is JSON null here, which mediasoup rejects (only undefined becomes "").
        if not isinstance(value, str) and not _is_number(value):
            raise TypeError(f"invalid codec parameter [key:{key}, value:{value!r}]")
        # Specific parameters validation.
        if key == "apt" and not _is_number(value):
            raise TypeError(f"invalid codec apt parameter [value:{value!r}]")
    # rtcpFeedback is optional. If unset, set it to an empty array.
    if not isinstance(codec.get("rtcpFeedback"), list):
        codec["rtcpFeedback"] = []
    for fb in codec["rtcpFeedback"]:
        validate_rtcp_feedback(fb)


def validate_rtp_codec_capability(codec: RtpCodecCapability) -> None:
    """Validate an RtpCodecCapability.

    ``kind`` is always overwritten from the mimeType, so a mismatching kind
    cannot slip through; ``channels`` defaults to 1 for audio and is dropped
    for video.
    """
    if not isinstance(codec, dict):
        raise TypeError("codec is not an object")
    # mimeType is mandatory.
    mime_type = codec.get("mimeType")
    if not _truthy(mime_type) or not isinstance(mime_type, str):
        raise TypeError("missing codec.mimeType")
    match = _MIME_TYPE_RE.match(mime_type)
    if not match:
        raise TypeError(f"invalid codec.mimeType [mimeType:{mime_type}]")
    # Just override kind with media component of mimeType.
    codec["kind"] = match.group(1).lower()
    # preferredPayloadType is optional.
    preferred_payload_type = codec.get("preferredPayloadType")
    if _truthy(preferred_payload_type) and not _is_number(preferred_payload_type):
        raise TypeError("invalid codec.preferredPayloadType")
    # clockRate is mandatory.
    if not _is_number(codec.get("clockRate")):
        raise TypeError("missing codec.clockRate")
    # channels is optional. If unset, set it to 1 (just if audio).
    if codec["kind"] == "audio":
        if not _is_number(codec.get("channels")):
            codec["channels"] = 1
    else:
        codec.pop("channels", None)
    _validate_codec_parameters_and_feedback(codec)


def validate_rtcp_feedback(fb: RtcpFeedback) -> None:
    """Validate an RtcpFeedback entry; a missing ``parameter`` becomes ``""``."""
    if not isinstance(fb, dict):
        raise TypeError("fb is not an object")
    # type is mandatory.
    fb_type = fb.get("type")
    if not _truthy(fb_type) or not isinstance(fb_type, str):
        raise TypeError("missing fb.type")
    # parameter is optional. If unset set it to an empty string.
    parameter = fb.get("parameter")
    if not _truthy(parameter) or not isinstance(parameter, str):
        fb["parameter"] = ""


def validate_rtp_header_extension(ext: RtpHeaderExtension) -> None:
    """Validate an RtpHeaderExtension capability (``preferredEncrypt`` False, ``direction`` sendrecv by default)."""
    if not isinstance(ext, dict):
        raise TypeError("ext is not an object")
    if ext.get("kind") not in ("audio", "video"):
        raise TypeError(f"invalid ext.kind [kind:{ext.get('kind')!r}]")
    # uri is mandatory.
    uri = ext.get("uri")
    if not _truthy(uri) or not isinstance(uri, str):
        raise TypeError("missing ext.uri")
    # preferredId is mandatory.
    if not _is_number(ext.get("preferredId")):
        raise TypeError("missing ext.preferredId")
    # preferredEncrypt is optional. If unset set it to false.
    preferred_encrypt = ext.get("preferredEncrypt")
    if _truthy(preferred_encrypt) and not isinstance(preferred_encrypt, bool):
        raise TypeError("invalid ext.preferredEncrypt")
    if not _truthy(preferred_encrypt):
        ext["preferredEncrypt"] = False
    # direction is optional. If unset set it to sendrecv.
    direction = ext.get("direction")
    if _truthy(direction) and not isinstance(direction, str):
        raise TypeError("invalid ext.direction")
    if not _truthy(direction):
        ext["direction"] = "sendrecv"


def validate_rtp_parameters(params: RtpParameters) -> None:
    """Validate RtpParameters, filling ``headerExtensions``/``encodings`` (``[]``) and ``rtcp`` (``{}``)."""
    if not isinstance(params, dict):
        raise TypeError("params is not an object")
    # mid is optional.
    mid = params.get("mid")
    if _truthy(mid) and not isinstance(mid, str):
        raise TypeError("params.mid is not a string")
    if _truthy(params.get("msid")) and not isinstance(params["msid"], str):
        raise TypeError("params.msid is not a string")
    # codecs is mandatory.
    if not isinstance(params.get("codecs"), list):
        raise TypeError("missing params.codecs")
    for codec in params["codecs"]:
        validate_rtp_codec_parameters(codec)
    # headerExtensions is optional. If unset, fill with an empty array.
    header_extensions = params.get("headerExtensions")
    if _truthy(header_extensions) and not isinstance(header_extensions, list):
        raise TypeError("params.headerExtensions is not an array")
    if not _truthy(header_extensions):
        params["headerExtensions"] = []
    for ext in params["headerExtensions"]:
        validate_rtp_header_extension_parameters(ext)
    # encodings is optional. If unset, fill with an empty array.
    encodings = params.get("encodings")
    if _truthy(encodings) and not isinstance(encodings, list):
        raise TypeError("params.encodings is not an array")
    if not _truthy(encodings):
        params["encodings"] = []
    for encoding in params["encodings"]:
        validate_rtp_encoding_parameters(encoding)
    # rtcp is optional. If unset, fill with an empty object.
    rtcp = params.get("rtcp")
    if _truthy(rtcp) and not isinstance(rtcp, dict):
        raise TypeError("params.rtcp is not an object")
    if not _truthy(rtcp):
        params["rtcp"] = {}
    validate_rtcp_parameters(params["rtcp"])


def validate_rtp_codec_parameters(codec: RtpCodecParameters) -> None:
    """Validate RtpCodecParameters; like the capability check but with a mandatory ``payloadType``."""
    if not isinstance(codec, dict):
        raise TypeError("codec is not an object")
    # mimeType is mandatory.
    mime_type = codec.get("mimeType")
    if not _truthy(mime_type) or not isinstance(mime_type, str):
        raise TypeError("missing codec.mimeType")
    match = _MIME_TYPE_RE.match(mime_type)
    if not match:
        raise TypeError(f"invalid codec.mimeType [mimeType:{mime_type}]")
    # payloadType is mandatory.
    if not _is_number(codec.get("payloadType")):
        raise TypeError("missing codec.payloadType")
    # clockRate is mandatory.
    if not _is_number(codec.get("clockRate")):
        raise TypeError("missing codec.clockRate")
    kind = match.group(1).lower()
    # channels is optional. If unset, set it to 1 (just if audio).
    if kind == "audio":
        if not _is_number(codec.get("channels")):
            codec["channels"] = 1
    else:
        codec.pop("channels", None)
    _validate_codec_parameters_and_feedback(codec)


def validate_rtp_header_extension_parameters(ext: RtpHeaderExtensionParameters) -> None:
    """Validate RtpHeaderExtensionParameters (``encrypt`` False and ``parameters`` {} by default)."""
    if not isinstance(ext, dict):
        raise TypeError("ext is not an object")
    # uri is mandatory.
    uri = ext.get("uri")
    if not _truthy(uri) or not isinstance(uri, str):
        raise TypeError("missing ext.uri")
    # id is mandatory.
    if not _is_number(ext.get("id")):
        raise TypeError("missing ext.id")
    # encrypt is optional. If unset set it to false.
    encrypt = ext.get("encrypt")
    if _truthy(encrypt) and not isinstance(encrypt, bool):
        raise TypeError("invalid ext.encrypt")
    if not _truthy(encrypt):
        ext["encrypt"] = False
    # parameters is optional. If unset, set it to an empty object.
    if not isinstance(ext.get("parameters"), dict):
        ext["parameters"] = {}
    for key, value in ext["parameters"].items():
        if not isinstance(value, str) and not _is_number(value):
            raise TypeError(f"invalid header extension parameter [key:{key}, value:{value!r}]")


def validate_rtp_encoding_parameters(encoding: RtpEncodingParameters) -> None:
    """Validate RtpEncodingParameters (``dtx`` defaults to False)."""
    if not isinstance(encoding, dict):
        raise TypeError("encoding is not an object")
    # ssrc is optional.
    ssrc = encoding.get("ssrc")
    if _truthy(ssrc) and not _is_number(ssrc):
        raise TypeError("invalid encoding.ssrc")
    # rid is optional.
    rid = encoding.get("rid")
    if _truthy(rid) and not isinstance(rid, str):
        raise TypeError("invalid encoding.rid")
    # rtx is optional.
    rtx = encoding.get("rtx")
    if _truthy(rtx) and not isinstance(rtx, dict):
        raise TypeError("invalid encoding.rtx")
    if isinstance(rtx, dict) and not _is_number(rtx.get("ssrc")):
        # RTX ssrc is mandatory if rtx is present.
        raise TypeError("missing encoding.rtx.ssrc")
    # dtx is optional. If unset set it to false.
    dtx = encoding.get("dtx")
    if not _truthy(dtx) or not isinstance(dtx, bool):
        encoding["dtx"] = False
    # scalabilityMode is optional.
    scalability_mode = encoding.get("scalabilityMode")
    if _truthy(scalability_mode) and not isinstance(scalability_mode, str):
        raise TypeError("invalid encoding.scalabilityMode")


def validate_rtcp_parameters(rtcp: RtcpParameters) -> None:
    """Validate RtcpParameters.

    As in mediasoup, ``reducedSize`` is forced to True unless it is True
    already: an explicit ``False`` is overwritten too (upstream behaviour, kept
    because the worker is only ever driven with reduced-size RTCP by mediasoup).
    """
    if not isinstance(rtcp, dict):
        raise TypeError("rtcp is not an object")
    # cname is optional.
    cname = rtcp.get("cname")
    if _truthy(cname) and not isinstance(cname, str):
        raise TypeError("invalid rtcp.cname")
    # reducedSize is optional. If unset set it to true.
    reduced_size = rtcp.get("reducedSize")
    if not _truthy(reduced_size) or not isinstance(reduced_size, bool):
        rtcp["reducedSize"] = True


def validate_sctp_capabilities(caps: SctpCapabilities) -> None:
    """Validate SctpCapabilities (``{"numStreams": {"OS", "MIS"}}``).

    Not in mediasoup 3.14's ortc.js any more; ported from earlier mediasoup /
    mediasoup-client so that client-sent SCTP capabilities are checked the same way.
    """
    if not isinstance(caps, dict):
        raise TypeError("caps is not an object")
    # numStreams is mandatory.
    num_streams = caps.get("numStreams")
    if not _truthy(num_streams) or not isinstance(num_streams, dict):
        raise TypeError("missing caps.numStreams")
    validate_numsctp_streams(num_streams)


def validate_numsctp_streams(num_streams: NumSctpStreams) -> None:
    """Validate NumSctpStreams: both ``OS`` and ``MIS`` are mandatory numbers."""
    if not isinstance(num_streams, dict):
        raise TypeError("numStreams is not an object")
    # OS is mandatory.
    if not _is_number(num_streams.get("OS")):
        raise TypeError("missing numStreams.OS")
    # MIS is mandatory.
    if not _is_number(num_streams.get("MIS")):
        raise TypeError("missing numStreams.MIS")


def validate_sctp_parameters(params: SctpParameters) -> None:
    """Validate SctpParameters: ``port``, ``OS``, ``MIS`` and ``maxMessageSize`` are mandatory numbers.

    Like ``validate_sctp_capabilities``, ported from earlier mediasoup versions.
    """
    if not isinstance(params, dict):
        raise TypeError("params is not an object")
    for key in ("port", "OS", "MIS", "maxMessageSize"):
        if not _is_number(params.get(key)):
            raise TypeError(f"missing params.{key}")


def validate_sctp_stream_parameters(params: SctpStreamParameters) -> None:
    """Validate SctpStreamParameters.

    ``ordered`` defaults to True, or to False when a partial-reliability limit
    (``maxPacketLifeTime``/``maxRetransmits``) is given, since an ordered
    stream cannot drop messages.
    """
    if not isinstance(params, dict):
        raise TypeError("params is not an object")
    # streamId is mandatory.
    if not _is_number(params.get("streamId")):
        raise TypeError("missing params.streamId")
    # ordered is optional.
    ordered_given = isinstance(params.get("ordered"), bool)
    if not ordered_given:
        params["ordered"] = True
    # maxPacketLifeTime is optional.
    max_packet_life_time = params.get("maxPacketLifeTime")
    if _truthy(max_packet_life_time) and not _is_number(max_packet_life_time):
        raise TypeError("invalid params.maxPacketLifeTime")
    # maxRetransmits is optional.
    max_retransmits = params.get("maxRetransmits")
    if _truthy(max_retransmits) and not _is_number(max_retransmits):
        raise TypeError("invalid params.maxRetransmits")
    if _truthy(max_packet_life_time) and _truthy(max_retransmits):
        raise TypeError("cannot provide both maxPacketLifeTime and maxRetransmits")
    partially_reliable = _truthy(max_packet_life_time) or _truthy(max_retransmits)
    if ordered_given and params["ordered"] and partially_reliable:
        raise TypeError("cannot be ordered with maxPacketLifeTime or maxRetransmits")
    if not ordered_given and partially_reliable:
        params["ordered"] = False


# --------------------------------------------------------------------------
# Router capabilities and Producer/Consumer parameters.
# --------------------------------------------------------------------------


def generate_router_rtp_capabilities(media_codecs: list[RtpCodecCapability] | None = None) -> RtpCapabilities:
    """Build a Router's RTP capabilities from the media codecs it is created with.

    Each media codec must match a supported codec; it keeps its
    ``preferredPayloadType`` if given, otherwise gets the supported static one
    or the next free dynamic one, and every video codec gets an RTX companion.
    The given media codecs are validated (hence normalised) in place. Unlike
    mediasoup, the shared ``SUPPORTED_RTP_CAPABILITIES`` constant is normalised
    on a copy rather than in place, which yields the same result.

    Raises ``UnsupportedError`` for an unknown codec, ``TypeError`` for invalid
    input or duplicated payload types, and ``RuntimeError`` (a plain ``Error``
    in mediasoup) when dynamic payload types run out.
    """
    if media_codecs is None:
        media_codecs = []
    if not isinstance(media_codecs, list | tuple):
        raise TypeError("mediaCodecs must be an Array")
    # Normalize supported RTP capabilities.
    supported = clone(SUPPORTED_RTP_CAPABILITIES)
    validate_rtp_capabilities(supported)
    dynamic_payload_types = list(DYNAMIC_PAYLOAD_TYPES)
    caps: RtpCapabilities = {"codecs": [], "headerExtensions": supported["headerExtensions"]}

    for media_codec in media_codecs:
        # This may throw.
        validate_rtp_codec_capability(media_codec)
        matched_supported_codec = next(
            (sc for sc in supported["codecs"] if match_codecs(media_codec, sc, strict=False)), None
        )
        if matched_supported_codec is None:
            raise UnsupportedError(f"media codec not supported [mimeType:{media_codec['mimeType']}]")
        # Clone the supported codec.
        codec = clone(matched_supported_codec)
        if _is_number(media_codec.get("preferredPayloadType")):
            # If the given media codec has preferredPayloadType, keep it, and
            # remove it from the list of available dynamic values.
            codec["preferredPayloadType"] = media_codec["preferredPayloadType"]
            if codec["preferredPayloadType"] in dynamic_payload_types:
                dynamic_payload_types.remove(codec["preferredPayloadType"])
        elif _is_number(codec.get("preferredPayloadType")):
            # Otherwise if the supported codec has a (static) preferredPayloadType, use it.
            pass
        else:
            # Otherwise take the first available dynamic one.
            if not dynamic_payload_types:
                raise RuntimeError("cannot allocate more dynamic codec payload types")
            codec["preferredPayloadType"] = dynamic_payload_types.pop(0)
        # Ensure there is not duplicated preferredPayloadType values.
        if any(c.get("preferredPayloadType") == codec["preferredPayloadType"] for c in caps["codecs"]):
            raise TypeError(f"duplicated codec.preferredPayloadType [{codec['preferredPayloadType']}]")
        # Merge the media codec parameters.
        codec["parameters"] = {**codec["parameters"], **media_codec["parameters"]}
        caps["codecs"].append(codec)
        # Add a RTX video codec if video.
        if codec["kind"] == "video":
            if not dynamic_payload_types:
                raise RuntimeError("cannot allocate more dynamic codec payload types")
            caps["codecs"].append(
                {
                    "kind": codec["kind"],
                    "mimeType": f"{codec['kind']}/rtx",
                    "preferredPayloadType": dynamic_payload_types.pop(0),
                    "clockRate": codec["clockRate"],
                    "parameters": {"apt": codec["preferredPayloadType"]},
                    "rtcpFeedback": [],
                }
            )
    return caps


def get_producer_rtp_parameters_mapping(params: RtpParameters, caps: RtpCapabilities) -> RtpMapping:
    """Map a Producer's payload types and encodings onto the Router's.

    The worker rewrites every incoming packet with this mapping, so consumers
    only ever see the Router's payload types and fresh, unique SSRCs.
    ``params`` must be validated; a matched H264 codec's ``profile-level-id``
    is rewritten in place to the negotiated one. Raises ``UnsupportedError``
    when a codec (or its RTX) is not in the Router's capabilities.
    """
    rtp_mapping: RtpMapping = {"codecs": [], "encodings": []}
    # Match parameters media codecs to capabilities media codecs. Keyed by
    # identity, like the JS Map keyed by codec objects, keeping insertion order.
    codec_to_cap_codec: dict[int, tuple[RtpCodecParameters, RtpCodecCapability]] = {}

    for codec in params["codecs"]:
        if is_rtx_codec(codec):
            continue
        # Search for the same media codec in capabilities.
        matched_cap_codec = next(
            (cc for cc in caps["codecs"] if match_codecs(codec, cc, strict=True, modify=True)), None
        )
        if matched_cap_codec is None:
            raise UnsupportedError(
                f"unsupported codec [mimeType:{codec['mimeType']}, payloadType:{codec['payloadType']}]"
            )
        codec_to_cap_codec[id(codec)] = (codec, matched_cap_codec)

    # Match parameters RTX codecs to capabilities RTX codecs.
    for codec in params["codecs"]:
        if not is_rtx_codec(codec):
            continue
        apt = (codec.get("parameters") or {}).get("apt")
        # Search for the associated media codec.
        associated_media_codec = next((mc for mc in params["codecs"] if mc["payloadType"] == apt), None)
        if associated_media_codec is None:
            raise TypeError(f"missing media codec found for RTX PT {codec['payloadType']}")
        entry = codec_to_cap_codec.get(id(associated_media_codec))
        if entry is None:
            # mediasoup crashes here (apt pointing at another RTX codec); say why instead.
            raise TypeError(f"RTX PT {codec['payloadType']} is not associated with a media codec")
        cap_media_codec = entry[1]
        # Ensure that the capabilities media codec has a RTX codec.
        associated_cap_rtx_codec = next(
            (
                cc
                for cc in caps["codecs"]
                if is_rtx_codec(cc) and cc["parameters"].get("apt") == cap_media_codec["preferredPayloadType"]
            ),
            None,
        )
        if associated_cap_rtx_codec is None:
            raise UnsupportedError(f"no RTX codec for capability codec PT {cap_media_codec['preferredPayloadType']}")
        codec_to_cap_codec[id(codec)] = (codec, associated_cap_rtx_codec)

    # Generate codecs mapping.
    for codec, cap_codec in codec_to_cap_codec.values():
        rtp_mapping["codecs"].append(
            {"payloadType": codec["payloadType"], "mappedPayloadType": cap_codec["preferredPayloadType"]}
        )

    # Generate encodings mapping.
    mapped_ssrc = generate_random_number()
    for encoding in params["encodings"]:
        mapped_encoding: dict[str, Any] = {"mappedSsrc": mapped_ssrc}
        mapped_ssrc += 1
        if _truthy(encoding.get("rid")):
            mapped_encoding["rid"] = encoding["rid"]
        if _truthy(encoding.get("ssrc")):
            mapped_encoding["ssrc"] = encoding["ssrc"]
        if _truthy(encoding.get("scalabilityMode")):
            mapped_encoding["scalabilityMode"] = encoding["scalabilityMode"]
        rtp_mapping["encodings"].append(mapped_encoding)

    return rtp_mapping


def get_consumable_rtp_parameters(
    kind: str, params: RtpParameters, caps: RtpCapabilities, rtp_mapping: RtpMapping
) -> RtpParameters:
    """The Producer's RTP parameters as the Router forwards them (mapped PTs and SSRCs).

    Every Consumer of the Producer is derived from these. Codec ``parameters``
    are the Producer's own dict (shared, as in mediasoup); the header
    extensions are all Router ones of ``kind`` that a consumer may receive.
    """
    consumable_params: RtpParameters = {"codecs": [], "headerExtensions": [], "encodings": [], "rtcp": {}}

    for codec in params["codecs"]:
        if is_rtx_codec(codec):
            continue
        mapping_entry = next((e for e in rtp_mapping["codecs"] if e["payloadType"] == codec["payloadType"]), None)
        if mapping_entry is None:
            raise TypeError(f"no mapping for codec PT {codec['payloadType']}")
        consumable_codec_pt = mapping_entry["mappedPayloadType"]
        matched_cap_codec = next(
            (cc for cc in caps["codecs"] if cc.get("preferredPayloadType") == consumable_codec_pt), None
        )
        if matched_cap_codec is None:
            raise TypeError(f"no capability codec for mapped PT {consumable_codec_pt}")
        consumable_codec: RtpCodecParameters = {
            "mimeType": matched_cap_codec["mimeType"],
            "payloadType": matched_cap_codec["preferredPayloadType"],
            "clockRate": matched_cap_codec["clockRate"],
        }
        # channels is undefined (so absent from JSON) for video in mediasoup.
        if matched_cap_codec.get("channels") is not None:
            consumable_codec["channels"] = matched_cap_codec["channels"]
        consumable_codec["parameters"] = codec["parameters"]  # Keep the Producer codec parameters.
        consumable_codec["rtcpFeedback"] = matched_cap_codec["rtcpFeedback"]
        consumable_params["codecs"].append(consumable_codec)

        consumable_cap_rtx_codec = next(
            (
                cc
                for cc in caps["codecs"]
                if is_rtx_codec(cc) and cc["parameters"].get("apt") == consumable_codec["payloadType"]
            ),
            None,
        )
        if consumable_cap_rtx_codec is not None:
            consumable_params["codecs"].append(
                {
                    "mimeType": consumable_cap_rtx_codec["mimeType"],
                    "payloadType": consumable_cap_rtx_codec["preferredPayloadType"],
                    "clockRate": consumable_cap_rtx_codec["clockRate"],
                    "parameters": consumable_cap_rtx_codec["parameters"],
                    "rtcpFeedback": consumable_cap_rtx_codec["rtcpFeedback"],
                }
            )

    for cap_ext in caps["headerExtensions"]:
        # Just take RTP header extension that can be used in Consumers.
        if cap_ext.get("kind") != kind or cap_ext.get("direction") not in ("sendrecv", "sendonly"):
            continue
        if (
            _ABS_CAPTURE_TIME_ONLY_IF_PRODUCED
            and cap_ext["uri"] == _ABS_CAPTURE_TIME_URI
            and not any(ext.get("uri") == _ABS_CAPTURE_TIME_URI for ext in params.get("headerExtensions") or [])
        ):
            continue
        consumable_params["headerExtensions"].append(
            {
                "uri": cap_ext["uri"],
                "id": cap_ext["preferredId"],
                "encrypt": cap_ext.get("preferredEncrypt"),
                "parameters": {},
            }
        )

    # Clone Producer encodings since we'll mangle them.
    consumable_encodings: list[RtpEncodingParameters] = clone(params.get("encodings") or [])
    for i, consumable_encoding in enumerate(consumable_encodings):
        mapped_ssrc = rtp_mapping["encodings"][i]["mappedSsrc"]
        # Remove useless fields.
        consumable_encoding.pop("rid", None)
        consumable_encoding.pop("rtx", None)
        consumable_encoding.pop("codecPayloadType", None)
        # Set the mapped ssrc.
        consumable_encoding["ssrc"] = mapped_ssrc
        consumable_params["encodings"].append(consumable_encoding)

    rtcp: RtcpParameters = {}
    cname = (params.get("rtcp") or {}).get("cname")
    if cname is not None:
        rtcp["cname"] = cname
    rtcp["reducedSize"] = True
    consumable_params["rtcp"] = rtcp
    if params.get("msid"):  # 3.27: the Producer's msid reaches its Consumers
        consumable_params["msid"] = params["msid"]

    return consumable_params


def can_consume(consumable_params: RtpParameters, caps: RtpCapabilities) -> bool:
    """Whether an endpoint with ``caps`` can receive a Producer (some media codec in common).

    ``caps`` is validated, hence normalised in place; raises ``TypeError`` if invalid.
    """
    # This may throw.
    validate_rtp_capabilities(caps)
    matching_codecs: list[RtpCodecParameters] = []
    for codec in consumable_params["codecs"]:
        matched_cap_codec = next((cc for cc in caps["codecs"] if match_codecs(cc, codec, strict=True)), None)
        if matched_cap_codec is None:
            continue
        matching_codecs.append(codec)
    # Ensure there is at least one media codec.
    return bool(matching_codecs) and not is_rtx_codec(matching_codecs[0])


def can_consume_with(consumable_params: RtpParameters, rtp_capabilities: Any) -> bool:
    """`Router.can_consume()`'s answer: False (not an error) for capabilities that do not validate.

    Validation fills defaults in place, so it runs on a copy of the caller's capabilities.
    """
    try:
        caps = clone(rtp_capabilities)
        validate_rtp_capabilities(caps)
        return can_consume(consumable_params, caps)
    except (TypeError, ValueError):
        return False


def get_consumer_rtp_parameters(
    consumable_params: RtpParameters,
    remote_caps: RtpCapabilities,
    pipe: bool = False,
    enable_rtx: bool = False,
) -> RtpParameters:
    """RTP parameters for one Consumer, reduced to what ``remote_caps`` supports.

    A regular Consumer gets a single encoding (the worker switches between the
    Producer's simulcast streams and presents them as spatial layers, hence the
    ``L<n>T<t>`` scalability mode); a pipe Consumer keeps every encoding. RTX
    and NACK are kept only if ``enable_rtx``; BWE feedback is reduced to
    transport-cc, or REMB, or none, depending on the negotiated extensions.
    Codec capabilities in ``remote_caps`` are validated in place. Raises
    ``UnsupportedError`` when no media codec is compatible.

    Every consumer of a producer through the same capabilities negotiates the
    same: for capabilities `validated_rtp_capabilities` shares (never changed),
    the negotiation is kept, checked against a copy of the consumable parameters
    (changed in place: negotiated again), and each call gets a copy with fresh
    SSRCs (19-23 µs -> 7.7 for an opus consumer, issue 15).
    """
    shared = _is_validated(remote_caps)
    key = (id(consumable_params), id(remote_caps), pipe, enable_rtx)
    kept = _NEGOTIATED.get(key) if shared else None
    if kept is not None and kept[1] is remote_caps and kept[0] == consumable_params:
        negotiated = kept[2]
    else:
        negotiated = _negotiate_consumer(consumable_params, remote_caps, pipe, enable_rtx, shared)
        if shared:
            if len(_NEGOTIATED) >= _NEGOTIATED_MAX:
                del _NEGOTIATED[next(iter(_NEGOTIATED))]
            _NEGOTIATED[key] = (clone(consumable_params), remote_caps, negotiated)
    return _with_new_ssrcs(negotiated, pipe)


_NEGOTIATED_MAX = 256
_NEGOTIATED: dict[tuple[int, int, bool, bool], tuple[RtpParameters, RtpCapabilities, RtpParameters]] = {}
"""(ids of the consumable parameters and of shared capabilities, pipe, enable_rtx) -> (a copy of those
parameters, the capabilities, the negotiated parameters without SSRCs): see `get_consumer_rtp_parameters`."""


def _negotiate_consumer(
    consumable_params: RtpParameters, remote_caps: RtpCapabilities, pipe: bool, enable_rtx: bool, validated: bool
) -> RtpParameters:
    """`get_consumer_rtp_parameters` but the SSRCs (`_with_new_ssrcs` sets them); ``validated``: the
    capabilities are one of `validated_rtp_capabilities`' copies."""
    consumer_params: RtpParameters = {
        "codecs": [],
        "headerExtensions": [],
        "encodings": [],
        "rtcp": consumable_params.get("rtcp"),
    }
    if consumable_params.get("msid"):
        consumer_params["msid"] = consumable_params["msid"]
    remote_codecs: list[RtpCodecCapability] = remote_caps.get("codecs") or []
    if not validated:
        for cap_codec in remote_codecs:
            validate_rtp_codec_capability(cap_codec)

    consumable_codecs: list[RtpCodecParameters] = clone(consumable_params.get("codecs") or [])
    rtx_supported = False

    for codec in consumable_codecs:
        if not enable_rtx and is_rtx_codec(codec):
            continue
        matched_cap_codec = next((cc for cc in remote_codecs if match_codecs(cc, codec, strict=True)), None)
        if matched_cap_codec is None:
            continue
        codec["rtcpFeedback"] = [
            dict(fb)  # the capabilities may be shared (validated_rtp_capabilities)
            for fb in matched_cap_codec["rtcpFeedback"]
            if enable_rtx or fb.get("type") != "nack" or _truthy(fb.get("parameter"))
        ]
        consumer_params["codecs"].append(codec)

    # Must sanitize the list of matched codecs by removing useless RTX codecs.
    for idx in range(len(consumer_params["codecs"]) - 1, -1, -1):
        codec = consumer_params["codecs"][idx]
        if is_rtx_codec(codec):
            apt = codec["parameters"].get("apt")
            # Search for the associated media codec.
            associated_media_codec = next((mc for mc in consumer_params["codecs"] if mc["payloadType"] == apt), None)
            if associated_media_codec is not None:
                rtx_supported = True
            else:
                del consumer_params["codecs"][idx]

    # Ensure there is at least one media codec.
    if not consumer_params["codecs"] or is_rtx_codec(consumer_params["codecs"][0]):
        raise UnsupportedError("no compatible media codecs")

    remote_exts: list[RtpHeaderExtension] = remote_caps.get("headerExtensions") or []
    remote_ext_ids = {  # (id, uri) pairs, looked up once per extension instead of a scan each
        (cap_ext["preferredId"], cap_ext["uri"])
        for cap_ext in remote_exts
        if isinstance(cap_ext.get("preferredId"), int | float) and isinstance(cap_ext.get("uri"), str)
    }
    consumer_params["headerExtensions"] = [
        ext for ext in consumable_params["headerExtensions"] if (ext["id"], ext["uri"]) in remote_ext_ids
    ]

    # Reduce codecs' RTCP feedback. Use Transport-CC if available, REMB otherwise.
    uris = {ext["uri"] for ext in consumer_params["headerExtensions"]}
    if _TRANSPORT_CC_URI in uris:
        dropped: tuple[str, ...] = ("goog-remb",)
    elif _ABS_SEND_TIME_URI in uris:
        dropped = ("transport-cc",)
    else:
        dropped = ("transport-cc", "goog-remb")
    for codec in consumer_params["codecs"]:
        codec["rtcpFeedback"] = [fb for fb in codec["rtcpFeedback"] if fb.get("type") not in dropped]

    consumable_encodings: list[RtpEncodingParameters] = consumable_params.get("encodings") or []
    if not pipe:
        consumer_encoding: RtpEncodingParameters = {}
        # If any of the consumable encodings has scalabilityMode, process it
        # (assume all encodings have the same value).
        encoding_with_scalability_mode = next(
            (e for e in consumable_encodings if _truthy(e.get("scalabilityMode"))), None
        )
        scalability_mode: str | None = (
            encoding_with_scalability_mode["scalabilityMode"] if encoding_with_scalability_mode else None
        )
        # If there is simulcast, mangle spatial layers in scalabilityMode.
        if len(consumable_encodings) > 1:
            temporal_layers = parse_scalability_mode(scalability_mode)["temporalLayers"]
            scalability_mode = f"L{len(consumable_encodings)}T{temporal_layers}"
        if _truthy(scalability_mode):
            consumer_encoding["scalabilityMode"] = scalability_mode
        # Use the maximum maxBitrate in any encoding and honor it in the Consumer's encoding.
        max_encoding_max_bitrate: Any = 0
        for encoding in consumable_encodings:
            max_bitrate = encoding.get("maxBitrate")
            if _truthy(max_bitrate) and max_bitrate > max_encoding_max_bitrate:
                max_encoding_max_bitrate = max_bitrate
        if max_encoding_max_bitrate:
            consumer_encoding["maxBitrate"] = max_encoding_max_bitrate
        # Set a single encoding for the Consumer.
        consumer_params["encodings"].append(consumer_encoding)
    else:
        for encoding in clone(consumable_encodings):  # SSRCs (and RTX ones) by `_with_new_ssrcs`
            if not rtx_supported:
                encoding.pop("rtx", None)
            consumer_params["encodings"].append(encoding)

    return consumer_params


def _with_new_ssrcs(negotiated: RtpParameters, pipe: bool) -> RtpParameters:
    """A copy of negotiated consumer parameters with random SSRCs (RTX ones when an RTX codec was kept:
    the negotiation keeps one only with its media codec), as mediasoup's ``getConsumerRtpParameters``."""
    params = clone(negotiated)
    rtx_supported = any(is_rtx_codec(codec) for codec in params["codecs"])
    if not pipe:
        [encoding] = params["encodings"]
        ssrc = generate_random_number()
        params["encodings"] = [{"ssrc": ssrc, **({"rtx": {"ssrc": ssrc + 1}} if rtx_supported else {}), **encoding}]
        return params
    base_ssrc = generate_random_number()
    base_rtx_ssrc = generate_random_number()
    for i, encoding in enumerate(params["encodings"]):
        encoding["ssrc"] = base_ssrc + i
        if rtx_supported:
            encoding["rtx"] = {"ssrc": base_rtx_ssrc + i}
    return params


def get_pipe_consumer_rtp_parameters(consumable_params: RtpParameters, enable_rtx: bool = False) -> RtpParameters:
    """RTP parameters for a pipe Consumer, which forwards to another Router.

    Keeps every consumable encoding (the other Router needs all simulcast
    streams) and drops BWE and MID extensions, which make no sense between
    routers; without ``enable_rtx`` it also drops RTX and NACK.
    """
    consumer_params: RtpParameters = {
        "codecs": [],
        "headerExtensions": [],
        "encodings": [],
        "rtcp": consumable_params.get("rtcp"),
    }
    if consumable_params.get("msid"):
        consumer_params["msid"] = consumable_params["msid"]
    consumable_codecs: list[RtpCodecParameters] = clone(consumable_params.get("codecs") or [])
    for codec in consumable_codecs:
        if not enable_rtx and is_rtx_codec(codec):
            continue
        codec["rtcpFeedback"] = [
            fb
            for fb in codec["rtcpFeedback"]
            if (fb.get("type") == "nack" and fb.get("parameter") == "pli")
            or (fb.get("type") == "ccm" and fb.get("parameter") == "fir")
            or (enable_rtx and fb.get("type") == "nack" and not _truthy(fb.get("parameter")))
        ]
        consumer_params["codecs"].append(codec)

    # Reduce RTP extensions by disabling transport MID and BWE related ones.
    consumer_params["headerExtensions"] = [
        ext
        for ext in consumable_params["headerExtensions"]
        if ext["uri"] not in (_MID_URI, _ABS_SEND_TIME_URI, _TRANSPORT_CC_URI)
    ]
    # 3.27: the dependency descriptor is receive-only for endpoints, but a pipe consumer forwards it.
    dependency_descriptor = _PIPE_DEPENDENCY_DESCRIPTOR
    if dependency_descriptor is not None:
        consumer_params["headerExtensions"].append(clone(dependency_descriptor))
        consumer_params["headerExtensions"].sort(key=lambda ext: ext["id"])

    consumable_encodings: list[RtpEncodingParameters] = clone(consumable_params.get("encodings") or [])
    base_ssrc = generate_random_number()
    base_rtx_ssrc = generate_random_number()
    for i, encoding in enumerate(consumable_encodings):
        encoding["ssrc"] = base_ssrc + i
        if enable_rtx:
            encoding["rtx"] = {"ssrc": base_rtx_ssrc + i}
        else:
            encoding.pop("rtx", None)
        consumer_params["encodings"].append(encoding)

    return consumer_params


def is_rtx_codec(codec: dict[str, Any]) -> bool:
    """Whether a codec is an RTX (retransmission) codec, whatever the case of its mimeType."""
    mime_type = codec.get("mimeType")
    return isinstance(mime_type, str) and _RTX_MIME_TYPE_RE.search(mime_type) is not None


def match_codecs(
    a_codec: dict[str, Any], b_codec: dict[str, Any], *, strict: bool = False, modify: bool = False
) -> bool:
    """Whether two codecs are the same for negotiation purposes.

    Non-strict matching (used against the supported list) ignores H264
    packetization/profile and VP9 profile; strict matching (used against real
    capabilities) requires them to agree. With ``modify``, ``a_codec``'s H264
    ``profile-level-id`` is set to the answer one, as mediasoup does.
    """
    a_mime_type = a_codec["mimeType"].lower()
    b_mime_type = b_codec["mimeType"].lower()
    if a_mime_type != b_mime_type:
        return False
    if a_codec.get("clockRate") != b_codec.get("clockRate"):
        return False
    if a_codec.get("channels") != b_codec.get("channels"):
        return False

    a_params: dict[str, Any] = a_codec.get("parameters") or {}
    b_params: dict[str, Any] = b_codec.get("parameters") or {}

    # Per codec special checks.
    if a_mime_type == "audio/multiopus":
        if a_params.get("num_streams") != b_params.get("num_streams"):
            return False
        if a_params.get("coupled_streams") != b_params.get("coupled_streams"):
            return False
    elif a_mime_type in ("video/h264", "video/h264-svc"):
        if strict:
            if _or_zero(a_params.get("packetization-mode")) != _or_zero(b_params.get("packetization-mode")):
                return False
            if not _h264_is_same_profile(a_params, b_params):
                return False
            try:
                selected_profile_level_id = _h264_generate_profile_level_id_string_for_answer(a_params, b_params)
            except TypeError:
                return False
            if modify:
                params = a_codec.setdefault("parameters", {})
                if selected_profile_level_id:
                    params["profile-level-id"] = selected_profile_level_id
                else:
                    params.pop("profile-level-id", None)
    elif a_mime_type == "video/vp9":
        if strict:
            if _or_zero(a_params.get("profile-id")) != _or_zero(b_params.get("profile-id")):
                return False

    return True


# --------------------------------------------------------------------------
# H264 profile-level-id (npm h264-profile-level-id 2.0.0, as used by mediasoup).
# --------------------------------------------------------------------------

_PROFILE_CONSTRAINED_BASELINE = 1
_PROFILE_BASELINE = 2
_PROFILE_MAIN = 3
_PROFILE_CONSTRAINED_HIGH = 4
_PROFILE_HIGH = 5
_PROFILE_PREDICTIVE_HIGH_444 = 6

# Levels are ten times the level number, except level 1b.
_LEVEL_1_B = 0
_LEVEL_1 = 10
_LEVEL_1_1 = 11
_VALID_LEVELS = frozenset({10, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52})

# The default should be Baseline level 1 per RFC 6184, but WebRTC uses
# ConstrainedBaseline 3.1 for backwards compatibility (crbug/webrtc/6337).
_DEFAULT_PROFILE_LEVEL_ID = (_PROFILE_CONSTRAINED_BASELINE, 31)

# For level_idc=11 and profile_idc=0x42, 0x4D, or 0x58, the constraint set3
# flag specifies if level 1b or level 1.1 is used.
_CONSTRAINT_SET3_FLAG = 0x10


def _byte_mask(c: str, pattern: str) -> int:
    """Byte with a bit set where ``pattern`` (8 chars, MSB first) holds ``c``."""
    return sum(1 << (7 - i) for i, ch in enumerate(pattern) if ch == c)


def _bit_pattern(pattern: str) -> tuple[int, int]:
    """(mask, masked value) for patterns such as "x1xx0000", 'x' meaning either bit."""
    return (~_byte_mask("x", pattern), _byte_mask("1", pattern))


# From https://tools.ietf.org/html/rfc6184#section-8.1.
_PROFILE_PATTERNS: tuple[tuple[int, tuple[int, int], int], ...] = (
    (0x42, _bit_pattern("x1xx0000"), _PROFILE_CONSTRAINED_BASELINE),
    (0x4D, _bit_pattern("1xxx0000"), _PROFILE_CONSTRAINED_BASELINE),
    (0x58, _bit_pattern("11xx0000"), _PROFILE_CONSTRAINED_BASELINE),
    (0x42, _bit_pattern("x0xx0000"), _PROFILE_BASELINE),
    (0x58, _bit_pattern("10xx0000"), _PROFILE_BASELINE),
    (0x4D, _bit_pattern("0x0x0000"), _PROFILE_MAIN),
    (0x64, _bit_pattern("00000000"), _PROFILE_HIGH),
    (0x64, _bit_pattern("00001100"), _PROFILE_CONSTRAINED_HIGH),
    (0xF4, _bit_pattern("00000000"), _PROFILE_PREDICTIVE_HIGH_444),
)

_PARSE_INT_16_RE = re.compile(r"([+-]?)(?:0[xX])?([0-9a-fA-F]+)")


def _parse_int_16(text: str) -> int | None:
    """JavaScript ``parseInt(text, 16)``: leading hex digits only, None for NaN."""
    match = _PARSE_INT_16_RE.match(text.lstrip())
    if not match:
        return None
    value = int(match.group(2), 16)
    return -value if match.group(1) == "-" else value


def _h264_parse_profile_level_id(text: Any) -> tuple[int, int] | None:
    """(profile, level) from a 3-byte hex string, or None if unrecognised."""
    if not isinstance(text, str) or len(text) != 6:
        return None
    numeric = _parse_int_16(text)
    if numeric is None or numeric == 0:
        return None
    # Separate into three bytes.
    level_idc = numeric & 0xFF
    profile_iop = (numeric >> 8) & 0xFF
    profile_idc = (numeric >> 16) & 0xFF
    # Parse level based on level_idc and constraint set 3 flag.
    if level_idc == _LEVEL_1_1:
        level = _LEVEL_1_B if profile_iop & _CONSTRAINT_SET3_FLAG else _LEVEL_1_1
    elif level_idc in _VALID_LEVELS:
        level = level_idc
    else:
        return None
    # Parse profile_idc/profile_iop into a profile.
    for idc, (mask, masked_value), profile in _PROFILE_PATTERNS:
        if profile_idc == idc and (profile_iop & mask) == masked_value:
            return (profile, level)
    return None


def _h264_profile_level_id_to_string(profile: int, level: int) -> str | None:
    """Canonical 3-byte hex string of a profile and level, or None if not representable."""
    if level == _LEVEL_1_B:
        return {
            _PROFILE_CONSTRAINED_BASELINE: "42f00b",
            _PROFILE_BASELINE: "42100b",
            _PROFILE_MAIN: "4d100b",
        }.get(profile)
    profile_idc_iop = {
        _PROFILE_CONSTRAINED_BASELINE: "42e0",
        _PROFILE_BASELINE: "4200",
        _PROFILE_MAIN: "4d00",
        _PROFILE_CONSTRAINED_HIGH: "640c",
        _PROFILE_HIGH: "6400",
        _PROFILE_PREDICTIVE_HIGH_444: "f400",
    }.get(profile)
    if profile_idc_iop is None:
        return None
    return f"{profile_idc_iop}{level:02x}"


def _h264_parse_sdp_profile_level_id(params: dict[str, Any]) -> tuple[int, int] | None:
    """Default profile if the key is absent (or falsy), None if present but invalid."""
    profile_level_id = params.get("profile-level-id")
    if _truthy(profile_level_id):
        return _h264_parse_profile_level_id(profile_level_id)
    return _DEFAULT_PROFILE_LEVEL_ID


def _h264_is_same_profile(params1: dict[str, Any], params2: dict[str, Any]) -> bool:
    """Same H264 profile (Baseline, High, ...) regardless of level."""
    profile_level_id_1 = _h264_parse_sdp_profile_level_id(params1)
    profile_level_id_2 = _h264_parse_sdp_profile_level_id(params2)
    return (
        profile_level_id_1 is not None
        and profile_level_id_2 is not None
        and profile_level_id_1[0] == profile_level_id_2[0]
    )


def _h264_is_less_level(a: int, b: int) -> bool:
    """Compare H264 levels, level 1b sitting between 1 and 1.1."""
    if a == _LEVEL_1_B:
        return b not in (_LEVEL_1, _LEVEL_1_B)
    if b == _LEVEL_1_B:
        return a != _LEVEL_1
    return a < b


def _h264_is_level_asymmetry_allowed(params: dict[str, Any]) -> bool:
    value = params.get("level-asymmetry-allowed")
    # True, 1 (int or float) or "1"; Python's True == 1 covers the boolean.
    return value in (1, "1")


def _h264_generate_profile_level_id_string_for_answer(
    local_supported_params: dict[str, Any], remote_offered_params: dict[str, Any]
) -> str | None:
    """profile-level-id for an answer, None if neither side gives one.

    The level is the local one if both allow level asymmetry, else the lower
    of the two. Raises TypeError on invalid or mismatching profiles.
    """
    # If both local and remote params do not contain profile-level-id, they are
    # both using the default profile. In this case, don't return anything.
    if not _truthy(local_supported_params.get("profile-level-id")) and not _truthy(
        remote_offered_params.get("profile-level-id")
    ):
        return None
    local_profile_level_id = _h264_parse_sdp_profile_level_id(local_supported_params)
    remote_profile_level_id = _h264_parse_sdp_profile_level_id(remote_offered_params)
    # The local and remote codec must have valid and equal H264 Profiles.
    if local_profile_level_id is None:
        raise TypeError("invalid local_profile_level_id")
    if remote_profile_level_id is None:
        raise TypeError("invalid remote_profile_level_id")
    if local_profile_level_id[0] != remote_profile_level_id[0]:
        raise TypeError("H264 Profile mismatch")
    # Parse level information.
    level_asymmetry_allowed = _h264_is_level_asymmetry_allowed(
        local_supported_params
    ) and _h264_is_level_asymmetry_allowed(remote_offered_params)
    local_level = local_profile_level_id[1]
    remote_level = remote_profile_level_id[1]
    min_level = local_level if _h264_is_less_level(local_level, remote_level) else remote_level
    # When level asymmetry is not allowed, level upgrade is not allowed, i.e.,
    # the level in the answer must be equal to or lower than the level in the offer.
    answer_level = local_level if level_asymmetry_allowed else min_level
    return _h264_profile_level_id_to_string(local_profile_level_id[0], answer_level)
