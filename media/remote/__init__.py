"""Remote Mediasoup: a machine's mediasoup served over ROPE, and a client with the same API.

Server (any back-end with ``create_worker``: `media`, a `Vertical`, a `RemoteMediasoup`)::

    server = MediasoupServer(media, authorize=any_of(members_only(view.is_member), token_auth(token)))
    serve_libp2p(server.rope, host)                        # swarm members
    listener = await WebSocketListener(server.rope, port=4443).start()   # application servers

Client::

    mediasoup = await connect_websocket(listener.url, token=token)     # or connect_libp2p(host, peer_id)
    worker = await mediasoup.create_worker()
    router = await worker.create_router(media_codecs=DEFAULT_MEDIA_CODECS)   # as with `media`

`RemoteMediasoup(rope_client)` wraps an existing ROPE session. The CLIs are
`serve_cli` (``mafalda-swarm serve``) and `proxy_cli` (``mafalda-swarm proxy``).
"""

from media.remote.client import RemoteMediasoup, connect_libp2p, connect_websocket
from media.remote.server import MediasoupServer, any_of

__all__ = ["MediasoupServer", "RemoteMediasoup", "any_of", "connect_libp2p", "connect_websocket"]
