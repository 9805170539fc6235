"""ROPE: Remote Objects, Procedures and Events.

A server registers `RopeObject`s; clients hold synchronised proxies of them,
over WebSocket (`rope.websocket`) or libp2p streams (`rope.libp2p`). The wire
format is in ``rope/PROTOCOL.md``.
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
from rope.server import Authorizer, Credentials, RopeServer, current_caller, members_only, token_auth

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
    "Unauthorized",
    "UnknownMethod",
    "UnknownObject",
    "connect",
    "current_caller",
    "exposed",
    "members_only",
    "token_auth",
]
