"""The channel's FlatBuffers codec: the mypyc build against the pure-Python source, on real messages.

    .venv/bin/python -m bench.codec [--seconds 0.5] [--json]

Drives a real worker through one create_webrtc_transport() and one consume(),
keeps what the channel wrote and read for them (the requests as the channel
built them, the answers as the worker sent them), then times encoding each
request and decoding each message with both builds of `media.fbs_codec_impl`,
taking turns, best of 5 rounds of ``--seconds`` each. The baseline is the
pure-Python codec (what runs where ``scripts/build-codec`` could not build, or
after the source was edited). Without a build of the current source, only the
pure-Python column is printed, with the reason.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import media
from bench.control_plane import DEFAULT_MEDIA_CODECS, LOOPBACK, OPUS_RTP_PARAMETERS
from bench.report import emit_json, parser, progress, table
from media import fbs, fbs_codec

ROUNDS = 5


@contextmanager
def recorded(requests: list[Any], answers: list[bytes]) -> Iterator[None]:
    """What the channel encodes, and the answers it decodes, meanwhile (`media.channel` calls through
    `media.fbs_codec`; a message it reads is preceded by its 4-byte size)."""
    encode, decode = fbs_codec.encode_size_prefixed, fbs_codec.decode
    response = fbs.enum("Message.Body").Response

    def recording_encode(message: Any) -> bytes:
        requests.append(message)
        return encode(message)

    def recording_decode(cls: Any, buf: bytes | bytearray, offset: int = 0) -> Any:
        message = decode(cls, buf, offset)
        if message.dataType == response:  # not the notifications and logs that come meanwhile
            length = int.from_bytes(buf[offset - 4 : offset], "little")
            answers.append(bytes(buf[offset : offset + length]))
        return message

    fbs_codec.encode_size_prefixed, fbs_codec.decode = recording_encode, recording_decode  # type: ignore[assignment]
    try:
        yield
    finally:
        fbs_codec.encode_size_prefixed, fbs_codec.decode = encode, decode  # type: ignore[assignment]


async def capture() -> dict[str, tuple[Any, bytes]]:
    """{operation: (its request as built, the worker's answer)}."""
    worker = await media.create_worker()
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        send = await router.create_webrtc_transport(listen_infos=LOOPBACK)
        recv = await router.create_webrtc_transport(listen_infos=LOOPBACK)
        producer = await send.produce(kind="audio", rtp_parameters=OPUS_RTP_PARAMETERS)
        caps = router.rtp_capabilities
        messages = {}
        for name, call in (("create_webrtc_transport", lambda: router.create_webrtc_transport(listen_infos=LOOPBACK)),
                           ("consume", lambda: recv.consume(producer_id=producer.id, rtp_capabilities=caps))):
            requests: list[Any] = []
            answers: list[bytes] = []
            with recorded(requests, answers):
                await call()
            messages[name] = (requests[-1], answers[-1])
        return messages
    finally:
        await worker.close()


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    calls, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            fn()
        calls += 100
    return 1e6 * (time.perf_counter() - started) / calls


def builds() -> tuple[dict[str, ModuleType], str | None]:
    found = {"pure Python": importlib.import_module(fbs_codec.SOURCE)}
    compiled, why_not = fbs_codec.compiled_build()
    if compiled is None:
        return found, why_not
    found["compiled (mypyc)"] = compiled
    return found, None


def main() -> None:
    args_parser = parser(__doc__.splitlines()[0] if __doc__ else "codec")
    args_parser.add_argument("--seconds", type=float, default=0.5, help="duration of each timing, per round")
    args = args_parser.parse_args()
    progress("capturing a create_webrtc_transport() and a consume() from a real worker ...")
    messages = asyncio.run(capture())
    codecs, missing = builds()
    message_cls = fbs.table("Message.Message")
    cases: dict[str, Callable[[ModuleType], Callable[[], object]]] = {}
    for name, (request, answer) in messages.items():
        encoded = codecs["pure Python"].encode_size_prefixed(request)
        for codec in codecs.values():  # the builds agree, or the figures compare different work
            if codec.encode_size_prefixed(request) != encoded:
                raise SystemExit(f"the codec builds encode the {name} request differently")
        cases[f"{name}: encode the request ({len(encoded)} B)"] = lambda c, r=request: lambda: c.encode_size_prefixed(r)
        cases[f"{name}: decode the request"] = lambda c, e=encoded: lambda: c.decode(message_cls, e, 4)
        cases[f"{name}: decode the answer ({len(answer)} B)"] = lambda c, a=answer: lambda: c.decode(message_cls, a)
    best: dict[str, dict[str, float]] = {case: {} for case in cases}
    for round_ in range(ROUNDS):
        progress(f"round {round_ + 1}/{ROUNDS} ...")
        for case, make in cases.items():
            for build, codec in codecs.items():
                us = per_call_us(make(codec), args.seconds)
                best[case][build] = min(best[case].get(build, us), us)
    headers = ["message", *(f"{build} us" for build in codecs)]
    rows: list[list[Any]] = [[case, *(best[case][build] for build in codecs)] for case in cases]
    if len(codecs) > 1:
        headers.append("pure / compiled")
        for row, case in zip(rows, cases, strict=True):
            row.append(best[case]["pure Python"] / best[case]["compiled (mypyc)"])
    table(headers, rows, title=f"FlatBuffers codec, µs per call, best of {ROUNDS} rounds (baseline: pure Python)")
    if missing:
        print(missing)
    emit_json(args.json, {"bench": "codec", "rounds": ROUNDS, "seconds": args.seconds, "us_per_call": best,
                          "compiled": missing is None, "why_not_compiled": missing})


if __name__ == "__main__":
    main()
