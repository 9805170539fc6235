"""A node's local view of the swarm: who is a member (SWIM states) and the newest
record from each.

Membership follows SWIM (see `swarm.swim`): a member is *alive* or *suspect*
(both are in the view), or *dead* (removed; its incarnation is remembered for a
while so a late record cannot bring it back). The merge rules, in one place:

- any record (load, placements, members) from P at incarnation i is news that P
  is alive at i: ignored if P is remembered dead at >= i; adds P if unknown; with
  i above what we hold it clears a suspicion (that is how P refutes);
- "suspect" P at i from accuser A: counts only at P's current incarnation or
  above; starts (or, from a new accuser, shortens) P's suspicion timer;
- "dead" P at i: removes P at once if i >= P's incarnation;
- load and placements themselves: highest version wins (only P publishes them).

A TTL stays as a backstop (records must be refreshed), far longer than failure
detection. The view is plain data and a clock: no I/O, so it is tested without
a network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swarm.records import LoadRecord, MemberNews, MembershipRecord, Placement, PlacementRecord, Record
from swarm.swim import LocalHealth, SwimConfig

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
    incarnation: int = 0
    state: str = "alive"
    """"alive" or "suspect" (dead members are not in the view)."""
    suspected_at: float = 0.0
    accusers: set[str] = field(default_factory=set)
    suspect_deadline: float = float("inf")
    refused: bool = False
    """Our own redial of the suspect was refused at once: ``refused_suspicion_s`` caps its timer."""


@dataclass(frozen=True)
class ViewEvent:
    kind: str
    """"added", "removed", "load", "placements", "suspect" (a member is suspected) or
    "alive" (a suspicion was refuted)."""
    peer_id: str


class SwarmView:
    def __init__(
        self,
        self_id: str,
        default_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        swim: SwimConfig | None = None,
        health: LocalHealth | None = None,
    ) -> None:
        self.self_id = self_id
        self.default_ttl_s = default_ttl_s
        self.swim = swim or SwimConfig()
        self.health = health or LocalHealth(self.swim)
        """Our own suspicion timers stretch with it too: a starved node must not be the
        first to declare anyone dead (memberlist scales only probes; on one shared box
        everyone is starved at once)."""
        self._clock = clock
        self._peers: dict[str, PeerState] = {}
        self._dead: dict[str, tuple[int, float]] = {}
        """peer -> (incarnation declared dead, when)."""
        self._returned: dict[str, float] = {}
        """Members back from the dead (a higher incarnation): when (see `SwimConfig.returned_doubt_s`)."""
        self._listeners: list[Callable[[ViewEvent], None]] = []
        self._next_tick = float("inf")
        """When the node's sweep is due next (`tick`); inf: no sweep (a view used alone)."""
        self._doubt_deaths_until = 0.0

    # -- reading -------------------------------------------------------------------

    def peers(self) -> dict[str, PeerState]:
        """Live peers (alive or suspect) other than this node (a copy)."""
        return dict(self._peers)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._peers

    def __len__(self) -> int:
        return len(self._peers)

    def load(self, peer_id: str) -> LoadRecord | None:
        state = self._peers.get(peer_id)
        return state.load if state else None

    def state_of(self, peer_id: str) -> tuple[str, int] | None:
        """(state, incarnation) as this node believes it; None if never heard of (or forgotten)."""
        state = self._peers.get(peer_id)
        if state is not None:
            return state.state, state.incarnation
        dead = self._dead.get(peer_id)
        return ("dead", dead[0]) if dead else None

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
        """Merge a validated record; False if it changed nothing (stale, or about us)."""
        if record.peer_id == self.self_id:
            return False
        changed = self.alive(record.peer_id, record.incarnation)
        state = self._peers.get(record.peer_id)
        if state is None:
            return False  # remembered dead at this incarnation or later
        now = self._clock()
        if isinstance(record, MembershipRecord):
            for news in record.news:
                if news.state != "alive":
                    changed = self.accused(news, record.peer_id) or changed
            return changed
        if isinstance(record, LoadRecord):
            state.expires_at = now + min(max(record.ttl_s, MIN_TTL_S), MAX_TTL_S)
            if state.load is None or record.version > state.load.version:
                previous, state.load = state.load, record
                if previous is None or (previous.workers, previous.addrs) != (record.workers, record.addrs):
                    self._emit("load", record.peer_id)
                    changed = True
        elif state.placements is None or record.version > state.placements.version:
            state.placements = record
            self._emit("placements", record.peer_id)
            changed = True
        return changed

    def alive(self, peer_id: str, incarnation: int) -> bool:
        """Evidence that ``peer_id`` runs at ``incarnation`` (its own record, its ping or ack).
        True if that added it or cleared a suspicion."""
        if peer_id == self.self_id:
            return False
        dead = self._dead.get(peer_id)
        now = self._clock()
        if dead is not None:
            if incarnation <= dead[0]:
                return False
            del self._dead[peer_id]
            self._returned[peer_id] = now
        state = self._peers.get(peer_id)
        if state is None:
            self._peers[peer_id] = PeerState(peer_id, now + self.default_ttl_s, incarnation=incarnation)
            self._emit("added", peer_id)
            return True
        ttl = state.load.ttl_s if state.load else self.default_ttl_s
        state.expires_at = max(state.expires_at, now + min(max(ttl, MIN_TTL_S), MAX_TTL_S))
        if incarnation <= state.incarnation:
            return False
        state.incarnation = incarnation
        if state.state == "suspect":
            state.state, state.accusers, state.suspect_deadline, state.refused = "alive", set(), float("inf"), False
            self._emit("alive", peer_id)
            return True
        return False

    def suspect(self, peer_id: str, certain: bool = False) -> MemberNews | None:
        """This node's own probe of ``peer_id`` failed: the news to tell the others, if any.
        ``certain`` (its address refused us at once): our timer runs ``refused_suspicion_s``."""
        state = self._peers.get(peer_id)
        if state is None:
            return None
        news = MemberNews(peer_id, "suspect", state.incarnation)
        changed = self.accused(news, self.self_id)
        if certain and state.state == "suspect" and not state.refused:
            state.refused = True
            self._set_deadline(state)
        return news if changed else None

    def accused(self, news: MemberNews, accuser: str) -> bool:
        """Merge a "suspect" or "dead" news item from ``accuser``; True if it changed the view."""
        subject = news.subject
        if subject == self.self_id or subject == accuser:
            return False  # about us: the node refutes; nobody accuses itself
        if news.state == "dead":
            state = self._peers.get(subject)
            if state is not None and news.incarnation < state.incarnation:
                return False
            if state is None or not (self._doubting() or self._returned_lately(accuser)):
                self.declare_dead(subject, news.incarnation)
                return state is not None
            # We were stalled (this death may be older than the subject's refutation queued
            # behind it), or the accuser was cut off from the subject until lately. Suspect it
            # instead: the refutation clears it, or it dies later.
            news = MemberNews(subject, "suspect", news.incarnation)
        state = self._peers.get(subject)
        if state is None or news.incarnation < state.incarnation:
            return False
        now = self._clock()
        if state.state == "alive" or news.incarnation > state.incarnation:
            state.state, state.incarnation = "suspect", news.incarnation
            state.suspected_at, state.accusers, state.refused = now, {accuser}, False
        elif accuser in state.accusers:
            return False
        else:
            state.accusers.add(accuser)
        self._set_deadline(state)
        if len(state.accusers) == 1:
            self._emit("suspect", subject)
        return True

    def _set_deadline(self, state: PeerState) -> None:
        confirmations = len(state.accusers) - 1
        timeout = self.health.scale(self.swim.suspicion_timeout_s(confirmations, members=len(self._peers) + 1))
        timeout = max(timeout, self.swim.suspicion_round_trips * self.health.rto(state.peer_id))
        if state.refused:  # not stretched by our health: a refused dial is no timing we could misjudge
            timeout = min(timeout, self.swim.refused_suspicion_s)
        state.suspect_deadline = state.suspected_at + timeout

    def declare_dead(self, peer_id: str, incarnation: int) -> None:
        known = self._dead.get(peer_id)
        self._dead[peer_id] = (max(incarnation, known[0] if known else 0), self._clock())
        self.remove(peer_id)

    def tick(self, next_in_s: float) -> None:
        """The node's sweep ran and will run again in ``next_in_s``: until then plus
        ``backlog_stall_s``, this node counts as running (see `accused`)."""
        self._next_tick = self._clock() + next_in_s

    def stalled(self, seconds: float) -> None:
        """This node was not running for ``seconds`` (stopped, starved): refutations may be
        waiting unread behind older news, so every running suspicion gets that much more
        time; after a stall of ``backlog_stall_s`` or more, for as long again (at most
        twice that) a death we hear of counts as a suspicion only (see `accused`). A TTL does
        not run while we could not listen either: without that, a node thawed after a stall
        longer than the TTL would drop every peer at once, then close their sessions' objects."""
        for state in self._peers.values():
            state.expires_at += seconds
            if state.state == "suspect":
                state.suspect_deadline += seconds
                state.suspected_at += seconds
        if seconds >= self.swim.backlog_stall_s:  # its backlog takes a second or two to read
            self._doubt_deaths_until = self._clock() + min(seconds, 2 * self.swim.backlog_stall_s)

    def _returned_lately(self, peer_id: str) -> bool:
        back = self._returned.get(peer_id)
        return back is not None and self._clock() - back < self.swim.returned_doubt_s

    def _doubting(self) -> bool:
        now = self._clock()
        return now < self._doubt_deaths_until or now > self._next_tick + self.swim.backlog_stall_s

    def expire(self) -> list[tuple[str, int | None]]:
        """Remove suspects whose timeout ran out (-> (peer, incarnation declared dead))
        and peers silent past their TTL (-> (peer, None)); forget old dead."""
        now = self._clock()
        gone: list[tuple[str, int | None]] = []
        for peer_id, state in list(self._peers.items()):
            if state.suspect_deadline < now:
                self.declare_dead(peer_id, state.incarnation)
                gone.append((peer_id, state.incarnation))
            elif state.expires_at < now:
                self.remove(peer_id)
                gone.append((peer_id, None))
        forget = now - self.swim.dead_memory_s
        for peer_id in [p for p, (_, when) in self._dead.items() if when < forget]:
            del self._dead[peer_id]
        for peer_id in [p for p, when in self._returned.items() if now - when >= self.swim.returned_doubt_s]:
            del self._returned[peer_id]
        return gone

    def remove(self, peer_id: str) -> None:
        if self._peers.pop(peer_id, None) is not None:
            self.health.forget(peer_id)
            self._emit("removed", peer_id)
