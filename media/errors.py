"""Error types shared by the media layer.

They mirror mediasoup 3.27's ``errors.js`` so callers can tell "not supported"
(a capability mismatch the remote side can fix by offering something else),
"not found" (no such object: an unknown id, or one closed already) and "worker
closed" apart from argument errors, which are plain ``TypeError`` exactly as
mediasoup throws them. mediasoup 3.27 dropped ``InvalidStateError``; here it
stays the base of the two closed-object errors (and names the other wrong
states, e.g. a comedia transport's connect()), so ``except InvalidStateError``
written before 3.27 still catches them.
"""

from __future__ import annotations


class UnsupportedError(Exception):
    """Something (a codec, an RTX stream, ...) is well formed but cannot be supported."""


class InvalidStateError(Exception):
    """A method was called on an object in a state that forbids it (e.g. closed)."""


class NotFoundError(KeyError, InvalidStateError):
    """A referenced object does not exist (mediasoup 3.27's ``NotFoundError``).

    An unknown id (a producer to consume or pipe), or a method called on an object
    that was closed while its worker lives: 3.27 sends such a call to the worker,
    which no longer knows the object; here it fails before any request. Also a
    `KeyError` (what an unknown id raised before 3.27 named it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # not KeyError's quoted repr


class WorkerClosedError(InvalidStateError):
    """A method was called on a closed worker, or on an object of one (mediasoup 3.27's ``WorkerClosedError``):
    its channel takes no request; the requests pending when it closed fail with it too."""


def closed_error(what: str, *, worker_closed: bool) -> InvalidStateError:
    """What a call on the closed object ``what`` raises, as mediasoup 3.27 rejects it."""
    if worker_closed:
        return WorkerClosedError(f"{what} closed" if what == "Worker" else f"{what} closed (its Worker is closed)")
    return NotFoundError(f"{what} closed")


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
