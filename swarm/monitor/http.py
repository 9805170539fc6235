"""The monitor's web server (aiohttp): the page, its JSON API, Server-Sent Events and `/metrics`.

Read-only by construction: every route is a GET except ``POST /login``, which
only sets a cookie. Every route but ``/login`` needs the token, presented as
``Authorization: Bearer <token>`` (Prometheus, scripts) or as the HttpOnly,
SameSite=Strict cookie the login form sets (the page, its EventSource). The
token comes from a file or the environment, never the command line (which any
local user can read in the process list).

Routes: ``/`` (the page), ``/static/*``, ``/api/state`` (one snapshot),
``/api/events`` (SSE: "history" once, then "state" on every change and
"sample" every sample period), ``/api/nodes/{peer}/transports`` (per-transport
statistics from `media.stats`, fetched on demand over ROPE from the member
that hosts them), ``/metrics`` (Prometheus text format).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from swarm import logs
from swarm.monitor.metrics import render_metrics
from swarm.monitor.options import TOKEN_ENV, HttpConfig
from swarm.monitor.state import SwarmState

__all__ = ["COOKIE", "MonitorServer", "serving"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "mafalda_monitor"
STATS_TIMEOUT_S = 5.0
STATS_CACHE_S = 1.0
KEEPALIVE_S = 10.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

LocalStats = Callable[[], Awaitable[dict[str, Any]]]


_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>Mafalda monitor: sign in</title>
<link rel="stylesheet" href="/static/style.css"></head><body class="login"><form method="post" action="/login">
<h1>Mafalda monitor</h1><p>{message}</p><input type="password" name="token" placeholder="monitor token"
autocomplete="current-password" autofocus><button type="submit">Open</button></form></body></html>"""


class MonitorServer:
    """Serves one node's `SwarmState`; ``local_stats`` (a media node) adds its workers to `/metrics`."""

    def __init__(self, state: SwarmState, token: str, *, local_stats: LocalStats | None = None) -> None:
        self.state = state
        self.node = state.node
        self._token = token.encode()
        self._local_stats = local_stats
        self._stats_cache: dict[str, tuple[float, asyncio.Future[dict[str, Any]]]] = {}
        self._runner: web.AppRunner | None = None
        self._state_task: asyncio.Task[None] | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_get("/", self._index)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/nodes/{peer}/transports", self._transports)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_static("/static", STATIC, follow_symlinks=False)
        return app

    async def start(self, host: str, port: int) -> str:
        if not (STATIC / "vendor" / "uPlot.iife.min.js").exists():
            log.warning("no charting library under %s: run scripts/setup (the page shows no plots)", STATIC / "vendor")
        self._state_task = asyncio.get_running_loop().create_task(self.state.run())
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._state_task is not None:
            self._state_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_task

    # -- access ------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        offered = request.cookies.get(COOKIE, "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            offered = header.removeprefix("Bearer ").strip()
        return bool(offered) and hmac.compare_digest(offered.encode(), self._token)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        public = request.path == "/login" or request.path == "/static/style.css"
        if not public and not self._authorized(request):
            if request.path == "/":
                response: web.StreamResponse = self._login_form("Enter the monitor token.", status=401)
            else:
                response = web.json_response({"error": "token required"}, status=401,
                                             headers={"WWW-Authenticate": 'Bearer realm="mafalda-monitor"'})
        else:
            response = await handler(request)
        if not response.prepared:
            response.headers.update(SECURITY_HEADERS)
        return response

    def _login_form(self, message: str, status: int = 200) -> web.Response:
        return web.Response(text=_LOGIN.format(message=html.escape(message)), status=status, content_type="text/html")

    async def _login_page(self, request: web.Request) -> web.Response:
        return self._login_form("Enter the monitor token.")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = str(form.get("token", ""))
        if not hmac.compare_digest(token.encode(), self._token):
            await asyncio.sleep(0.5)  # slows guessing down; the token is long anyway
            return self._login_form("Wrong token.", status=401)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    # -- the page and its API ----------------------------------------------------------

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _api_state(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.state.version, **self.state.snapshot()})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
                                               **SECURITY_HEADERS})
        await response.prepare(request)
        queue = self.state.subscribe()
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        event, data = await queue.get()
                except TimeoutError:
                    if not self.state.is_subscribed(queue):
                        break  # dropped as too slow: ending the stream makes the browser reconnect
                    await response.write(b": keepalive\n\n")
                    continue
                await response.write(f"event: {event}\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            self.state.unsubscribe(queue)
        return response

    async def _transports(self, request: web.Request) -> web.Response:
        peer = request.match_info["peer"]
        try:
            stats = await self._stats_of(peer)
        except LookupError as error:
            return web.json_response({"error": str(error)}, status=404)
        except Exception as error:
            return web.json_response({"error": f"{peer} did not answer: {error or type(error).__name__}"}, status=502)
        return web.json_response({"peer": peer, "time": stats.get("time"), "transports": stats.get("transports", []),
                                  "totals": stats.get("totals", {})})

    async def _stats_of(self, peer: str) -> dict[str, Any]:
        """`media.stats` of one member; concurrent asks for one member share one fetch (and its next second)."""
        cached = self._stats_cache.get(peer)
        if cached is not None and time.monotonic() - cached[0] < STATS_CACHE_S:
            return await asyncio.shield(cached[1])
        if peer == self.node.peer_id:
            if self._local_stats is None:
                raise LookupError("this node hosts no workers")
            fetch: Awaitable[dict[str, Any]] = self._local_stats()
        elif self.node.view is None or peer not in self.node.view:
            raise LookupError(f"{peer} is not a live member")
        else:
            fetch = self._remote_stats(peer)
        future = asyncio.ensure_future(fetch)
        self._stats_cache = {p: c for p, c in self._stats_cache.items() if time.monotonic() - c[0] < STATS_CACHE_S}
        self._stats_cache[peer] = (time.monotonic(), future)
        return await asyncio.shield(future)

    async def _remote_stats(self, peer: str) -> dict[str, Any]:
        from swarm.media_node import member_session

        async with asyncio.timeout(STATS_TIMEOUT_S):
            remote = await member_session(self.node, peer)
            try:
                return await remote.get_node_stats()
            finally:
                await remote.close()

    async def _metrics(self, request: web.Request) -> web.Response:
        local = await self._local_stats() if self._local_stats is not None else None
        body = render_metrics(self.state.rows(), self.state.rooms(), local, self.node.peer_id)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@contextlib.asynccontextmanager
async def serving(config: HttpConfig, node: Any, local_stats: LocalStats | None = None
                  ) -> AsyncIterator[MonitorServer]:
    """The page for ``node`` while the block runs."""
    server = MonitorServer(SwarmState(node), config.token, local_stats=local_stats)
    try:
        try:
            url = await server.start(config.host, config.port)
        except OSError as error:  # the address is taken or not ours: the operator's mistake, said plainly
            print(f"mafalda-swarm: cannot serve the page on {config.host}:{config.port}: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        logs.announce(__name__, f"monitor page: {url}/ (token from the token file or ${TOKEN_ENV})")
        yield server
    finally:
        await server.close()
