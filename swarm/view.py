"""A node's local view of the swarm: the newest record from each peer, with a TTL.

Liveness cannot rest on connections (a frozen peer stays "connected" forever),
so every accepted record refreshes its owner's deadline and a periodic sweep
removes owners not heard from within their TTL. The view is plain data and a
clock: no I/O, so it is tested without a network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from swarm.records import LoadRecord, Placement, PlacementRecord, Record, SuspectRecord

__all__ = ["PeerState", "SwarmView", "ViewEvent"]

log = logging.getLogger(__name__)

MIN_TTL_S = 1.0
MAX_TTL_S = 300.0


@dataclass
class PeerState:
    peer_id: str
    expires_at: float
    load: LoadRecord | None = None
    placements: PlacementRecord | None = None


@dataclass(frozen=True)
class ViewEvent:
    kind: str
    """"added", "removed", "load" or "placements"."""
    peer_id: str


class SwarmView:
    def __init__(
        self,
        self_id: str,
        default_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        suspect_grace_s: float | None = None,
    ) -> None:
        self.self_id = self_id
        self.default_ttl_s = default_ttl_s
        self.suspect_grace_s = suspect_grace_s if suspect_grace_s is not None else default_ttl_s / 2
        self._clock = clock
        self._peers: dict[str, PeerState] = {}
        self._listeners: list[Callable[[ViewEvent], None]] = []

    # -- reading -------------------------------------------------------------------

    def peers(self) -> dict[str, PeerState]:
        """Live peers other than this node (a copy)."""
        return dict(self._peers)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._peers

    def __len__(self) -> int:
        return len(self._peers)

    def load(self, peer_id: str) -> LoadRecord | None:
        state = self._peers.get(peer_id)
        return state.load if state else None

    def placements(self) -> dict[str, tuple[str, Placement]]:
        """Every piece hosted by a live peer: key -> (owner peer id, placement)."""
        merged: dict[str, tuple[str, Placement]] = {}
        for peer_id, state in self._peers.items():
            if state.placements is not None:
                for key, placement in state.placements.placements.items():
                    merged[key] = (peer_id, placement)
        return merged

    def locate(self, key: str) -> str | None:
        """The live peer hosting ``key``, if any."""
        for peer_id, state in self._peers.items():
            if state.placements is not None and key in state.placements.placements:
                return peer_id
        return None

    # -- listening -----------------------------------------------------------------

    def add_listener(self, listener: Callable[[ViewEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every change; returns the remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _emit(self, kind: str, peer_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(ViewEvent(kind, peer_id))
            except Exception:
                log.exception("view listener failed")

    # -- updating ------------------------------------------------------------------

    def apply(self, record: Record) -> bool:
        """Merge a validated record; False if it is stale (not newer than what we hold).

        Any record, even a stale one, proves its owner alive: it refreshes the deadline.
        """
        if record.peer_id == self.self_id:
            return False
        if isinstance(record, SuspectRecord):
            for peer_id in record.suspects:
                if peer_id != record.peer_id:  # nobody suspects itself into an early death
                    self.suspect(peer_id, self.suspect_grace_s)
            state = self._peers.get(record.peer_id)
            if state is not None:  # the reporter, at least, is alive
                ttl = state.load.ttl_s if state.load else self.default_ttl_s
                state.expires_at = max(state.expires_at, self._clock() + min(max(ttl, MIN_TTL_S), MAX_TTL_S))
            return False
        now = self._clock()
        state = self._peers.get(record.peer_id)
        added = state is None
        if state is None:
            state = PeerState(record.peer_id, now + self.default_ttl_s)
            self._peers[record.peer_id] = state
        changed = False
        if isinstance(record, LoadRecord):
            ttl = min(max(record.ttl_s, MIN_TTL_S), MAX_TTL_S)
            state.expires_at = now + ttl
            if state.load is None or record.version > state.load.version:
                previous = state.load
                state.load = record
                changed = previous is None or (previous.workers, previous.addrs) != (record.workers, record.addrs)
        else:
            ttl = state.load.ttl_s if state.load else self.default_ttl_s
            state.expires_at = max(state.expires_at, now + min(max(ttl, MIN_TTL_S), MAX_TTL_S))
            if state.placements is None or record.version > state.placements.version:
                state.placements = record
                changed = True
        if added:
            self._emit("added", record.peer_id)
        if changed:
            self._emit("load" if isinstance(record, LoadRecord) else "placements", record.peer_id)
        return changed or added

    def suspect(self, peer_id: str, grace_s: float) -> None:
        """A direct connection to ``peer_id`` closed (ours, or a reporter's): unless
        its records keep arriving, drop it after ``grace_s`` instead of the full TTL."""
        state = self._peers.get(peer_id)
        if state is not None:
            state.expires_at = min(state.expires_at, self._clock() + grace_s)

    def expire(self) -> list[str]:
        """Remove peers past their deadline; returns their ids."""
        now = self._clock()
        dead = [peer_id for peer_id, state in self._peers.items() if state.expires_at < now]
        for peer_id in dead:
            self.remove(peer_id)
        return dead

    def remove(self, peer_id: str) -> None:
        if self._peers.pop(peer_id, None) is not None:
            self._emit("removed", peer_id)
