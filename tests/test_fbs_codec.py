"""media.fbs_codec against flatc's own Python code for the installed worker's schemas.

The reference is the generated object API on the stock `flatbuffers.Builder`:
what one writes, the other must read back field for field, both ways. (The
worker reading what fbs_codec writes is what tests/mediasoup/ checks.)

Each test runs on both builds of the codec: the pure-Python source
(media.fbs_codec_impl) and, where scripts/build-codec has built it, the
mypyc-compiled one (media.fbs_codec_compiled; skipped with the reason where it
is not built); the two must write the same bytes for every table of the schema.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import flatbuffers
import pytest

from media import fbs, fbs_codec, fbs_codec_impl, wire


def same(ours: Any, reference: Any, path: str = "message") -> None:
    """Field-for-field equality of object-API values (strings read back as bytes)."""
    if isinstance(reference, str):
        reference = reference.encode()
    if isinstance(ours, str):
        ours = ours.encode()
    if hasattr(reference, "__dict__"):
        assert type(ours) is type(reference), path
        assert vars(ours).keys() == vars(reference).keys(), path
        for key in vars(reference):
            same(getattr(ours, key), getattr(reference, key), f"{path}.{key}")
    elif isinstance(reference, list):
        assert isinstance(ours, list) and len(ours) == len(reference), path
        for i, (a, b) in enumerate(zip(ours, reference, strict=True)):
            same(a, b, f"{path}[{i}]")
    else:
        assert (ours == reference and type(ours) is type(reference)) or (
            isinstance(reference, bool | int) and ours == reference and not isinstance(ours, float)
        ), f"{path}: {ours!r} != {reference!r}"


def consume_message() -> Any:
    """A TRANSPORT_CONSUME request as transport.consume() builds it, with every kind of field."""
    params = {
        "mid": "0",
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000,
             "parameters": {"x-google-start-bitrate": 1000, "flag": True, "ratio": 0.5, "name": "a",
                            "list": [1, -2, 3]},
             "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000, "parameters": {"apt": 101},
             "rtcpFeedback": []},
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": False, "parameters": {}},
        ],
        "encodings": [
            {"ssrc": 7, "rtx": {"ssrc": 1}, "scalabilityMode": "L1T3", "maxBitrate": 2**40, "dtx": True},
            {"rid": "r1", "codecPayloadType": 101},
        ],
        "rtcp": {"cname": "c", "reducedSize": False},
    }
    body = fbs.new(
        "Transport.ConsumeRequest",
        consumerId="consumer", producerId="producer", kind=wire.media_kind_to_fbs("video"),
        rtpParameters=wire.rtp_parameters_to_fbs(params), type=wire.rtp_type_to_fbs("simulcast"),
        consumableRtpEncodings=wire.encodings_to_fbs([{"ssrc": 5}, {"ssrc": 6}]), paused=True,
        preferredLayers=wire.consumer_layers_to_fbs({"spatialLayer": 1, "temporalLayer": 0}), ignoreDtx=False,
    )
    request = fbs.new(
        "Request.Request", id=0xFFFFFFFF, method=fbs.enum("Request.Method").TRANSPORT_CONSUME,
        handlerId="transport", bodyType=fbs.enum("Request.Body").Transport_ConsumeRequest, body=body,
    )
    return fbs.new("Message.Message", dataType=fbs.enum("Message.Body").Request, data=request)


def trace_message() -> Any:
    """A request with a vector of scalars (uint8 enums) and an empty string."""
    body = fbs.new("Transport.EnableTraceEventRequest", events=[0, 1])
    request = fbs.new(
        "Request.Request", id=1, method=fbs.enum("Request.Method").TRANSPORT_ENABLE_TRACE_EVENT, handlerId="",
        bodyType=fbs.enum("Request.Body").Transport_EnableTraceEventRequest, body=body,
    )
    return fbs.new("Message.Message", dataType=fbs.enum("Message.Body").Request, data=request)


def send_message() -> Any:
    """A notification: scalars beside vectors of 1- and 2-byte scalars (offsets stay 4 bytes inline)."""
    body = fbs.new("DataProducer.SendNotification", ppid=51, data=list(b"hello"), subchannels=[1, 65535],
                   requiredSubchannel=7)
    notification = fbs.new(
        "Notification.Notification", handlerId="data-producer", event=fbs.enum("Notification.Event").DATAPRODUCER_SEND,
        bodyType=fbs.enum("Notification.Body").DataProducer_SendNotification, body=body,
    )
    return fbs.new("Message.Message", dataType=fbs.enum("Message.Body").Notification, data=notification)


MESSAGES = (consume_message, trace_message, send_message)


def reference_encode(message: Any) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.FinishSizePrefixed(message.Pack(builder))
    return bytes(builder.Output())


def reference_decode(payload: bytes) -> Any:
    return fbs.table("Message.Message").InitFromObj(
        importlib.import_module("FBS.Message.Message").Message.GetRootAs(payload, 0)
    )


def every_table() -> Iterator[Any]:
    """The object-API class of every table in the installed worker's schemas."""
    fbs.enum("Message.Body")  # puts the generated FBS package on sys.path
    package = importlib.import_module("FBS")
    for namespace in pkgutil.iter_modules(package.__path__):
        sub = importlib.import_module(f"FBS.{namespace.name}")
        for module in pkgutil.iter_modules(sub.__path__):
            cls = getattr(importlib.import_module(f"FBS.{namespace.name}.{module.name}"), f"{module.name}T", None)
            if cls is not None:
                yield cls


