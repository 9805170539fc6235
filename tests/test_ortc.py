"""Tests for media.ortc, ported from mediasoup's ``test-ortc`` (3.14.x, as shipped in
``@mafalda-sfu/mediasoup-node-tests@3.14.7``'s ``lib/test-ortc.js``).

Upstream cases ported (all five):

* ``generateRouterRtpCapabilities() succeeds``
* ``generateRouterRtpCapabilities() with unsupported codecs throws UnsupportedError``
* ``generateRouterRtpCapabilities() with too many codecs throws``
* ``getProducerRtpParametersMapping(), getConsumableRtpParameters(),
  getConsumerRtpParameters() and getPipeConsumerRtpParameters() succeed``
  (also checks ``canConsume``)
* ``getProducerRtpParametersMapping() with incompatible params throws UnsupportedError``

The remaining tests are our own: validation defaults and errors, SCTP
validation, canConsume, H264 profile negotiation and scalability modes.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Any

import pytest

from media import ortc
from media.errors import InvalidStateError, UnsupportedError, WorkerError
from media.scalability_modes import parse_scalability_mode
from media.supported_rtp_capabilities import SUPPORTED_RTP_CAPABILITIES
from media.worker_install import version_at_least

# The router's preferred ids of these extensions: 3.27 renumbered them (its test-ortc.js follows).
AUDIO_LEVEL_ID, VIDEO_ORIENTATION_ID, TOFFSET_ID = (6, 8, 9) if version_at_least(3, 27) else (8, 11, 12)
_DEPENDENCY_DESCRIPTOR = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"

# --------------------------------------------------------------------------
# Upstream test-ortc cases.
# --------------------------------------------------------------------------


def test_generate_router_rtp_capabilities_succeeds() -> None:
    media_codecs: list[dict[str, Any]] = [
        {
            "kind": "audio",
            "mimeType": "audio/opus",
            "clockRate": 48000,
            "channels": 2,
            "parameters": {"useinbandfec": 1, "foo": "bar"},
        },
        {
            "kind": "video",
            "mimeType": "video/VP8",
            "preferredPayloadType": 125,  # Let's force it.
            "clockRate": 90000,
        },
        {
            "kind": "video",
            "mimeType": "video/H264",
            "clockRate": 90000,
            "parameters": {"level-asymmetry-allowed": 1, "profile-level-id": "42e01f", "foo": "bar"},
            "rtcpFeedback": [],  # Will be ignored.
        },
    ]
    video_feedback = [
        {"type": "nack", "parameter": ""},
        {"type": "nack", "parameter": "pli"},
        {"type": "ccm", "parameter": "fir"},
        {"type": "goog-remb", "parameter": ""},
        {"type": "transport-cc", "parameter": ""},
    ]

    caps = ortc.generate_router_rtp_capabilities(media_codecs)

    assert len(caps["codecs"]) == 5
    assert caps["codecs"][0] == {
        "kind": "audio",
        "mimeType": "audio/opus",
        "preferredPayloadType": 100,  # 100 is the first available dynamic PT.
        "clockRate": 48000,
        "channels": 2,
        "parameters": {"useinbandfec": 1, "foo": "bar"},
        "rtcpFeedback": [{"type": "nack", "parameter": ""}, {"type": "transport-cc", "parameter": ""}],
    }
    assert caps["codecs"][1] == {
        "kind": "video",
        "mimeType": "video/VP8",
        "preferredPayloadType": 125,
        "clockRate": 90000,
        "parameters": {},
        "rtcpFeedback": video_feedback,
    }
    assert caps["codecs"][2] == {
        "kind": "video",
        "mimeType": "video/rtx",
        "preferredPayloadType": 101,  # 101 is the second available dynamic PT.
        "clockRate": 90000,
        "parameters": {"apt": 125},
        "rtcpFeedback": [],
    }
    assert caps["codecs"][3] == {
        "kind": "video",
        "mimeType": "video/H264",
        "preferredPayloadType": 102,  # 102 is the third available dynamic PT.
        "clockRate": 90000,
        # packetization-mode was not given and defaults to 0, so it is not added.
        "parameters": {"level-asymmetry-allowed": 1, "profile-level-id": "42e01f", "foo": "bar"},
        "rtcpFeedback": video_feedback,
    }
    assert caps["codecs"][4] == {
        "kind": "video",
        "mimeType": "video/rtx",
        "preferredPayloadType": 103,
        "clockRate": 90000,
        "parameters": {"apt": 102},
        "rtcpFeedback": [],
    }


@pytest.mark.parametrize(
    "media_codec",
    [
        {"kind": "audio", "mimeType": "audio/chicken", "clockRate": 8000, "channels": 4},
        {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 1},
    ],
    ids=["unknown-mime-type", "opus-mono"],
)
def test_generate_router_rtp_capabilities_with_unsupported_codecs_throws(media_codec: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedError, match="media codec not supported"):
        ortc.generate_router_rtp_capabilities([media_codec])


def test_generate_router_rtp_capabilities_with_too_many_codecs_throws() -> None:
    media_codecs = [{"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2} for _ in range(100)]
    with pytest.raises(RuntimeError, match="cannot allocate"):
        ortc.generate_router_rtp_capabilities(media_codecs)


def _h264_router_capabilities() -> dict[str, Any]:
    return ortc.generate_router_rtp_capabilities(
        [
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
            {
                "kind": "video",
                "mimeType": "video/H264",
                "clockRate": 90000,
                "parameters": {
                    "level-asymmetry-allowed": 1,
                    "packetization-mode": 1,
                    "profile-level-id": "4d0032",
                    "bar": "lalala",
                },
            },
        ]
    )


def _h264_producer_parameters() -> dict[str, Any]:
    return {
        "codecs": [
            {
                "mimeType": "video/H264",
                "payloadType": 111,
                "clockRate": 90000,
                "parameters": {"foo": 1234, "packetization-mode": 1, "profile-level-id": "4d0032"},
                "rtcpFeedback": [
                    {"type": "nack", "parameter": ""},
                    {"type": "nack", "parameter": "pli"},
                    {"type": "goog-remb", "parameter": ""},
                ],
            },
            {
                "mimeType": "video/rtx",
                "payloadType": 112,
                "clockRate": 90000,
                "parameters": {"apt": 111},
                "rtcpFeedback": [],
            },
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1},
            {"uri": "urn:3gpp:video-orientation", "id": 2},
        ],
        "encodings": [
            {"ssrc": 11111111, "rtx": {"ssrc": 11111112}, "maxBitrate": 111111, "scalabilityMode": "L1T3"},
            {"ssrc": 21111111, "rtx": {"ssrc": 21111112}, "maxBitrate": 222222, "scalabilityMode": "L1T3"},
            {"rid": "high", "maxBitrate": 333333, "scalabilityMode": "L1T3"},
        ],
        "rtcp": {"cname": "qwerty1234"},
    }


def _remote_rtp_capabilities() -> dict[str, Any]:
    return {
        "codecs": [
            {
                "kind": "audio",
                "mimeType": "audio/opus",
                "preferredPayloadType": 100,
                "clockRate": 48000,
                "channels": 2,
                "parameters": {},
                "rtcpFeedback": [],
            },
            {
                "kind": "video",
                "mimeType": "video/H264",
                "preferredPayloadType": 101,
                "clockRate": 90000,
                "parameters": {"packetization-mode": 1, "profile-level-id": "4d0032", "baz": "LOLOLO"},
                "rtcpFeedback": [
                    {"type": "nack", "parameter": ""},
                    {"type": "nack", "parameter": "pli"},
                    {"type": "foo", "parameter": "FOO"},
                ],
            },
            {
                "kind": "video",
                "mimeType": "video/rtx",
                "preferredPayloadType": 102,
                "clockRate": 90000,
                "parameters": {"apt": 101},
                "rtcpFeedback": [],
            },
        ],
        "headerExtensions": [
            {
                "kind": "audio",
                "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
                "preferredId": 1,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            },
            {
                "kind": "video",
                "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
                "preferredId": 1,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            },
            {
                "kind": "video",
                "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
                "preferredId": 2,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            },
            {
                "kind": "audio",
                "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
                "preferredId": AUDIO_LEVEL_ID,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            },
            {
                "kind": "video",
                "uri": "urn:3gpp:video-orientation",
                "preferredId": VIDEO_ORIENTATION_ID,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            },
            {
                "kind": "video",
                "uri": "urn:ietf:params:rtp-hdrext:toffset",
                "preferredId": TOFFSET_ID,
                "preferredEncrypt": False,
                "direction": "sendrecv",
            },
        ],
    }


def test_mapping_consumable_consumer_and_pipe_consumer_parameters_succeed() -> None:
    router_caps = _h264_router_capabilities()
    rtp_parameters = _h264_producer_parameters()
    h264_parameters = {"foo": 1234, "packetization-mode": 1, "profile-level-id": "4d0032"}

    rtp_mapping = ortc.get_producer_rtp_parameters_mapping(rtp_parameters, router_caps)

    assert rtp_mapping["codecs"] == [
        {"payloadType": 111, "mappedPayloadType": 101},
        {"payloadType": 112, "mappedPayloadType": 102},
    ]
    encodings = rtp_mapping["encodings"]
    assert encodings[0]["ssrc"] == 11111111 and "rid" not in encodings[0]
    assert encodings[1]["ssrc"] == 21111111 and "rid" not in encodings[1]
    assert "ssrc" not in encodings[2] and encodings[2]["rid"] == "high"
    assert all(isinstance(encoding["mappedSsrc"], int) for encoding in encodings)

    consumable = ortc.get_consumable_rtp_parameters("video", rtp_parameters, router_caps, rtp_mapping)

    assert consumable["codecs"][0]["mimeType"] == "video/H264"
    assert consumable["codecs"][0]["payloadType"] == 101
    assert consumable["codecs"][0]["clockRate"] == 90000
    assert consumable["codecs"][0]["parameters"] == h264_parameters
    assert consumable["codecs"][1]["mimeType"] == "video/rtx"
    assert consumable["codecs"][1]["payloadType"] == 102
    assert consumable["codecs"][1]["clockRate"] == 90000
    assert consumable["codecs"][1]["parameters"] == {"apt": 101}
    for i, max_bitrate in enumerate((111111, 222222, 333333)):
        assert consumable["encodings"][i] == {
            "ssrc": encodings[i]["mappedSsrc"],
            "maxBitrate": max_bitrate,
            "scalabilityMode": "L1T3",
        }
    assert consumable["rtcp"] == {"cname": "qwerty1234", "reducedSize": True}

    remote_caps = _remote_rtp_capabilities()
    assert ortc.can_consume(consumable, copy.deepcopy(remote_caps))

    consumer = ortc.get_consumer_rtp_parameters(consumable, remote_caps, pipe=False, enable_rtx=True)

    assert len(consumer["codecs"]) == 2
    assert consumer["codecs"][0] == {
        "mimeType": "video/H264",
        "payloadType": 101,
        "clockRate": 90000,
        "parameters": h264_parameters,
        "rtcpFeedback": [
            {"type": "nack", "parameter": ""},
            {"type": "nack", "parameter": "pli"},
            {"type": "foo", "parameter": "FOO"},
        ],
    }
    assert consumer["codecs"][1] == {
        "mimeType": "video/rtx",
        "payloadType": 102,
        "clockRate": 90000,
        "parameters": {"apt": 101},
        "rtcpFeedback": [],
    }
    assert len(consumer["encodings"]) == 1
    assert isinstance(consumer["encodings"][0]["ssrc"], int)
    assert isinstance(consumer["encodings"][0]["rtx"], dict)
    assert isinstance(consumer["encodings"][0]["rtx"]["ssrc"], int)
    assert consumer["encodings"][0]["scalabilityMode"] == "L3T3"
    assert consumer["encodings"][0]["maxBitrate"] == 333333
    assert consumer["headerExtensions"] == [
        {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": False, "parameters": {}},
        {"uri": "urn:3gpp:video-orientation", "id": VIDEO_ORIENTATION_ID, "encrypt": False, "parameters": {}},
        {"uri": "urn:ietf:params:rtp-hdrext:toffset", "id": TOFFSET_ID, "encrypt": False, "parameters": {}},
    ]
    assert consumer["rtcp"] == {"cname": "qwerty1234", "reducedSize": True}

    pipe_consumer = ortc.get_pipe_consumer_rtp_parameters(consumable, enable_rtx=False)

    assert len(pipe_consumer["codecs"]) == 1
    assert pipe_consumer["codecs"][0] == {
        "mimeType": "video/H264",
        "payloadType": 101,
        "clockRate": 90000,
        "parameters": h264_parameters,
        "rtcpFeedback": [{"type": "nack", "parameter": "pli"}, {"type": "ccm", "parameter": "fir"}],
    }
    assert len(pipe_consumer["encodings"]) == 3
    for encoding in pipe_consumer["encodings"]:
        assert isinstance(encoding["ssrc"], int)
        assert "rtx" not in encoding
        assert isinstance(encoding["maxBitrate"], int)
        assert encoding["scalabilityMode"] == "L1T3"
    assert pipe_consumer["rtcp"] == {"cname": "qwerty1234", "reducedSize": True}


def test_consumers_through_shared_capabilities_get_one_negotiation_and_ssrcs_of_their_own() -> None:
    """`get_consumer_rtp_parameters` keeps its negotiation for capabilities `validated_rtp_capabilities`
    shares (every consumer of one producer through them has the same codecs and extensions). Each
    consumer still gets SSRCs and copies of its own, and consumable parameters changed in place since
    are negotiated again."""
    router_caps = _h264_router_capabilities()
    rtp_parameters = _h264_producer_parameters()
    mapping = ortc.get_producer_rtp_parameters_mapping(rtp_parameters, router_caps)
    consumable = ortc.get_consumable_rtp_parameters("video", rtp_parameters, router_caps, mapping)
    caps = ortc.validated_rtp_capabilities(_remote_rtp_capabilities())

    def negotiated(params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "encodings": [{k: v for k, v in e.items() if k not in ("ssrc", "rtx")}
                                        for e in params["encodings"]]}

    afresh = ortc.get_consumer_rtp_parameters(consumable, copy.deepcopy(caps), enable_rtx=True)  # not shared
    first, second = (ortc.get_consumer_rtp_parameters(consumable, caps, enable_rtx=True) for _ in range(2))
    assert negotiated(first) == negotiated(second) == negotiated(afresh)
    for params in (afresh, first, second):
        [encoding] = params["encodings"]
        assert list(encoding)[:2] == ["ssrc", "rtx"] and encoding["rtx"]["ssrc"] == encoding["ssrc"] + 1
    assert first["encodings"][0]["ssrc"] != second["encodings"][0]["ssrc"]
    first["codecs"][0]["parameters"]["foo"] = 0  # a consumer's own copy
    assert ortc.get_consumer_rtp_parameters(consumable, caps, enable_rtx=True)["codecs"][0]["parameters"]["foo"] == 1234
    consumable["codecs"][0]["parameters"]["foo"] = 5678  # the producer's, changed in place
    assert ortc.get_consumer_rtp_parameters(consumable, caps, enable_rtx=True)["codecs"][0]["parameters"]["foo"] == 5678
    pipes = [ortc.get_consumer_rtp_parameters(consumable, caps, pipe=True, enable_rtx=True) for _ in range(2)]
    for pipe in pipes:
        ssrcs = [encoding["ssrc"] for encoding in pipe["encodings"]]
        rtx_ssrcs = [encoding["rtx"]["ssrc"] for encoding in pipe["encodings"]]
        assert ssrcs == list(range(ssrcs[0], ssrcs[0] + 3)) and rtx_ssrcs == list(range(rtx_ssrcs[0], rtx_ssrcs[0] + 3))
    assert pipes[0]["encodings"][0]["ssrc"] != pipes[1]["encodings"][0]["ssrc"]


def test_clone_copies_what_json_would_change_as_it_is() -> None:
    """`ortc.clone` copies JSON shapes through orjson, and what that would change by hand."""
    plain = {"a": [1, 2.5, True, None, "x", {"b": []}]}
    assert ortc.clone(plain) == plain and ortc.clone(plain) is not plain
    assert ortc.clone(plain)["a"][5] is not plain["a"][5]
    kept = {"tuple": (1, 2), "nan": math.nan, "ordered": OrderedDict(a=1), "int key": {1: "a"}, "big": 2**70}
    copied = ortc.clone(kept)
    assert type(copied["tuple"]) is tuple and math.isnan(copied["nan"]) and type(copied["ordered"]) is OrderedDict
    assert copied["int key"] == {1: "a"} and copied["big"] == 2**70


def test_get_producer_rtp_parameters_mapping_with_incompatible_params_throws() -> None:
    router_caps = ortc.generate_router_rtp_capabilities(
        [
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2},
            {
                "kind": "video",
                "mimeType": "video/H264",
                "clockRate": 90000,
                "parameters": {"packetization-mode": 1, "profile-level-id": "640032"},
            },
        ]
    )
    rtp_parameters = {
        "codecs": [
            {
                "mimeType": "video/VP8",
                "payloadType": 120,
                "clockRate": 90000,
                "rtcpFeedback": [{"type": "nack", "parameter": ""}, {"type": "nack", "parameter": "fir"}],
            }
        ],
        "headerExtensions": [],
        "encodings": [{"ssrc": 11111111}],
        "rtcp": {"cname": "qwerty1234"},
    }
    with pytest.raises(UnsupportedError, match="unsupported codec"):
        ortc.get_producer_rtp_parameters_mapping(rtp_parameters, router_caps)


# --------------------------------------------------------------------------
# Our own cases.
# --------------------------------------------------------------------------


def test_generate_router_rtp_capabilities_does_not_touch_the_supported_constant() -> None:
    before = copy.deepcopy(SUPPORTED_RTP_CAPABILITIES)
    caps = ortc.generate_router_rtp_capabilities([{"mimeType": "audio/PCMU", "clockRate": 8000}])
    assert SUPPORTED_RTP_CAPABILITIES == before
    # Static payload type kept, header extensions normalised.
    assert caps["codecs"][0]["preferredPayloadType"] == 0
    assert all(ext["preferredEncrypt"] is False for ext in caps["headerExtensions"])


def test_generate_router_rtp_capabilities_rejects_duplicated_payload_types_and_non_lists() -> None:
    with pytest.raises(TypeError, match="duplicated"):
        ortc.generate_router_rtp_capabilities(
            [
                {"mimeType": "audio/opus", "clockRate": 48000, "channels": 2, "preferredPayloadType": 0},
                {"mimeType": "audio/PCMU", "clockRate": 8000},
            ]
        )
    with pytest.raises(TypeError, match="mediaCodecs"):
        ortc.generate_router_rtp_capabilities("opus")  # type: ignore[arg-type]


def test_validate_rtp_codec_capability_fills_defaults_in_place() -> None:
    codec: dict[str, Any] = {
        "kind": "video",
        "mimeType": "AUDIO/opus",
        "clockRate": 48000,
        "rtcpFeedback": [{"type": "nack"}],
    }
    ortc.validate_rtp_codec_capability(codec)
    assert codec == {
        "kind": "audio",  # Overwritten from the mimeType.
        "mimeType": "AUDIO/opus",
        "clockRate": 48000,
        "channels": 1,
        "parameters": {},
        "rtcpFeedback": [{"type": "nack", "parameter": ""}],
    }
    video: dict[str, Any] = {"mimeType": "video/VP8", "clockRate": 90000, "channels": 2}
    ortc.validate_rtp_codec_capability(video)
    assert "channels" not in video


@pytest.mark.parametrize(
    ("codec", "message"),
    [
        ({"clockRate": 48000}, "codec.mimeType"),
        ({"mimeType": "text/plain", "clockRate": 1}, "codec.mimeType"),
        ({"mimeType": "audio/opus"}, "codec.clockRate"),
        ({"mimeType": "audio/opus", "clockRate": 48000, "preferredPayloadType": "100"}, "preferredPayloadType"),
        ({"mimeType": "audio/opus", "clockRate": 48000, "parameters": {"x": None}}, "key:x"),
        ({"mimeType": "audio/opus", "clockRate": 48000, "parameters": {"x": True}}, "key:x"),
        ({"mimeType": "video/rtx", "clockRate": 90000, "parameters": {"apt": "96"}}, "apt"),
        ({"mimeType": "audio/opus", "clockRate": 48000, "rtcpFeedback": [{"parameter": "pli"}]}, "fb.type"),
    ],
)
def test_validate_rtp_codec_capability_errors(codec: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ortc.validate_rtp_codec_capability(codec)


def test_validate_rtp_capabilities_defaults_and_errors() -> None:
    caps: dict[str, Any] = {"headerExtensions": [{"kind": "audio", "uri": "urn:x", "preferredId": 1}]}
    ortc.validate_rtp_capabilities(caps)
    assert caps == {
        "codecs": [],
        "headerExtensions": [
            {"kind": "audio", "uri": "urn:x", "preferredId": 1, "preferredEncrypt": False, "direction": "sendrecv"}
        ],
    }
    with pytest.raises(TypeError, match="caps is not an object"):
        ortc.validate_rtp_capabilities(None)  # type: ignore[arg-type]
    # {} is truthy in JavaScript, so it is not replaced by [] but rejected.
    with pytest.raises(TypeError, match=r"caps\.codecs"):
        ortc.validate_rtp_capabilities({"codecs": {}})
    with pytest.raises(TypeError, match=r"ext\.kind"):
        ortc.validate_rtp_capabilities({"headerExtensions": [{"kind": "data", "uri": "urn:x", "preferredId": 1}]})
    with pytest.raises(TypeError, match=r"ext\.preferredId"):
        ortc.validate_rtp_capabilities({"headerExtensions": [{"kind": "audio", "uri": "urn:x"}]})
    with pytest.raises(TypeError, match=r"ext\.preferredEncrypt"):
        ortc.validate_rtp_capabilities(
            {"headerExtensions": [{"kind": "audio", "uri": "urn:x", "preferredId": 1, "preferredEncrypt": 1}]}
        )


def test_validated_rtp_capabilities_are_shared_and_follow_the_input() -> None:
    caps: dict[str, Any] = {"headerExtensions": [{"kind": "audio", "uri": "urn:shared", "preferredId": 1}]}
    first = ortc.validated_rtp_capabilities(caps)
    assert first["codecs"] == [] and first["headerExtensions"][0]["direction"] == "sendrecv"
    assert "codecs" not in caps  # the caller's dict is left as it was
    assert ortc.validated_rtp_capabilities(caps) is first
    assert ortc.validated_rtp_capabilities(copy.deepcopy(caps)) is first  # same content, another dict
    assert ortc.validated_rtp_capabilities(caps) is first  # now through the same-dict fast path
    # Changed in place: validated again, and a bad value is an error every time.
    caps["headerExtensions"][0]["kind"] = "data"
    for _ in range(2):
        with pytest.raises(TypeError, match=r"ext\.kind"):
            ortc.validated_rtp_capabilities(caps)
    # Equal under == but not the same input: True is not a number for mediasoup.
    with pytest.raises(TypeError, match=r"ext\.preferredId"):
        ortc.validated_rtp_capabilities(
            {"headerExtensions": [{"kind": "audio", "uri": "urn:shared", "preferredId": True}]}
        )
    # Equal JSON but not the same input: a tuple is not an array.
    extension = {"kind": "audio", "uri": "urn:tuple", "preferredId": 2}
    ortc.validated_rtp_capabilities({"headerExtensions": [extension]})
    with pytest.raises(TypeError, match="not an array"):
        ortc.validated_rtp_capabilities({"headerExtensions": (extension,)})
    with pytest.raises(TypeError, match="caps is not an object"):
        ortc.validated_rtp_capabilities(None)


def test_validate_rtp_parameters_defaults() -> None:
    params: dict[str, Any] = {
        "codecs": [{"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000}],
        "headerExtensions": [{"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1}],
        "encodings": [{"ssrc": 1234}],
        "rtcp": {"cname": "c", "reducedSize": False},
    }
    ortc.validate_rtp_parameters(params)
    assert params["codecs"][0] == {
        "mimeType": "audio/opus",
        "payloadType": 100,
        "clockRate": 48000,
        "channels": 1,
        "parameters": {},
        "rtcpFeedback": [],
    }
    assert params["headerExtensions"][0] == {
        "uri": "urn:ietf:params:rtp-hdrext:sdes:mid",
        "id": 1,
        "encrypt": False,
        "parameters": {},
    }
    assert params["encodings"] == [{"ssrc": 1234, "dtx": False}]
    # As in mediasoup, reducedSize is forced to True.
    assert params["rtcp"] == {"cname": "c", "reducedSize": True}

    bare: dict[str, Any] = {"codecs": []}
    ortc.validate_rtp_parameters(bare)
    assert bare == {"codecs": [], "headerExtensions": [], "encodings": [], "rtcp": {"reducedSize": True}}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"codecs": "opus"}, "params.codecs"),
        ({"mid": 5, "codecs": []}, "params.mid"),
        ({"codecs": [{"mimeType": "audio/opus", "clockRate": 48000}]}, "codec.payloadType"),
        ({"codecs": [], "headerExtensions": [{"uri": "urn:x"}]}, "ext.id"),
        ({"codecs": [], "headerExtensions": [{"uri": "urn:x", "id": 1, "encrypt": "yes"}]}, "ext.encrypt"),
        ({"codecs": [], "headerExtensions": [{"uri": "urn:x", "id": 1, "parameters": {"k": [1]}}]}, "key:k"),
        ({"codecs": [], "encodings": [{"ssrc": "1"}]}, "encoding.ssrc"),
        ({"codecs": [], "encodings": [{"rid": 1}]}, "encoding.rid"),
        ({"codecs": [], "encodings": [{"rtx": {}}]}, "encoding.rtx.ssrc"),
        ({"codecs": [], "encodings": [{"scalabilityMode": 3}]}, "encoding.scalabilityMode"),
        ({"codecs": [], "rtcp": "x"}, "params.rtcp"),
        ({"codecs": [], "rtcp": {"cname": 3}}, "rtcp.cname"),
    ],
)
def test_validate_rtp_parameters_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ortc.validate_rtp_parameters(params)


def test_validate_sctp_stream_parameters() -> None:
    params: dict[str, Any] = {"streamId": 1}
    ortc.validate_sctp_stream_parameters(params)
    assert params == {"streamId": 1, "ordered": True}
    partial: dict[str, Any] = {"streamId": 2, "maxRetransmits": 3}
    ortc.validate_sctp_stream_parameters(partial)
    assert partial["ordered"] is False
    with pytest.raises(TypeError, match="streamId"):
        ortc.validate_sctp_stream_parameters({"streamId": "1"})
    with pytest.raises(TypeError, match="both"):
        ortc.validate_sctp_stream_parameters({"streamId": 1, "maxPacketLifeTime": 1, "maxRetransmits": 1})
    with pytest.raises(TypeError, match="ordered"):
        ortc.validate_sctp_stream_parameters({"streamId": 1, "ordered": True, "maxRetransmits": 1})
    with pytest.raises(TypeError, match="maxPacketLifeTime"):
        ortc.validate_sctp_stream_parameters({"streamId": 1, "maxPacketLifeTime": "1"})


def test_validate_sctp_capabilities_and_parameters() -> None:
    ortc.validate_sctp_capabilities({"numStreams": {"OS": 1024, "MIS": 1024}})
    with pytest.raises(TypeError, match=r"caps\.numStreams"):
        ortc.validate_sctp_capabilities({})
    with pytest.raises(TypeError, match=r"numStreams\.MIS"):
        ortc.validate_numsctp_streams({"OS": 1024})
    ortc.validate_sctp_parameters({"port": 5000, "OS": 1024, "MIS": 1024, "maxMessageSize": 262144})
    with pytest.raises(TypeError, match=r"params\.maxMessageSize"):
        ortc.validate_sctp_parameters({"port": 5000, "OS": 1024, "MIS": 1024})


def test_can_consume_needs_a_common_media_codec() -> None:
    router_caps = _h264_router_capabilities()
    params = _h264_producer_parameters()
    mapping = ortc.get_producer_rtp_parameters_mapping(params, router_caps)
    consumable = ortc.get_consumable_rtp_parameters("video", params, router_caps, mapping)
    # Only the RTX codec in common: not enough.
    rtx_only = {"codecs": [{"mimeType": "video/rtx", "clockRate": 90000, "parameters": {"apt": 101}}]}
    assert not ortc.can_consume(consumable, rtx_only)
    # Same H264 profile but another packetization mode: no match.
    other_mode = _remote_rtp_capabilities()
    other_mode["codecs"][1]["parameters"]["packetization-mode"] = 0
    assert not ortc.can_consume(consumable, other_mode)
    with pytest.raises(UnsupportedError, match="no compatible media codecs"):
        ortc.get_consumer_rtp_parameters(consumable, other_mode, False, True)
    with pytest.raises(TypeError):
        ortc.can_consume(consumable, {"codecs": "h264"})


def test_consumer_rtcp_feedback_follows_bwe_extensions_and_rtx() -> None:
    router_caps = _h264_router_capabilities()
    params = _h264_producer_parameters()
    mapping = ortc.get_producer_rtp_parameters_mapping(params, router_caps)
    consumable = ortc.get_consumable_rtp_parameters("video", params, router_caps, mapping)
    remote = _remote_rtp_capabilities()
    remote["codecs"][1]["rtcpFeedback"] = [
        {"type": "nack"},
        {"type": "nack", "parameter": "pli"},
        {"type": "goog-remb"},
        {"type": "transport-cc"},
    ]
    remote["headerExtensions"].append(
        {
            "kind": "video",
            "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "preferredId": 4,
        }
    )
    consumer = ortc.get_consumer_rtp_parameters(consumable, copy.deepcopy(remote), pipe=False, enable_rtx=False)
    # No RTX: no rtx codec, no plain NACK; abs-send-time only: REMB, not transport-cc.
    assert [c["mimeType"] for c in consumer["codecs"]] == ["video/H264"]
    assert consumer["codecs"][0]["rtcpFeedback"] == [
        {"type": "nack", "parameter": "pli"},
        {"type": "goog-remb", "parameter": ""},
    ]
    assert "rtx" not in consumer["encodings"][0]

    pipe = ortc.get_consumer_rtp_parameters(consumable, copy.deepcopy(remote), pipe=True, enable_rtx=True)
    ssrcs = [e["ssrc"] for e in pipe["encodings"]]
    assert len(ssrcs) == 3 and ssrcs == list(range(ssrcs[0], ssrcs[0] + 3))
    assert all("rtx" in e for e in pipe["encodings"])


def test_pipe_consumer_drops_mid_and_bwe_extensions_and_keeps_rtx_when_enabled() -> None:
    router_caps = _h264_router_capabilities()
    params = _h264_producer_parameters()
    mapping = ortc.get_producer_rtp_parameters_mapping(params, router_caps)
    consumable = ortc.get_consumable_rtp_parameters("video", params, router_caps, mapping)
    uris = {ext["uri"] for ext in consumable["headerExtensions"]}
    assert "urn:ietf:params:rtp-hdrext:sdes:mid" in uris
    pipe = ortc.get_pipe_consumer_rtp_parameters(consumable, enable_rtx=True)
    pipe_uris = {ext["uri"] for ext in pipe["headerExtensions"]}
    # 3.27 adds the (receive-only) dependency descriptor to every pipe consumer.
    added = {_DEPENDENCY_DESCRIPTOR} if version_at_least(3, 27) else set()
    assert pipe_uris == (uris | added) - {
        "urn:ietf:params:rtp-hdrext:sdes:mid",
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    }
    assert [c["mimeType"] for c in pipe["codecs"]] == ["video/H264", "video/rtx"]
    assert {"type": "nack", "parameter": ""} in pipe["codecs"][0]["rtcpFeedback"]
    assert all(e["rtx"]["ssrc"] for e in pipe["encodings"])
    # The consumable parameters were cloned, not mangled.
    assert all("rtx" not in e for e in consumable["encodings"])


@pytest.mark.parametrize(
    ("router_plid", "producer_plid", "producer_asymmetry", "answer"),
    [
        # Both sides allow level asymmetry: the producer (local side) keeps its level.
        ("42e01f", "42e034", True, "42e034"),
        # Otherwise the lower level wins.
        ("42e01f", "42e034", False, "42e01f"),
        ("4d0032", "4d001f", False, "4d001f"),
        # PredictiveHigh444, unknown to the h264_profile_level_id 1.0 package.
        ("f40032", "f4001f", True, "f4001f"),
    ],
)
def test_h264_mapping_rewrites_profile_level_id(
    router_plid: str, producer_plid: str, producer_asymmetry: bool, answer: str
) -> None:
    router_caps = ortc.generate_router_rtp_capabilities(
        [
            {
                "mimeType": "video/H264",
                "clockRate": 90000,
                "parameters": {"packetization-mode": 1, "profile-level-id": router_plid},
            }
        ]
    )
    codec_parameters: dict[str, Any] = {"packetization-mode": 1, "profile-level-id": producer_plid}
    if producer_asymmetry:
        codec_parameters["level-asymmetry-allowed"] = 1
    params: dict[str, Any] = {
        "codecs": [{"mimeType": "video/H264", "payloadType": 96, "clockRate": 90000, "parameters": codec_parameters}],
        "encodings": [{"ssrc": 1}],
    }
    ortc.validate_rtp_parameters(params)
    ortc.get_producer_rtp_parameters_mapping(params, router_caps)
    assert params["codecs"][0]["parameters"]["profile-level-id"] == answer


def test_h264_different_profiles_do_not_match() -> None:
    router_caps = _h264_router_capabilities()  # Main profile.
    params = _h264_producer_parameters()
    params["codecs"][0]["parameters"]["profile-level-id"] = "42e01f"  # Constrained Baseline.
    with pytest.raises(UnsupportedError):
        ortc.get_producer_rtp_parameters_mapping(params, router_caps)


def test_rtx_without_media_codec_is_rejected() -> None:
    router_caps = _h264_router_capabilities()
    params = _h264_producer_parameters()
    params["codecs"][1]["parameters"]["apt"] = 99
    with pytest.raises(TypeError, match="RTX PT 112"):
        ortc.get_producer_rtp_parameters_mapping(params, router_caps)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("L1T3", (1, 3, False)),
        ("L3T3_KEY", (3, 3, True)),
        ("S2T1", (2, 1, False)),
        ("L10T2_KEY_SHIFT", (10, 2, True)),
        ("L0T1", (1, 1, False)),
        ("foo", (1, 1, False)),
        (None, (1, 1, False)),
    ],
)
def test_parse_scalability_mode(mode: str | None, expected: tuple[int, int, bool]) -> None:
    parsed = parse_scalability_mode(mode)
    assert (parsed["spatialLayers"], parsed["temporalLayers"], parsed["ksvc"]) == expected


def test_errors_module() -> None:
    error = WorkerError(method="ROUTER_CLOSE", reason="not found")
    assert error.method == "ROUTER_CLOSE" and error.reason == "not found"
    assert "ROUTER_CLOSE" in str(error) and "not found" in str(error)
    assert issubclass(UnsupportedError, Exception) and issubclass(InvalidStateError, Exception)
