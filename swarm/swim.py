"""SWIM failure detection with Lifeguard's refinements: the settings and the arithmetic.

Every member probes one other per period (round robin over a shuffled list),
directly, then through ``indirect_probes`` others; only when all fail does it
*suspect* the target and tell everyone. A suspect that is alive hears of it and
*refutes* by raising its incarnation number, which only it may raise. A
suspicion that nobody refutes within its timeout makes the target *dead*.

Lifeguard (HashiCorp's memberlist): the suspicion timeout starts at
``suspicion_max_s`` and shrinks towards ``suspicion_min_s`` as independent
members confirm it (each after its own failed probe), and a member's *local
health* (0 = fine) stretches its own probe period and timeouts, because a slow
prober (CPU starved, paused) would otherwise accuse healthy peers. Here the
health score also rises when the prober notices it was itself stalled (a timer
firing late), and a probe whose wait spans such a stall is void, not a failure.

Presets follow memberlist's ``DefaultLocalConfig`` / ``LAN`` / ``WAN`` idea:
`SwimConfig.local()` (the default; a loopback round trip is ~0.1 ms, so only the
CPU sets the bounds), `SwimConfig.lan()` and `SwimConfig.wan()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["LocalHealth", "SwimConfig"]


@dataclass(frozen=True)
class SwimConfig:
    probe_interval_s: float = 0.5
    """One probe per period (at health 0; faster with many neighbours: `probe_round_members`).
    Each probe is two frames on the member's long-lived probe stream through py-libp2p: CPU
    on each end that, on a 2-core box with 20 nodes, is what bounds the period."""
    probe_round_members: int = 4
    """A member probes each of its neighbours at least every ``probe_round_members`` periods:
    one with more neighbours than that probes faster. Probes go to connected members only, and
    the bootstrap nodes are everyone's neighbours; at one probe per period, a member whose
    neighbours are mostly those (a late joiner) was probed once a second in a 20-node swarm
    and a frozen one found up to 1.7 s later than the others. This way every member is probed
    at least as often as SWIM's one probe per period gives (each has at least this many
    neighbours: `swarm.node.NodeOptions.target_peers`); a hub pays probes in proportion to
    its connections, as it pays for its gossip streams."""
    probe_timeout_s: float = 0.25
    """Direct probe: ping sent -> ack (the probe stream's set-up too, on a member's first probe)."""
    indirect_probes: int = 3
    """k: members asked to probe the target after a failed direct probe."""
    indirect_timeout_s: float = 0.4
    """From the ping-requests to their answers (the helpers use ``probe_timeout_s``)."""
    suspicion_min_s: float = 0.6
    suspicion_max_s: float = 1.6
    refused_suspicion_s: float = 0.25
    """Our own suspicion's timeout when the member's address refused our dial at once
    (a stopped process still accepts TCP: only a gone one refuses); still refutable."""
    suspicion_confirmations: int = 3
    """Independent suspicions (besides the first) that bring the timeout down to the minimum."""
    max_health: int = 8
    """Lifeguard's local-health cap: timeouts stretch at most ``max_health + 1`` times."""
    stall_s: float = 0.1
    """A timer firing this late means this process was not running: void, and less healthy."""
    initial_rto_s: float = 1.0
    """A member's round trip before we measured one (RFC 6298's initial RTO): its first
    probe also opens our probe channel to it, and members start while the box is busiest."""
    max_rto_s: float = 5.0
    """The longest a measured round trip stretches a timeout (a member answering slower than
    that is as good as gone)."""
    suspicion_round_trips: int = 4
    """A suspicion lasts at least this many of the suspect's round trips: time for it to hear
    and for its refutation to come back."""
    backlog_stall_s: float = 1.0
    """A stall at least this long leaves a backlog of news: for as long again, a death we
    hear of is only a suspicion (it may be older than the refutation queued behind it)."""
    dead_memory_s: float = 120.0
    """How long a dead member's incarnation is remembered (late gossip cannot revive it)."""
    returned_doubt_s: float = 10.0
    """For this long after a member comes back from the dead (the other side of a healed
    partition), a death it reports is only a suspicion: it saw nobody refute while it was
    cut off, so its deaths are stale, and a live subject clears the suspicion by answering."""

    @classmethod
    def local(cls, **overrides: Any) -> SwimConfig:
        """Loopback / one machine (the default): about 1 s for a killed peer, under 3 s for a frozen one."""
        return replace(cls(), **overrides)

    @classmethod
    def lan(cls, **overrides: Any) -> SwimConfig:
        """memberlist's LAN figures: 1 s period, 500 ms timeout, suspicion 4-24 s-ish."""
        base = cls(
            probe_interval_s=1.0,
            probe_timeout_s=0.5,
            indirect_timeout_s=0.5,
            suspicion_min_s=4.0,
            suspicion_max_s=24.0,
            refused_suspicion_s=2.0,
            stall_s=0.5,
        )
        return replace(base, **overrides)

    @classmethod
    def wan(cls, **overrides: Any) -> SwimConfig:
        """memberlist's WAN figures: 5 s period, 3 s timeout."""
        base = cls(
            probe_interval_s=5.0,
            probe_timeout_s=3.0,
            indirect_timeout_s=2.0,
            suspicion_min_s=30.0,
            suspicion_max_s=180.0,
            refused_suspicion_s=10.0,
            stall_s=2.0,
            initial_rto_s=3.0,
            max_rto_s=15.0,
        )
        return replace(base, **overrides)

    def probe_period_s(self, neighbours: int) -> float:
        """The time between two probes of ours (at health 0) with this many neighbours."""
        return self.probe_interval_s * min(1.0, self.probe_round_members / max(1, neighbours))

    def suspicion_timeout_s(self, confirmations: int, members: int) -> float:
        """Lifeguard's formula: max - (max - min) * log(C + 1) / log(K + 1), at least min,
        where K is ``suspicion_confirmations`` or, in a swarm of ``members`` (us included)
        too small to produce that many, the members other than the suspect and the first
        accuser."""
        k = min(self.suspicion_confirmations, members - 2)
        if k <= 0:
            return self.suspicion_min_s
        fraction = min(1.0, math.log(max(0, confirmations) + 1) / math.log(k + 1))
        span = self.suspicion_max_s - self.suspicion_min_s
        return max(self.suspicion_min_s, self.suspicion_max_s - span * fraction)