def compiled_codec() -> ModuleType:
    """The mypyc build of the codec, if it is built from the current source; else the test skips."""
    compiled, why_not = fbs_codec.compiled_build()
    if compiled is None:
        pytest.skip(f"{why_not}: pure-Python codec only")
    return compiled


@pytest.fixture(params=["pure", "compiled"])
def codec(request: pytest.FixtureRequest) -> ModuleType:
    return fbs_codec_impl if request.param == "pure" else compiled_codec()


def test_every_table_of_the_schema_has_a_plan(codec: ModuleType) -> None:
    learnt = 0
    for cls in every_table():
        assert codec.plan(cls).fields, cls
        learnt += 1
    assert learnt > 100


def test_what_we_write_reads_back_with_flatc_code(codec: ModuleType) -> None:
    for make in MESSAGES:
        message = make()
        data = codec.encode_size_prefixed(message)
        assert int.from_bytes(data[:4], "little") == len(data) - 4
        same(reference_decode(data[4:]), message)


def test_what_flatc_code_writes_we_read_back(codec: ModuleType) -> None:
    for make in MESSAGES:
        payload = reference_encode(make())[4:]
        same(codec.decode(fbs.table("Message.Message"), payload), reference_decode(payload))


def test_optional_scalars_stay_absent_and_zero_stays_zero(codec: ModuleType) -> None:
    message = consume_message()
    message.data.body.rtpParameters.encodings[0].ssrc = 0
    back = codec.decode(fbs.table("Message.Message"), codec.encode_size_prefixed(message)[4:])
    first, second = back.data.body.rtpParameters.encodings
    assert first.ssrc == 0 and second.ssrc is None  # `ssrc: uint32 = null`: 0 is a value
    assert first.maxBitrate == 2**40 and second.maxBitrate is None
    assert back.data.body.rtpParameters.rtcp.reducedSize is False  # default true, so written


def test_a_bad_value_is_a_type_error_as_with_flatbuffers_builder(codec: ModuleType) -> None:
    for fields, message in (({"port": "chicken"}, "ConnectRequest.port: 'chicken'"),
                            ({"port": 70000}, "ConnectRequest.port: 70000"), ({"ip": 5}, "a string field got 5")):
        body = fbs.new("PlainTransport.ConnectRequest", **fields)
        with pytest.raises(TypeError, match=message):
            codec.encode_size_prefixed(body)


