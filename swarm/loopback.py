"""A Remote Mediasoup server and a client of it in one process, over a real carrier on 127.0.0.1.

In swarm/ because its libp2p carrier needs the swarm's host (`swarm.bridge`); media/ stays below swarm/.

For tests, benchmarks and demos: the server is a real `RopeServer` reached
through a real WebSocket listener (with a token) or through two real libp2p
hosts (the server admits only the client host's peer id), so every call
crosses the same code paths as between machines.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any, Literal

from media.remote.client import RemoteMediasoup, connect_libp2p, connect_websocket
from media.remote.server import MediasoupServer
from rope import ReconnectPolicy, members_only, token_auth
from rope.libp2p import serve_libp2p
from rope.websocket import WebSocketListener

Carrier = Literal["websocket", "libp2p"]


@contextlib.asynccontextmanager
async def loopback(
    backend: Any, carrier: Carrier = "websocket", *, reconnect: ReconnectPolicy | None = None, **options: Any
) -> AsyncIterator[tuple[MediasoupServer, RemoteMediasoup]]:
    """Serve ``backend`` and connect to it; on exit the client, server (and its workers) and carrier close."""
    async with contextlib.AsyncExitStack() as stack:
        if reconnect is not None:
            options["reconnect"] = reconnect
        if carrier == "websocket":
            token = secrets.token_hex(8)
            server = MediasoupServer(backend, authorize=token_auth(token))
            stack.push_async_callback(server.close)
            listener = await WebSocketListener(server.rope).start()
            stack.push_async_callback(listener.close)
            client = await connect_websocket(listener.url, token=token, **options)
        else:
            from swarm.bridge import open_host  # libp2p loads only when used

            server_host = await stack.enter_async_context(open_host())
            client_host = await stack.enter_async_context(open_host())
            server = MediasoupServer(backend, authorize=members_only(lambda peer: peer == client_host.peer_id))
            stack.push_async_callback(server.close)
            serve_libp2p(server.rope, server_host)
            await client_host.connect(server_host.listen_addrs[0])
            client = await connect_libp2p(client_host, server_host.peer_id, **options)
        stack.push_async_callback(client.close)
        yield server, client
