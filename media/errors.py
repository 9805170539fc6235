"""Error types shared by the media layer.

They mirror mediasoup's ``errors.js`` so callers can tell "not supported"
(a capability mismatch the remote side can fix by offering something else) and
"invalid state" (the object is closed or not ready) apart from argument errors,
which are plain ``TypeError`` exactly as mediasoup throws them.
"""

from __future__ import annotations


class UnsupportedError(Exception):
    """Something (a codec, an RTX stream, ...) is well formed but cannot be supported."""


class InvalidStateError(Exception):
    """A method was called on an object in a state that forbids it (e.g. closed)."""


class WorkerError(Exception):
    """The mediasoup worker rejected a request.

    The method and the worker's reason are kept as attributes so callers can
    branch on them without parsing the message.
    """

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"request failed [method:{method}]: {reason}")
        self.method = method
        self.reason = reason

    def __reduce__(self) -> tuple[type[WorkerError], tuple[str, str]]:
        # Keep the error picklable although __init__ takes two arguments.
        return (type(self), (self.method, self.reason))
