"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol with `websockets`.

Just what the page tests need: open a page, evaluate JavaScript, take a
screenshot. No browser download and no extra package: the DevTools protocol
is JSON over a WebSocket, and `websockets` is already a dependency.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1400, 1100


WEBRTC_FLAGS = (
    "--use-fake-device-for-media-stream",  # a synthetic camera (640x480, 20 fps) and microphone
    "--use-fake-ui-for-media-stream",  # getUserMedia() granted without a prompt
    "--allow-loopback-in-peer-connection",  # 127.0.0.1 ICE candidates, which Chromium drops otherwise
)
"""For pages that use WebRTC with the fake devices, on loopback only."""


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab, through a flattened DevTools session on the browser's connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self._session: str | None = None

    async def _read(self) -> None:
        try:
            async for raw in self._connection:
                message = json.loads(raw)
                future = self._pending.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the browser closed its DevTools connection"))

    async def call(self, method: str, *, browser: bool = False, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if not browser and self._session is not None:
            message["sessionId"] = self._session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._connection.send(json.dumps(message))
        async with asyncio.timeout(30):
            answer = await future
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})  # type: ignore[no-any-return]

    async def open(self) -> None:
        target = await self.call("Target.createTarget", browser=True, url="about:blank")
        attached = await self.call("Target.attachToTarget", browser=True, targetId=target["targetId"], flatten=True)
        self._session = attached["sessionId"]
        await self.call("Page.enable")
        await self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                        mobile=False)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 30.0) -> Any:
        """Until ``expression`` is truthy in the page (it is fed by a stream: polled, bounded)."""
        async with asyncio.timeout(within):
            while not (value := await self.evaluate(expression)):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return value

    async def screenshot(self, path: Path) -> Path:
        metrics = await self.call("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": WIDTH, "height": max(HEIGHT, size["height"]),
                                     "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))  # noqa: ASYNC240
        return path

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page(profile_dir: Path, *, flags: tuple[str, ...] = ()) -> AsyncIterator[Page]:
    """A headless Chromium with a fresh profile, and one tab in it; everything is gone afterwards.

    ``flags``: more command-line switches (e.g. `WEBRTC_FLAGS`)."""
    if not os.access(CHROMIUM, os.X_OK):
        raise BrowserError(f"no Chromium at {CHROMIUM}: run scripts/setup (it installs Debian's chromium)")
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile_dir}",
        f"--window-size={WIDTH},{HEIGHT}", *flags, "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    try:
        assert process.stderr is not None
        url = None
        async with asyncio.timeout(60):
            while url is None:
                line = (await process.stderr.readline()).decode(errors="replace")
                if not line:
                    raise BrowserError("Chromium exited before offering DevTools")
                if line.startswith("DevTools listening on "):
                    url = line.removeprefix("DevTools listening on ").strip()
        drain = asyncio.get_running_loop().create_task(_drain(process.stderr))
        async with connect(url, max_size=None, open_timeout=30) as connection:
            page = Page(connection)
            try:
                await page.open()
                yield page
            finally:
                await page.close()
        drain.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the browser and its helper processes: ours alone
        await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
