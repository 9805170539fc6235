"""ROPE's error codes and the exceptions that carry them.

Every failure a peer can cause travels as a JSON-RPC 2.0 error object with one
of the codes below, so a client in another language can dispatch on the code
alone. On the Python side a remote application exception is re-raised as a
`RemoteError` whose class also derives from the remote built-in exception type
when there is one: ``except ValueError`` keeps working across the wire.
"""

from __future__ import annotations

import builtins
from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    # JSON-RPC 2.0's own codes.
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # ROPE's codes, in the range JSON-RPC reserves for implementations.
    REMOTE_EXCEPTION = -32000
    UNAUTHORIZED = -32001
    UNKNOWN_OBJECT = -32002
    UNKNOWN_METHOD = -32003
    UNKNOWN_SESSION = -32004
    FRAME_TOO_LARGE = -32005
    HANDSHAKE_REQUIRED = -32006
    UNSUPPORTED_VERSION = -32007
    OVERLOADED = -32008


class RopeError(Exception):
    """Base of every error ROPE raises; ``code`` is the wire code."""

    code: int = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": int(self.code), "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ProtocolError(RopeError):
    """The peer broke the wire protocol (malformed frame, bad message shape)."""


class FrameError(ProtocolError):
    """A frame could not be delivered as a message.

    ``fatal`` frames leave the byte stream unsynchronised (the connection must
    close); non-fatal ones (a bad UTF-8 payload inside a good frame) only cost
    that message.
    """

    def __init__(self, message: str, *, code: int, fatal: bool) -> None:
        super().__init__(message, code=code)
        self.fatal = fatal


class Unauthorized(RopeError):
    code = ErrorCode.UNAUTHORIZED


class UnknownObject(RopeError):
    code = ErrorCode.UNKNOWN_OBJECT


class UnknownMethod(RopeError):
    code = ErrorCode.UNKNOWN_METHOD


class InvalidParams(RopeError):
    code = ErrorCode.INVALID_PARAMS


class ConnectionLost(RopeError, ConnectionError):
    """The connection dropped before the answer came: the call may or may not have run."""


class ClientClosed(RopeError, ConnectionError):
    """The client (or its connection) was closed by the application."""


class CallTimeout(RopeError, TimeoutError):
    """No answer within the call's timeout; the server may still run the call."""


class RemoteError(RopeError):
    """An exception raised by the remote method; ``remote_type`` is its class name."""

    code = ErrorCode.REMOTE_EXCEPTION
    remote_type: str = "Exception"

    def __str__(self) -> str:
        return f"{self.remote_type}: {self.message}"


_remote_classes: dict[str, type[RemoteError]] = {}


def remote_error_class(remote_type: str) -> type[RemoteError]:
    """The `RemoteError` subclass for ``remote_type``, cached.

    Only built-in exception names gain the built-in as a base; any other name
    gives a plain `RemoteError` subclass, so no remote string can make us
    import or instantiate arbitrary classes.
    """
    cls = _remote_classes.get(remote_type)
    if cls is not None:
        return cls
    bases: tuple[type, ...] = (RemoteError,)
    builtin = getattr(builtins, remote_type, None)
    if (
        isinstance(builtin, type)
        and issubclass(builtin, Exception)
        and not issubclass(builtin, (UnicodeError, BaseExceptionGroup))  # constructors need extra args
    ):
        bases = (RemoteError, builtin)
    try:
        cls = type(f"Remote{remote_type}" if remote_type.isidentifier() else "RemoteException", bases, {})
    except TypeError:  # layout conflict with some built-in
        cls = type("RemoteException", (RemoteError,), {})
    cls.remote_type = remote_type
    if len(_remote_classes) < 1024:  # bounded: names come from the peer
        _remote_classes[remote_type] = cls
    return cls


def error_from_json(error: Any) -> RopeError:
    """Turn a JSON-RPC error object into the matching exception."""
    if not isinstance(error, dict):
        return ProtocolError(f"malformed error object: {error!r}", code=ErrorCode.INTERNAL_ERROR)
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    if code == ErrorCode.REMOTE_EXCEPTION:
        remote_type = str(data.get("type", "Exception")) if isinstance(data, dict) else "Exception"
        remote_message = str(data.get("message", message)) if isinstance(data, dict) else message
        return remote_error_class(remote_type)(remote_message, data=data)
    by_code: dict[int, type[RopeError]] = {
        ErrorCode.UNAUTHORIZED: Unauthorized,
        ErrorCode.UNKNOWN_OBJECT: UnknownObject,
        ErrorCode.UNKNOWN_METHOD: UnknownMethod,
        ErrorCode.INVALID_PARAMS: InvalidParams,
    }
    cls = by_code.get(code, ProtocolError) if isinstance(code, int) else ProtocolError
    return cls(message, code=code if isinstance(code, int) else ErrorCode.INTERNAL_ERROR, data=data)