class LocalHealth:
    """Lifeguard's local health multiplier: 0 is healthy; every sign that *we* are
    slow (a probe lost with no nack from the helpers, a suspicion of us, a stall)
    adds one, every clean probe takes one off.

    It also keeps ping round trips (TCP's estimator, RFC 6298: smoothed RTT plus
    four mean deviations), and no wait for an answer is shorter than the round
    trips it needs (`wait`): health is a step per *event*, the round trip
    measures the *condition*. On one box shared by 20 nodes (and whatever else
    runs there) a ping took 0.3-2 s, so fixed timeouts of a few hundred ms, even
    times 9, failed all the time, and every false suspicion was more gossip and
    more probes on a machine already out of CPU (issue 12).

    Two estimates: one over every ping (a few samples a second, so it follows the
    machine within seconds) sets probe timeouts; one per member sets how long its
    suspicion lasts at least (`SwarmView`): a member that was slow to answer gets
    more time to refute, and one frozen since its last answer keeps its old, short
    estimate, so it is found as fast as before.
    """

    def __init__(self, config: SwimConfig) -> None:
        self._max = config.max_health
        self._max_rto = config.max_rto_s
        self._initial_rto = config.initial_rto_s
        self.score = 0
        self._all: tuple[float, float] | None = None
        self._rtt: dict[str, tuple[float, float]] = {}
        """peer -> (smoothed round trip, its mean deviation), seconds."""

    @staticmethod
    def _update(known: tuple[float, float] | None, rtt_s: float) -> tuple[float, float]:
        if known is None:
            return rtt_s, rtt_s / 2
        srtt, rttvar = known
        return 0.875 * srtt + 0.125 * rtt_s, 0.75 * rttvar + 0.25 * abs(srtt - rtt_s)

    def observe(self, peer_id: str, rtt_s: float) -> None:
        """A ping to ``peer_id`` answered after ``rtt_s`` (also one answered after its timeout)."""
        if peer_id not in self._rtt and len(self._rtt) > 4096:
            self._rtt.clear()
        self._rtt[peer_id] = self._update(self._rtt.get(peer_id), rtt_s)
        self._all = self._update(self._all, rtt_s)

    def forget(self, peer_id: str) -> None:
        self._rtt.pop(peer_id, None)

    def _rto(self, known: tuple[float, float] | None) -> float:
        return self._initial_rto if known is None else min(self._max_rto, known[0] + 4 * known[1])

    def rto(self, peer_id: str | None = None) -> float:
        """How long a ping's answer may take (from ``peer_id``, or from anyone): the
        smoothed RTT + 4 deviations, or the initial estimate before any was measured."""
        return self._rto(self._all if peer_id is None else self._rtt.get(peer_id))

    def wait(self, seconds: float, round_trips: int = 1) -> float:
        """A timeout: ``seconds`` stretched by our health, and at least ``round_trips``
        ping round trips as they go now."""
        return max(self.scale(seconds), round_trips * self.rto())

    def worse(self, by: int = 1) -> None:
        self.score = min(self._max, self.score + by)

    def better(self) -> None:
        self.score = max(0, self.score - 1)

    def scale(self, seconds: float) -> float:
        return seconds * (self.score + 1)
