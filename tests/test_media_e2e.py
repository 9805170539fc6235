"""Real media end to end: two aiortc clients on 127.0.0.1 through a real worker."""

from __future__ import annotations

import asyncio

from media.aiortc_client import AiortcClient


async def test_frames_arrive_at_the_right_resolution_and_pause_stops_them(router: object) -> None:
    alice, bob = AiortcClient(router, name="alice"), AiortcClient(router, name="bob")
    try:
        await alice.join()
        await bob.join()
        producers = await alice.send(video=True, audio=True, width=320, height=240)
        assert sorted(p.kind for p in producers) == ["audio", "video"]
        # Both at once, as an application reacting to two "newproducer" events would, plus a repeat.
        received = await asyncio.gather(*(bob.receive(p.id) for p in [*producers, producers[0]]))
        tracks = {t.kind: t for t in received}
        assert received[2] is received[0] and len(bob.consumers) == 2

        await tracks["video"].wait_for_frames(10)
        await tracks["audio"].wait_for_frames(25)
        assert (tracks["video"].width, tracks["video"].height) == (320, 240)

        for producer in producers:
            await producer.pause()
        await asyncio.sleep(1.0)  # let frames already in flight land
        frozen = {kind: track.frames for kind, track in tracks.items()}
        await asyncio.sleep(1.5)
        assert {kind: track.frames for kind, track in tracks.items()} == frozen

        for producer in producers:
            await producer.resume()
        for consumer in bob.consumers.values():
            if consumer.kind == "video":
                await consumer.request_key_frame()
        await tracks["video"].wait_for_frames(frozen["video"] + 5)
        await tracks["audio"].wait_for_frames(frozen["audio"] + 10)
    finally:
        await alice.close()
        await bob.close()
