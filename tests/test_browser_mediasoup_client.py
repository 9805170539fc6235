"""A real browser client, mediasoup-client in headless Chromium, in a room with an aiortc participant.

The page (tests/browser_room.html) is an application's web client: mediasoup-client's
Device loaded with the router's capabilities, sending the fake camera as VP8 and the
fake microphone as opus, and receiving the other participant. Its signalling is a
small HTTP API served here, calling this project's router on the installed worker
(3.27.1 by default). Asserted is what the two people would notice: each decodes the
other's video and audio. The bundle comes from npm through scripts/setup
(scripts/install-browser-client); nothing is fetched while the test runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from media.aiortc_client import AiortcClient
from media.codecs import DEFAULT_MEDIA_CODECS
from tests.browser import CHROMIUM, WEBRTC_FLAGS, chromium_page
from tests.conftest import backend_mediasoup

HERE = Path(__file__).parent
PAGE = HERE / "browser_room.html"
BUNDLE = HERE / "vendor" / "mediasoup-client.js"
FRAMES = 40
"""Video frames each side must decode (2 s of the fake camera's 20 fps)."""
AUDIO_PACKETS = 100
"""Opus packets (20 ms each: 2 s) each side must receive."""
WITHIN_S = 90.0
"""Bound for each wait: ICE, DTLS and the first key frame on a busy shared machine."""

pytestmark = [
    pytest.mark.skipif(not BUNDLE.exists(), reason=f"no mediasoup-client bundle at {BUNDLE}: scripts/setup "
                       "(scripts/install-browser-client) bundles it from npm"),
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}: scripts/setup "
                       "(scripts/install-monitor-assets) installs Debian's chromium"),
]


class Signalling:
    """The application server's side: each page request becomes a call on the router."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.transports: dict[str, Any] = {}
        self.producers: dict[str, Any] = {}
        self.consumers: dict[str, Any] = {}
        self.methods: dict[str, Callable[..., Awaitable[Any]]] = {
            "routerRtpCapabilities": self.router_rtp_capabilities,
            "createWebRtcTransport": self.create_webrtc_transport,
            "connect": self.connect,
            "produce": self.produce,
            "consume": self.consume,
            "resume": self.resume,
        }

    async def router_rtp_capabilities(self) -> dict[str, Any]:
        return self.router.rtp_capabilities  # type: ignore[no-any-return]

    async def create_webrtc_transport(self) -> dict[str, Any]:
        transport = await self.router.create_webrtc_transport(
            listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}], enable_tcp=False
        )
        self.transports[transport.id] = transport
        return {"id": transport.id, "iceParameters": transport.ice_parameters,
                "iceCandidates": transport.ice_candidates, "dtlsParameters": transport.dtls_parameters}

    async def connect(self, transportId: str, dtlsParameters: dict[str, Any]) -> dict[str, Any]:
        await self.transports[transportId].connect(dtls_parameters=dtlsParameters)
        return {}

    async def produce(self, transportId: str, kind: str, rtpParameters: dict[str, Any]) -> dict[str, Any]:
        producer = await self.transports[transportId].produce(kind=kind, rtp_parameters=rtpParameters)
        self.producers[producer.id] = producer
        return {"id": producer.id}

    async def consume(self, transportId: str, producerId: str, rtpCapabilities: dict[str, Any]) -> dict[str, Any]:
        consumer = await self.transports[transportId].consume(
            producer_id=producerId, rtp_capabilities=rtpCapabilities, paused=True
        )
        self.consumers[consumer.id] = consumer
        return {"id": consumer.id, "producerId": producerId, "kind": consumer.kind,
                "rtpParameters": consumer.rtp_parameters}

    async def resume(self, consumerId: str) -> dict[str, Any]:
        await self.consumers[consumerId].resume()
        return {}

    async def handle(self, request: web.Request) -> web.Response:
        method = self.methods.get(request.match_info["method"])
        if method is None:
            raise web.HTTPNotFound(text=f"no method {request.match_info['method']!r}")
        try:
            result = await method(**await request.json())
        except (TypeError, ValueError, KeyError) as error:
            raise web.HTTPBadRequest(text=f"{type(error).__name__}: {error}") from error
        return web.json_response(result)

    async def close(self) -> None:
        for transport in self.transports.values():
            await transport.close()


@contextlib.asynccontextmanager
async def application(signalling: Signalling) -> AsyncIterator[str]:
    """The page, the bundle and the signalling API on 127.0.0.1 (a secure context: getUserMedia works)."""
    def file(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
        async def serve(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(path)
        return serve

    app = web.Application()
    app.router.add_get("/", file(PAGE))
    app.router.add_get("/mediasoup-client.js", file(BUNDLE))
    app.router.add_post("/rpc/{method}", signalling.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


BROWSER_RECEIVED = f"""(async () => {{
  const r = await room.received();
  return r.video && r.video.framesDecoded >= {FRAMES}
    && r.audio && r.audio.packetsReceived >= {AUDIO_PACKETS} && r.audio.totalSamplesReceived > 0 && r;
}})()"""


@pytest.mark.parametrize("backend", ["local", "vertical-cluster"])
async def test_browser_and_aiortc_exchange_vp8_and_opus(backend: str, tmp_path: Path) -> None:
    """On a local router, and on a vertical router spanning workers of two Remote Mediasoup servers
    (two consumers fill a worker there, so the participant's sending transport lands on another
    worker and its media reaches the browser through a pipe)."""
    async with backend_mediasoup(backend) as mediasoup:
        worker = await mediasoup.create_worker()
        try:
            router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)
            await _exchange(router, tmp_path, piped=backend == "vertical-cluster")
        finally:
            await worker.close()


async def _exchange(router: Any, tmp_path: Path, *, piped: bool) -> None:
    signalling = Signalling(router)
    peer = AiortcClient(router, name="aiortc")
    try:
        async with application(signalling) as url, \
                chromium_page(tmp_path / "profile", flags=WEBRTC_FLAGS) as page:
            await page.goto(url)
            handler_name = await page.evaluate("room.join()")
            assert handler_name.startswith("Chrome")
            produced = await page.evaluate("room.produce()")
            assert signalling.producers[produced["video"]].rtp_parameters["codecs"][0]["mimeType"] == "video/VP8"
            assert signalling.producers[produced["audio"]].rtp_parameters["codecs"][0]["mimeType"] == "audio/opus"

            await peer.join()
            seen = await peer.receive(produced["video"])
            heard = await peer.receive(produced["audio"])
            for producer in await peer.send(video=True, audio=True, width=320, height=240):
                await page.evaluate(f"room.consume({json.dumps(producer.id)})")

            await seen.wait_for_frames(FRAMES, within=WITHIN_S)
            await heard.wait_for_frames(AUDIO_PACKETS, within=WITHIN_S)
            assert seen.width and seen.height  # the fake camera's picture (Chromium may scale it down)
            received = await page.wait_for(BROWSER_RECEIVED, within=WITHIN_S)
            assert received["video"]["mimeType"] == "video/VP8"
            assert (received["video"]["frameWidth"], received["video"]["frameHeight"]) == (320, 240)
            assert received["audio"]["mimeType"] == "audio/opus"
            if piped:
                assert router.pipe_count > 0
    finally:
        await peer.close()
        await signalling.close()
        await router.close()
