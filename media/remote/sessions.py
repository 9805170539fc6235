"""Who owns what a Remote Mediasoup server made: the session that asked for it.

Every object created during a call (the worker ``create_worker`` returns,
the router, transports, producers and consumers below it, and objects a
call creates behind the API, such as a server-side pipe's transports) belongs
to the calling **session**: its principal (the libp2p peer id, or "a
WebSocket client") and the ROPE session id the client chose at random, which
a reconnecting client presents again (ROPE resumes sessions by id).

A session is **gone** when no connection has it open (the client closed it,
or its connection ended), or when the swarm says its peer is gone
(`peer_gone`: a frozen peer's connection can stay open for ever). After
``grace_s`` (`SESSION_GRACE_S` by default) of being gone, its objects are
closed here, oldest first (a worker takes its routers, transports, producers
and consumers with it), with the usual events for every other client. A
re-open of the same session (a reconnection, within the grace) or any call
in it re-claims them. Objects made outside any call have no owner of their
own: they live and die with their parent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rope.server import Credentials, current_caller, current_session

__all__ = ["SESSION_GRACE_S", "OwnerKey", "Sessions"]

log = logging.getLogger("media.remote.sessions")

SESSION_GRACE_S = 10.0
"""How long a session may be gone before its objects are closed: past the ROPE client's reconnection
back-off (2 s at most between attempts) with room for a busy machine, short enough that a dead entry's
media stops within seconds of the swarm noticing it."""

OwnerKey = tuple[str, str | None, str]
"""(carrier, libp2p peer id or None, session id)."""


@dataclass(eq=False)
class _Owner:
    key: OwnerKey
    objects: dict[int, Any] = field(default_factory=dict)
    """id(media object) -> the media object, in creation order."""
    timer: asyncio.TimerHandle | None = None
    gone_since: float | None = None


def owner_key(credentials: Credentials, session: str) -> OwnerKey:
    return (credentials.peer.carrier, credentials.peer.peer_id, session)


class Sessions:
    """Ownership and the grace timers of one server's sessions."""

    def __init__(self, grace_s: float = SESSION_GRACE_S, *, on_expired: Callable[[list[Any]], Any]) -> None:
        if grace_s < 0:
            raise ValueError("grace_s must be >= 0")
        self.grace_s = grace_s
        self._on_expired = on_expired
        self._connections: dict[OwnerKey, set[int]] = {}
        self._owners: dict[OwnerKey, _Owner] = {}
        self.expired = 0
        """Sessions whose objects were closed because they were gone past the grace."""

    # -- who is calling -------------------------------------------------------------

    @staticmethod
    def current() -> OwnerKey | None:
        """The session of the call running now, if any."""
        credentials, session = current_caller.get(None), current_session.get(None)
        if credentials is None or session is None:
            return None
        return owner_key(credentials, session)

    def claim(self, obj: Any) -> None:
        """``obj`` was just made: it belongs to the calling session (if a call made it)."""
        key = self.current()
        if key is None or key not in self._connections:
            return  # not a call of ours (a call to another server of this process made it), or no call
        owner = self._owners.get(key)
        if owner is None:
            owner = self._owners[key] = _Owner(key)
        owner.objects[id(obj)] = obj
        self.touch()

    def forget(self, obj: Any) -> None:
        """``obj`` closed: nobody needs to close it any more."""
        for owner in self._owners.values():
            if owner.objects.pop(id(obj), None) is not None:
                return

    def owned(self, key: OwnerKey) -> list[Any]:
        owner = self._owners.get(key)
        return list(owner.objects.values()) if owner is not None else []

    def touch(self) -> None:
        """A call in the current session: it is here, whatever the view said."""
        key = self.current()
        if key is not None and self._connections.get(key):
            self._reclaim(key)

    # -- sessions coming and going -----------------------------------------------------

    def session_event(self, kind: str, connection: int, credentials: Credentials, session: str) -> None:
        """The `rope.server.SessionListener` of the server."""
        key = owner_key(credentials, session)
        connections = self._connections.setdefault(key, set())
        if kind == "open":
            connections.add(connection)
            self._reclaim(key)
            return
        connections.discard(connection)
        if not connections:
            del self._connections[key]
            self._gone(key, "its connection ended")

    def peer_gone(self, peer_id: str) -> None:
        """The swarm dropped ``peer_id``: its sessions are gone, even if a connection still looks open."""
        for key in [key for key in self._owners if key[1] == peer_id]:
            self._gone(key, "its peer left the swarm's view")

    def _gone(self, key: OwnerKey, why: str) -> None:
        owner = self._owners.get(key)
        if owner is None or owner.timer is not None:
            return
        if not owner.objects:
            del self._owners[key]
            return
        log.info("session %s gone (%s): %d object(s) close in %.1f s unless it comes back",
                 _label(key), why, len(owner.objects), self.grace_s)
        owner.gone_since = time.monotonic()
        owner.timer = asyncio.get_running_loop().call_later(self.grace_s, self._expire, key)

    def _reclaim(self, key: OwnerKey) -> None:
        owner = self._owners.get(key)
        if owner is not None and owner.timer is not None:
            owner.timer.cancel()
            owner.timer = None
            log.info("session %s is back after %.1f s: it keeps its %d object(s)", _label(key),
                     time.monotonic() - (owner.gone_since or 0), len(owner.objects))
            owner.gone_since = None

    def _expire(self, key: OwnerKey) -> None:
        owner = self._owners.pop(key, None)
        if owner is None:
            return
        objects = [obj for obj in owner.objects.values() if not getattr(obj, "closed", False)]
        self.expired += 1
        log.info("session %s gone for %.1f s: closing its %d object(s)", _label(key), self.grace_s, len(objects))
        self._on_expired(objects)

    def close(self) -> None:
        for owner in self._owners.values():
            if owner.timer is not None:
                owner.timer.cancel()
        self._owners.clear()
        self._connections.clear()

    @property
    def owners(self) -> int:
        """Sessions owning objects now (for leak checks and monitoring)."""
        return len(self._owners)


def _label(key: OwnerKey) -> str:
    carrier, peer_id, session = key
    return f"{session} ({peer_id or carrier})"
