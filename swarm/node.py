"""A swarm node: joins through bootstrap peers, proves membership, gossips load
and placements, probes its peers (SWIM) and keeps a view of every other live node.

Failure detection is SWIM with Lifeguard (`swarm.swim`, `swarm.probe`): every
node probes one member per period, indirectly through others if it must, and
gossips a suspicion only when both fail; the suspect refutes by raising its
incarnation, or is declared dead when the suspicion times out (sooner as more
members confirm it). A closed connection triggers a probe at once, so a
SIGKILLed peer is suspected by everyone within milliseconds; a frozen one
(connections stay open) is found by the round of probes. Connections: peer
exchange dials every member learned from gossip (up to ``target_peers``), so on
a small swarm every node probes every other over an open connection.

Gossip (GossipSub, heartbeat 1 s, D=4) carries load, placements and membership
news (at once). Every node forwards every message, so a node's gossip traffic is
(messages per second in the swarm) x (message size) x D: with a fixed period it
grows linearly with N. Load and placements therefore follow a heartbeat that
grows with the swarm (`heartbeat_s`: ``load_interval_s`` x max(1, N / 5)), and
in between a node publishes only what others would notice: within 0.2 s of
`notify_load_changed` (the media side's consumers changed), or when a sample
taken every ``load_interval_s`` differs significantly (`significant_change`):
at once for counts, addresses, links, placements; for a measured figure (CPU,
memory, bandwidth) at most every half heartbeat, so that even on a box whose CPU
swings every sample a node sends at most 2 / heartbeat load messages a second.
A newcomer does not wait for the heartbeat: a node re-announces itself about a
second after a new member connects to it (a newcomer probes, so connects to, every
member it learns of). Records carry their publisher's
incarnation, so a late copy of a dead node's record cannot revive it. The TTL
(6 heartbeats, sent in each record) is a backstop only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from libp2p.crypto.keys import KeyPair

from swarm.bootstrap import BootstrapPeer
from swarm.bridge import GossipConfig, P2PHost, open_host
from swarm.gate import MembershipGate
from swarm.membership import Certificate, CertificateError, CertificateVerifier, peer_id_of
from swarm.probe import Prober
from swarm.records import (
    LoadRecord,
    LoadReport,
    MemberNews,
    MembershipRecord,
    Placement,
    PlacementRecord,
    RecordError,
    VersionCounter,
    decode_envelope,
    encode_envelope,
    heartbeat_s,
    significant_change,
)
from swarm.swim import SwimConfig
from swarm.view import SwarmView, ViewEvent

__all__ = ["STATE_TOPIC", "LoadProvider", "NodeOptions", "SwarmNode"]

log = logging.getLogger(__name__)

STATE_TOPIC = "/mafalda-swarm/state/1"

LoadProvider = Callable[[], LoadReport | Awaitable[LoadReport]]
"""Plugged in by the media side: per-worker consumers, capacity and bandwidth."""


@dataclass(frozen=True)
class NodeOptions:
    listen: str = "/ip4/127.0.0.1/tcp/0"
    bootstrap: Sequence[BootstrapPeer] = ()
    gossip_heartbeat_s: float = 1.0
    gossip_degree: int = 4
    """GossipSub D: every node receives each message about D times, and on a
    shared box that duplicate work is the main cost (spec default 6)."""
    load_interval_s: float = 5.0
    """How often the load is sampled; also the heartbeat of a swarm of up to `heartbeat_peers`."""
    heartbeat_peers: int = 5
    """Above this many nodes the heartbeat grows with N (see `heartbeat_s`)."""
    ttl_s: float | None = None
    """How long others keep us without news; default 6 heartbeats (a backstop:
    failure detection is SWIM's, see ``swim``)."""
    swim: SwimConfig = field(default_factory=SwimConfig.local)
    """Probe period, timeouts, suspicion: `SwimConfig.local()` / `.lan()` / `.wan()`."""
    min_publish_gap_s: float = 0.2
    """Bursts of `notify_load_changed` collapse into one message per gap."""
    announce_delay_s: float = 1.0
    """After a new member connects, re-announce this much later (subscriptions settle)."""
    placements_refresh_s: float = 10.0
    sweep_interval_s: float = 0.05
    """How often suspicion timers are checked (a dict scan of the view: cheap)."""
    target_peers: int = 4
    """Peer exchange dials peers learned from gossip until this many are connected.
    Probes go over these connections (a SIGKILL closes them: its neighbours know at
    once); more connections cost handshakes and memory, not probe traffic."""
    handshake_timeout_s: float = 5.0
    """Bounds a join: the TCP connect (a SYN into a cut network is otherwise retried for two
    minutes) and the membership handshake, each."""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    redial_every_s: float = 2.0
    """Members that left the view are redialled this often (with jitter), as Serf reconnects
    failed members: whichever side of a healed partition dials first, the swarm is one again
    in seconds (nothing else dials a peer no view holds; a cut node's view ends up empty)."""
    redial_for_s: float = 300.0
    """...for this long after they left; a dead node's closed port refuses at once."""
    redial_at_once: int = 4

    @property
    def effective_ttl_s(self) -> float:
        """The TTL at the smallest heartbeat (what a view assumes before a record says more)."""
        return self.ttl_for(self.load_interval_s)

    def ttl_for(self, heartbeat: float) -> float:
        return self.ttl_s if self.ttl_s is not None else 6 * heartbeat


SOFT_CHANGES = {"cpu", "worker cpu", "memory", "bandwidth"}
"""Changes of measured figures (not counts or addresses): they wait for half a heartbeat."""


class _WarnLimiter:
    """At most one warning per key per interval: a lying peer must not flood the log."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval = interval_s
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        if len(self._last) > 10000:
            self._last.clear()
        self._last[key] = now
        return True


class SwarmNode:
    """One member of the swarm. Use as ``async with SwarmNode(...) as node``."""

    def __init__(
        self,
        key_pair: KeyPair,
        certificate: Certificate,
        verifier: CertificateVerifier,
        options: NodeOptions | None = None,
        load_provider: LoadProvider | None = None,
    ) -> None:
        self.options = options or NodeOptions()
        self._key_pair = key_pair
        self._verifier = verifier
        self.certificate = certificate
        self._certificate_text = certificate.to_text()
        self._load_provider = load_provider
        self._stack = contextlib.AsyncExitStack()
        self._host: P2PHost | None = None
        self._gate: MembershipGate | None = None
        self._runner: asyncio.Task[None] | None = None
        self._versions = VersionCounter()
        self._load_changed = asyncio.Event()
        self._placements: dict[str, Placement] = {}
        self._placements_version = 0
        self._placements_changed = asyncio.Event()
        self._dial_backoff: dict[str, float] = {}
        self._addrs: dict[str, tuple[str, ...]] = {}
        """Each peer in the view: the addresses its load record gave (kept once it leaves)."""
        self._departed: dict[str, tuple[tuple[str, ...], float]] = {}
        """Peers that left the view: their addresses and when (see `NodeOptions.redial_every_s`)."""
        self._incarnation = time.time_ns() // 1000
        """SWIM incarnation: only this node raises it (to refute); wall-clock start, so a
        restarted node supersedes what the swarm remembers of its previous life."""
        self._news: dict[str, MemberNews] = {}
        self._news_changed = asyncio.Event()
        self._prober: Prober | None = None
        self._announce: asyncio.TimerHandle | None = None
        self._view_grew_at = time.monotonic()
        self._warn = _WarnLimiter()
        self.view: SwarmView | None = None
        self.rejected_messages = 0
        self.published: collections.Counter[str] = collections.Counter()
        """Messages published, by why: "load asked", "load change", "load heartbeat", "placements", "members"."""
        self.last_load: LoadRecord | None = None
        """The load record this node published last (what every view holds of it)."""

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> SwarmNode:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._verifier.verify(self.certificate, peer_id_of(self._key_pair))  # fail early on a wrong certificate
        options = self.options
        gossip = GossipConfig(
            heartbeat_interval=options.gossip_heartbeat_s,
            degree=options.gossip_degree,
            degree_low=max(1, options.gossip_degree - 1),
            degree_high=2 * options.gossip_degree,
        )
        try:
            host = await self._stack.enter_async_context(
                open_host(
                    key_pair=self._key_pair,
                    listen=options.listen,
                    gossip=gossip,
                    members_only=True,
                    admission_wait_s=options.handshake_timeout_s,
                )
            )
            self._host = host
            self.view = SwarmView(host.peer_id, options.effective_ttl_s, swim=options.swim)
            self.view.add_listener(self._view_changed)
            self._gate = MembershipGate(
                host, self.certificate, self._verifier, options.handshake_timeout_s, on_member=self._member_joined
            )
            self._stack.push_async_callback(self._gate.close)
            self._prober = Prober(
                host,
                self.view,
                options.swim,
                is_member=self.is_member,
                connect=self.connect_member,
                incarnation=lambda: self._incarnation,
                on_suspect=self._tell,
                on_accused=self._refute,
            )
            host.set_gossip_validator(STATE_TOPIC, self._validate)
            subscription = await host.gossip_subscribe(STATE_TOPIC)
            host.add_connection_listener(self._connection_changed, opens=False)
        except BaseException:
            await self._stack.aclose()
            raise
        self._runner = asyncio.get_running_loop().create_task(self._run(subscription))

    async def close(self) -> None:
        """Stop every task, close the host. Idempotent."""
        runner, self._runner = self._runner, None
        if self._announce is not None:
            self._announce.cancel()
            self._announce = None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        await self._stack.aclose()

    async def _run(self, subscription: Any) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._receive(subscription))
            group.create_task(self._publish_load_loop())
            group.create_task(self._publish_placements_loop())
            group.create_task(self._publish_news_loop())
            group.create_task(self._sweep_loop())
            assert self._prober is not None
            group.create_task(self._prober.run())
            group.create_task(self._peer_exchange_loop())
            group.create_task(self._redial_loop())
            for peer in self.options.bootstrap:
                if peer.peer_id != self.peer_id:
                    group.create_task(self._bootstrap_loop(peer))

    # -- public API --------------------------------------------------------------------

    @property
    def host(self) -> P2PHost:
        if self._host is None:
            raise RuntimeError("node is not started")
        return self._host

    @property
    def peer_id(self) -> str:
        return self.host.peer_id

    @property
    def listen_addrs(self) -> list[str]:
        return self.host.listen_addrs

    def is_member(self, peer_id: str) -> bool:
        """True for a connected peer that proved a valid certificate (ROPE's gate)."""
        return self._gate is not None and self._gate.is_member(peer_id)

    def members(self) -> list[str]:
        return list(self._gate.members()) if self._gate else []

    async def join(self, multiaddr: str, connect_timeout_s: float | None = None) -> str:
        """Connect to one more peer and prove membership both ways (`MembershipGate.join`)."""
        if self._gate is None:
            raise RuntimeError("node is not started")
        return await self._gate.join(multiaddr, connect_timeout_s)

    def set_load_provider(self, provider: LoadProvider | None) -> None:
        self._load_provider = provider
        self.notify_load_changed()

    def notify_load_changed(self) -> None:
        """Publish our load now (rate-limited) instead of at the next period."""
        self._load_changed.set()

    def set_placement(self, key: str, kind: str, info: Mapping[str, Any] | None = None) -> None:
        """Announce that this node hosts ``key`` (a router piece, a producer...)."""
        self._placements[key] = Placement(kind, dict(info or {}))
        self._bump_placements()

    def remove_placement(self, key: str) -> None:
        if self._placements.pop(key, None) is not None:
            self._bump_placements()

    @property
    def own_placements(self) -> dict[str, Placement]:
        """What this node announces it hosts (a copy): its own views never hold it."""
        return dict(self._placements)

    def _bump_placements(self) -> None:
        self._placements_version = self._versions.next()
        self._placements_changed.set()

    @property
    def gossip_bytes_sent(self) -> int:
        return self.host.gossip_bytes_sent

    @property
    def probe_bytes_sent(self) -> int:
        """Probe frames written (pings, acks, indirect requests), before libp2p framing."""
        return self._prober.bytes_sent if self._prober else 0

    @property
    def incarnation(self) -> int:
        return self._incarnation

    def probe_stats(self) -> dict[str, object]:
        """Probes sent, direct failures, suspicions raised, voided, health, ping round trips."""
        return self._prober.stats() if self._prober else {}

    @property
    def local_health(self) -> int:
        """Lifeguard's score: 0 healthy; each step stretches our probe timeouts once more."""
        return self._prober.health.score if self._prober else 0

    # -- gossip in ---------------------------------------------------------------------

    def _validate(self, forwarder: str, origin: str, data: bytes) -> bool:
        """Runs on the libp2p thread for every message, before it is delivered or forwarded."""
        try:
            envelope = decode_envelope(data)
            self._verifier.verify_text(envelope.certificate, origin)
            if envelope.record.peer_id != origin:
                raise RecordError(f"record of {envelope.record.peer_id} published by {origin}")
        except (RecordError, CertificateError) as error:
            self.rejected_messages += 1
            if self._warn.allow(origin):
                log.warning("rejected gossip from %s (via %s): %s", origin, forwarder, error)
            return False
        return True

    async def _receive(self, subscription: Any) -> None:
        view = self.view
        assert view is not None
        async for message in subscription:
            if message.origin == self.peer_id:
                continue
            try:
                envelope = decode_envelope(message.data)
            except RecordError as error:  # validated already: only a bug gets here
                log.error("undecodable gossip from %s: %s", message.origin, error)
                continue
            record = envelope.record
            if isinstance(record, MembershipRecord):
                for news in record.news:
                    if news.subject == self.peer_id and news.state != "alive":
                        self._refute(news.state, news.incarnation)
                    elif news.state == "suspect" and self._prober is not None and self.is_member(news.subject):
                        self._prober.probe_soon(news.subject)  # a neighbour: confirm it, or not, ourselves
            view.apply(record)

    # -- gossip out --------------------------------------------------------------------

    async def _sample_load(self, heartbeat: float) -> LoadRecord:
        report = LoadReport()
        if self._load_provider is not None:
            try:
                result = self._load_provider()
                report = await result if inspect.isawaitable(result) else result
            except Exception:
                if self._warn.allow("load-provider"):
                    log.exception("load provider failed; publishing no worker figures")
        return LoadRecord(
            peer_id=self.peer_id,
            version=self._versions.next(),
            cpu_percent=psutil.cpu_percent(interval=None),
            cpu_count=psutil.cpu_count() or 1,
            workers=tuple(report.workers),
            bandwidth_in_bps=report.bandwidth_in_bps,
            bandwidth_out_bps=report.bandwidth_out_bps,
            addrs=tuple(self.listen_addrs),
            ttl_s=self.options.ttl_for(heartbeat),
            placements_version=self._placements_version,
            incarnation=self._incarnation,
            memory_bytes=report.memory_bytes,
            roles=self.certificate.roles,
            links=tuple(sorted(self.members())),
        )

    async def _publish(self, record: LoadRecord | PlacementRecord | MembershipRecord) -> None:
        try:
            await self.host.gossip_publish(STATE_TOPIC, encode_envelope(self._certificate_text, record))
        except (RecordError, ConnectionError) as error:
            if self._warn.allow("publish"):
                log.warning("cannot publish %s: %s", type(record).__name__, error)

    def heartbeat_s(self) -> float:
        """Seconds between unforced load messages now: it follows the view's size, but stays at
        the load interval for two intervals after the view grew (start-up, rejoins: a first message
        lost to a mesh still forming is sent again in one interval, as before, not a long heartbeat)."""
        nodes = len(self.view) + 1 if self.view is not None else 1
        heartbeat = heartbeat_s(self.options.load_interval_s, nodes, self.options.heartbeat_peers)
        if time.monotonic() - self._view_grew_at < 2 * self.options.load_interval_s:
            return self.options.load_interval_s
        return heartbeat

    async def _publish_load_loop(self) -> None:
        """Sample every load interval; publish when asked, on a significant change, or on the heartbeat."""
        interval = self.options.load_interval_s
        published_at, forced = 0.0, True
        while True:
            self._load_changed.clear()
            sampled_at = time.monotonic()
            heartbeat = self.heartbeat_s()
            last = self.last_load
            record = await self._sample_load(heartbeat)
            # The heartbeat never outruns the TTL we last sent: a grown swarm's longer one starts with this record.
            due_in = 0.0 if last is None else min(heartbeat, last.ttl_s / 3) - (sampled_at - published_at)
            changes = [] if forced or due_in <= 0 else significant_change(last, record)
            if set(changes) <= SOFT_CHANGES and sampled_at - published_at < heartbeat / 2:
                changes = []  # a measured figure moved: at most twice a heartbeat, so the total stays bounded in N
            self.published.update(f"load change: {name}" for name in changes)
            why = "asked" if forced else "heartbeat" if due_in <= 0 else "change" if changes else ""
            if why:
                self.published["load " + why] += 1
                self.last_load, published_at = record, sampled_at
                due_in = min(heartbeat, record.ttl_s / 3)
                await self._publish(record)
            try:
                async with asyncio.timeout(max(0.0, min(interval, due_in))):
                    await self._load_changed.wait()
                forced = True
            except TimeoutError:
                forced = False
            await asyncio.sleep(max(0.0, sampled_at + self.options.min_publish_gap_s - time.monotonic()))

    async def _publish_placements_loop(self) -> None:
        while True:
            refresh = self.options.placements_refresh_s * self.heartbeat_s() / self.options.load_interval_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(refresh):
                    await self._placements_changed.wait()
            self._placements_changed.clear()
            if self._placements_version:
                record = PlacementRecord(
                    self.peer_id, self._placements_version, dict(self._placements), self._incarnation
                )
                self.published["placements"] += 1
                await self._publish(record)
            await asyncio.sleep(self.options.min_publish_gap_s)

    # -- liveness and connectivity -------------------------------------------------------

    async def _sweep_loop(self) -> None:
        view, prober = self.view, self._prober
        assert view is not None and prober is not None
        interval, stall = self.options.sweep_interval_s, self.options.swim.stall_s
        while True:
            started = time.monotonic()
            await asyncio.sleep(interval)
            late = time.monotonic() - started - interval
            view.tick(interval)
            if late > stall:
                # We were not running (paused, starved): refutations may be queued unread.
                view.stalled(late + interval)
                prober.health.worse()
                continue
            for peer_id, incarnation in view.expire():
                if incarnation is None:
                    log.info("peer %s left the view (no news within its TTL)", peer_id)
                else:
                    log.info("peer %s is dead (incarnation %d): its suspicion ran out", peer_id, incarnation)
                    self._tell(MemberNews(peer_id, "dead", incarnation))

    def _view_changed(self, event: ViewEvent) -> None:
        if event.kind == "added":
            self._view_grew_at = time.monotonic()
            self._departed.pop(event.peer_id, None)
        if event.kind in ("added", "load") and self.view is not None:
            load = self.view.load(event.peer_id)
            if load is not None and load.addrs:
                self._addrs[event.peer_id] = tuple(load.addrs)
        elif event.kind == "removed" and (addrs := self._addrs.pop(event.peer_id, None)):
            self._departed[event.peer_id] = (addrs, time.monotonic())

    def _member_joined(self, peer_id: str, certificate: Certificate) -> None:
        """Re-announce ourselves soon after a new member connects (once its pubsub
        subscription has arrived), so a newcomer fills its view in about a second
        instead of a heartbeat (which grows with N): it probes every member it learns
        of, connecting to it, so each one announces itself to it; bursts of joins
        collapse into one message. (Announcing on every peer *entering the view* too
        turned each false removal into N messages.)"""
        if self._announce is not None:
            return

        def announce() -> None:
            self._announce = None
            self.notify_load_changed()
            if self._placements_version:
                self._placements_changed.set()

        self._announce = asyncio.get_running_loop().call_later(self.options.announce_delay_s, announce)

    def _connection_changed(self, peer_id: str, connected: bool) -> None:
        if not connected and self.view is not None and peer_id in self.view and self._prober is not None:
            self._prober.probe_soon(peer_id)  # a SIGKILL closes its connections: find out now

    async def connect_member(self, peer_id: str) -> None:
        """Reach a member we may hold no proved connection to (its load record has its addresses):
        connected and proved both ways when this returns, so its ROPE server admits us. A mesh needs
        no connection to every member, and gossip can show us one before peer exchange connects us."""
        if self.is_member(peer_id):
            return
        load = self.view.load(peer_id) if self.view is not None else None
        if load is None or not load.addrs:
            raise ConnectionError(f"no address known for {peer_id}")
        await self.join(load.addrs[0])

    def _tell(self, news: MemberNews) -> None:
        """Queue membership news for the swarm (published at once, a burst in one message)."""
        self._news[news.subject] = news
        self._news_changed.set()

    def _refute(self, state: str, incarnation: int) -> None:
        """Someone holds us suspect or dead at ``incarnation``: outbid it (SWIM's refutation)."""
        if incarnation < self._incarnation:
            return  # about an incarnation we have already left behind
        self._incarnation = incarnation + 1
        if self._prober is not None:
            self._prober.health.worse()  # Lifeguard: being suspected hints that we are the slow one
        log.info("refuting %s at incarnation %d with %d", state, incarnation, self._incarnation)
        self._tell(MemberNews(self.peer_id, "alive", self._incarnation))
        # Whoever declared us dead dropped our load and placements with us (a frozen node comes back
        # "suspect" to some, dead to others): send them again now, not at the next refresh (10 s).
        self.notify_load_changed()
        if self._placements_version:
            self._placements_changed.set()

    async def _publish_news_loop(self) -> None:
        while True:
            await self._news_changed.wait()
            await asyncio.sleep(0)  # news raised in the same loop iteration: one message
            self._news_changed.clear()
            news, self._news = tuple(self._news.values()), {}
            if news:
                record = MembershipRecord(self.peer_id, self._versions.next(), news, self._incarnation)
                self.published["members"] += 1
                await self._publish(record)

    async def _bootstrap_loop(self, peer: BootstrapPeer) -> None:
        """Stay connected to one bootstrap peer, redialling with capped exponential backoff."""
        delay = self.options.reconnect_min_s
        while True:
            if not self.is_member(peer.peer_id):
                try:
                    await self.join(peer.multiaddr)
                    delay = self.options.reconnect_min_s
                except ConnectionError as error:
                    log.info("bootstrap peer %s (line %d) unreachable: %s", peer.peer_id, peer.line, error)
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(delay * 2, self.options.reconnect_max_s)
                    continue
            await asyncio.sleep(1.0)

    async def _redial_loop(self) -> None:
        """Redial members that left the view (a partition, a false removal, a restart on the same
        address) until they are back or `NodeOptions.redial_for_s` has passed."""
        options = self.options
        while True:
            await asyncio.sleep(options.redial_every_s * random.uniform(0.8, 1.2))
            now = time.monotonic()
            for peer_id in [p for p, (_, since) in self._departed.items() if now - since > options.redial_for_s]:
                del self._departed[peer_id]
            due = [(p, addrs) for p, (addrs, _) in self._departed.items() if not self.is_member(p)]
            random.shuffle(due)
            async with asyncio.TaskGroup() as group:
                for peer_id, addrs in due[: options.redial_at_once]:
                    group.create_task(self._redial(peer_id, addrs[0]))

    async def _redial(self, peer_id: str, multiaddr: str) -> None:
        try:
            # A redial waits no longer than the next one comes: once the network is back, the next
            # attempt's first SYN gets through, instead of a SYN retransmitted seconds later.
            await self.join(multiaddr, connect_timeout_s=self.options.redial_every_s)
            log.info("redialled %s, which had left the view", peer_id)
        except (ConnectionError, ValueError) as error:
            log.debug("redial of %s: %s", peer_id, error)

    async def _peer_exchange_loop(self) -> None:
        """Dial peers learned from gossip (their load records carry addresses) until
        `target_peers` are connected: the swarm does not hang on its bootstrap nodes."""
        view = self.view
        assert view is not None
        while True:
            await asyncio.sleep(self.options.load_interval_s * random.uniform(0.8, 1.2))
            missing = self.options.target_peers - len(self.members())
            if missing <= 0:
                continue
            now = time.monotonic()
            candidates = [
                state.load
                for peer_id, state in view.peers().items()
                if state.load is not None
                and state.load.addrs
                and not self.is_member(peer_id)
                and self._dial_backoff.get(peer_id, 0) <= now
            ]
            random.shuffle(candidates)
            for load in candidates[:missing]:
                try:
                    await self.join(load.addrs[0])
                except (ConnectionError, ValueError) as error:
                    self._dial_backoff[load.peer_id] = now + self.options.reconnect_max_s
                    log.info("peer exchange: cannot join %s: %s", load.peer_id, error)
