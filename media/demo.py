"""`mafalda-swarm demo`: a loopback room through a real worker.

One aiortc client sends a synthetic 320x240 VP8 video and an opus tone, a
second client receives both through a real mediasoup router; the demo prints
the frames received each second, then pauses the producers on the server and
shows the frames stop, then resumes them.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in run(): the CLI's help and argument errors must not wait for aiortc
    from media.aiortc_client import AiortcClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each phase runs (default 3)")


def _counts(receiver: AiortcClient) -> str:
    return ", ".join(
        f"{track.kind}: {track.frames} frames"
        + (f" ({track.width}x{track.height})" if track.kind == "video" and track.width else "")
        for track in receiver.received.values()
    )


async def _phase(title: str, receiver: AiortcClient, seconds: float) -> None:
    print(f"-- {title}")
    for second in range(max(1, int(seconds))):
        await asyncio.sleep(1.0)
        print(f"   t+{second + 1}s  {_counts(receiver)}", flush=True)


async def run(args: argparse.Namespace) -> int:
    from media import create_worker
    from media.aiortc_client import AiortcClient
    from media.codecs import DEFAULT_MEDIA_CODECS

    worker = await create_worker()
    print(f"worker pid {worker.pid} running")
    try:
        router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
        sender, receiver = AiortcClient(router, name="alice"), AiortcClient(router, name="bob")
        await sender.join()
        await receiver.join()
        producers = await sender.send(video=True, audio=True)
        for producer in producers:
            await receiver.receive(producer.id)
        print(f"alice sends {', '.join(p.kind for p in producers)}; bob receives through router {router.id}")
        await _phase("media flowing", receiver, args.seconds)
        for producer in producers:
            await producer.pause()
        await asyncio.sleep(0.5)  # frames already in flight
        await _phase("producers paused on the server", receiver, args.seconds)
        for producer in producers:
            await producer.resume()
        for consumer in receiver.consumers.values():
            if consumer.kind == "video":
                await consumer.request_key_frame()  # the decoder needs one after the gap
        await _phase("producers resumed", receiver, args.seconds)
        await sender.close()
        await receiver.close()
    finally:
        await worker.close()
    return 0