def sample(cls: Any, depth: int = 0) -> Any:
    """An instance of table `cls` with every field set, to a value other than its default (3 tables deep)."""
    obj = cls()
    values = vars(obj)
    for field in fbs_codec_impl.plan(cls).fields:
        if field.kind == fbs_codec_impl.SCALAR:
            if field.fmt == "?":
                values[field.attr] = not field.default
            else:
                values[field.attr] = (field.default or 0) + (1.5 if field.fmt in "fd" else 1)
        elif field.kind == fbs_codec_impl.STRING:
            values[field.attr] = f"{field.attr}-{depth}"
        elif field.kind == fbs_codec_impl.VEC_STRING:
            values[field.attr] = ["one", "", "three"]
        elif field.kind == fbs_codec_impl.VEC_SCALAR:
            values[field.attr] = [True, False] if field.fmt == "?" else [0.5, 2.0] if field.fmt in "fd" else [1, 2, 3]
        elif depth < 3:
            if field.kind == fbs_codec_impl.TABLE:
                values[field.attr] = sample(field.child, depth + 1)
            elif field.kind == fbs_codec_impl.VEC_TABLE:
                values[field.attr] = [sample(field.child, depth + 1), sample(field.child, depth + 1)]
            else:  # UNION: its last member
                number, member = max(field.child.items())
                values[field.union_type] = number
                values[field.attr] = sample(member, depth + 1)
    for field in fbs_codec_impl.plan(cls).fields:  # a union whose member was left out has no type either
        if field.kind == fbs_codec_impl.UNION and values[field.attr] is None:
            values[field.union_type] = 0
    return obj


def samples() -> Iterator[Any]:
    """The real messages above, then every table of the schema both full (`sample`) and empty."""
    yield from (make() for make in MESSAGES)
    for cls in every_table():
        yield sample(cls)
        yield cls()


def test_every_table_reads_back_with_flatc_code(codec: ModuleType) -> None:
    for obj in samples():
        cls = type(obj)
        data = codec.encode_size_prefixed(obj)
        accessor = getattr(importlib.import_module(cls.__module__), cls.__name__.removesuffix("T"))
        same(codec.decode(cls, data, 4), cls.InitFromObj(accessor.GetRootAs(data, 4)), cls.__name__)


def test_compiled_and_pure_python_write_and_read_the_same_for_every_table() -> None:
    compiled = compiled_codec()
    checked = 0
    for obj in samples():
        cls = type(obj)
        data = fbs_codec_impl.encode_size_prefixed(obj)
        assert compiled.encode_size_prefixed(obj) == data, cls
        same(compiled.decode(cls, data, 4), fbs_codec_impl.decode(cls, data, 4), cls.__name__)
        checked += 1
    assert checked > 200


def test_the_compiled_codec_is_in_use_when_built() -> None:
    compiled = compiled_codec()
    assert fbs_codec.implementation is compiled
    assert fbs_codec.encode_size_prefixed is compiled.encode_size_prefixed
    assert fbs_codec.decode is compiled.decode


def test_a_compiled_codec_from_another_source_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stale-code guard, with a stand-in for the compiled module: its stamp decides."""
    stand_in = ModuleType(fbs_codec.COMPILED)
    stand_in.__file__ = "stand-in.so"
    monkeypatch.setitem(sys.modules, fbs_codec.COMPILED, stand_in)
    stand_in.SOURCE_SHA256 = "0" * 64  # type: ignore[attr-defined]
    assert fbs_codec.load() is fbs_codec_impl
    stand_in.SOURCE_SHA256 = fbs_codec.source_digest()  # type: ignore[attr-defined]
    assert fbs_codec.load() is stand_in


def test_a_compiled_module_shadowing_the_source_is_warned_of(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stray = ModuleType(fbs_codec.SOURCE)
    stray.__file__ = str(fbs_codec.SOURCE_FILE.with_suffix(".cpython-311-x86_64-linux-gnu.so"))
    monkeypatch.setitem(sys.modules, fbs_codec.SOURCE, stray)
    monkeypatch.setitem(sys.modules, fbs_codec.COMPILED, None)  # not built: importing it raises ImportError
    with caplog.at_level(logging.WARNING, logger="media.fbs_codec"):
        assert fbs_codec.load() is stray
    assert "shadows" in caplog.text
