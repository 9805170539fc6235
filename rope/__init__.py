"""ROPE: Remote Objects, Procedures and Events.

A server registers `RopeObject`s; clients hold synchronised proxies of them,
over WebSocket (`rope.websocket`) or libp2p streams (`rope.libp2p`). The wire
format is in ``rope/PROTOCOL.md``.

Server side::

    server = RopeServer(authorize=members_only(view.is_member))
    room = server.register(RopeObject("Room", id="room", state={"items": 0}))

    @room.method
    async def create_item(name: str) -> RopeObject:   # returned objects become proxies
        room.update_state(items=room.state["items"] + 1)
        return RopeObject("Item", state={"name": name}, parent=room)

    serve_libp2p(server, host)                       # and/or WebSocketListener(server).start()

Client side::

    async with RopeConnection(libp2p_connector(host, server_peer_id)) as connection:
        client = await connection.client()            # CONNECTED: holds a copy of every object
        room = client.get("room")
        item = await room.create_item("one")          # a RemoteObject
        item.on("bumped", print)                      # remote events
        item.observer.on("close", lambda: ...)        # the object went away
        print(room.items, item.state)                 # state kept in sync
"""

from rope.channel import MessageChannel, Peer
from rope.client import ClientState, Connector, ReconnectPolicy, RopeClient, RopeConnection, connect
from rope.errors import (
    CallTimeout,
    ClientClosed,
    ConnectionLost,
    ErrorCode,
    InvalidParams,
    ProtocolError,
    RemoteError,
    RopeError,
    Unauthorized,
    UnknownMethod,
    UnknownObject,
)
from rope.objects import RopeObject, exposed
from rope.proxy import RemoteObject
from rope.server import (
    Authorizer,
    Credentials,
    RopeServer,
    SessionListener,
    current_caller,
    current_session,
    members_only,
    token_auth,
)

__all__ = [
    "Authorizer",
    "CallTimeout",
    "ClientClosed",
    "ClientState",
    "ConnectionLost",
    "Connector",
    "Credentials",
    "ErrorCode",
    "InvalidParams",
    "MessageChannel",
    "Peer",
    "ProtocolError",
    "ReconnectPolicy",
    "RemoteError",
    "RemoteObject",
    "RopeClient",
    "RopeConnection",
    "RopeError",
    "RopeObject",
    "RopeServer",
    "SessionListener",
    "Unauthorized",
    "UnknownMethod",
    "UnknownObject",
    "connect",
    "current_caller",
    "current_session",
    "exposed",
    "members_only",
    "token_auth",
]
