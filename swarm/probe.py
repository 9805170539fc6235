"""SWIM probing over libp2p: ``/mafalda/probe/2.0.0``, members only.

Each node keeps one long-lived probe stream to each member it probes (a
*channel*), opened at the first probe and gone with the connection: a probe is
then one frame each way, not a stream set-up (multistream negotiation, yamux
open and close on both ends), which on a 2-core box running 20 nodes was most
of a probe's cost. Frames (see `swarm.frames`) carry an ``id`` the answer
repeats, so answers may come out of order:

- ``{"op": "ping", "id": N, "inc": I, "you": [state, inc]?}`` -> ``{"op": "ack", "id": N, "inc": I, "you": ...?}``:
  both sides state their own incarnation (proof of life at it); ``you`` tells the
  other end that we hold it suspect or dead, so it refutes at once (Lifeguard's
  "buddy system") even if it missed the gossip;
- ``{"op": "req", "id": N, "target": P, "inc": I}`` -> ``{"op": "ack", "id": N}`` or ``"nack"``:
  an indirect probe; the helper pings P itself. A nack (helper fine, target
  silent) tells the prober that its own network and CPU work, a missing answer
  that they may not (local health).

An ack that comes after its probe timed out is still proof of life (its
incarnation is applied). The prober runs one probe per period over a shuffled
round of the members and an extra one at once when a member's last connection
closes or someone else suspects it (so a SIGKILLed peer, whose connections
close at once, is suspected by everyone within milliseconds and its suspicion
confirmed at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from swarm.bridge import P2PHost, P2PStream
from swarm.frames import FrameError, FrameReader, write_frame
from swarm.records import MemberNews
from swarm.swim import SwimConfig
from swarm.view import SwarmView

__all__ = ["PROBE_PROTOCOL", "Prober"]

log = logging.getLogger(__name__)

PROBE_PROTOCOL = "/mafalda/probe/2.0.0"
MAX_PROBE_FRAME = 1024
MAX_HELPING = 16
"""Indirect probes one member may have us run at once; past it we answer nack."""


class _Void(Exception):
    """The probe's wait spanned a stall of this process: its outcome says nothing."""


def _retrieve(task: asyncio.Future[Any]) -> None:
    """A shielded task whose caller gave up: its error is seen elsewhere (the channel's reader, the next caller)."""
    if not task.cancelled():
        task.exception()


class _Channel:
    """Our long-lived probe stream to one member; answers matched to requests by id."""

    def __init__(
        self,
        stream: P2PStream,
        late: Callable[[dict[str, object], float], None],
        ended: Callable[[_Channel], None],
    ) -> None:
        self.stream = stream
        self._late = late
        self._ended = ended
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, object]]] = {}
        self._sent_at: dict[int, float] = {}
        """Requests not answered yet (also those their caller gave up on), when they were sent."""
        self._write_lock = asyncio.Lock()
        self.bytes_sent = 0
        self.closed = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def request(self, message: dict[str, object]) -> tuple[dict[str, object], float]:
        """Send ``message`` and wait for its answer: (answer, round trip in seconds).
        ConnectionError if the channel ends first."""
        if self.closed:
            raise ConnectionError("probe channel closed")
        request_id = next(self._ids)
        answer: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            # Shielded: a frame cut halfway by a timeout would garble the stream for good.
            write = asyncio.ensure_future(self._write({**message, "id": request_id}))
            write.add_done_callback(_retrieve)
            if len(self._sent_at) > 64:  # answers that never came
                self._sent_at.clear()
            self._sent_at[request_id] = time.monotonic()
            await asyncio.shield(write)
            frame = await answer
            return frame, time.monotonic() - self._sent_at.pop(request_id, time.monotonic())
        finally:
            self._waiting.pop(request_id, None)
            if answer.done() and not answer.cancelled():
                answer.exception()  # the channel ended while we wrote: the write's error is the one raised

    async def _write(self, message: dict[str, object]) -> None:
        async with self._write_lock:
            self.bytes_sent += await write_frame(self.stream, message)

    async def _read(self) -> None:
        reader = FrameReader(self.stream, MAX_PROBE_FRAME)
        try:
            while (frame := await reader.read()) is not None:
                request_id = frame.get("id")
                waiting = self._waiting.get(request_id) if isinstance(request_id, int) else None
                if waiting is not None and not waiting.done():
                    waiting.set_result(frame)
                elif isinstance(request_id, int) and request_id in self._sent_at:
                    self._late(frame, time.monotonic() - self._sent_at.pop(request_id))
        except FrameError as error:
            log.info("probe channel to %s: %s", self.stream.remote_peer_id, error)
        finally:
            self.closed = True
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionError("probe channel closed"))
            self._ended(self)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.stream.reset()


class Prober:
    def __init__(
        self,
        host: P2PHost,
        view: SwarmView,
        config: SwimConfig,
        *,
        is_member: Callable[[str], bool],
        connect: Callable[[str], Awaitable[None]],
        incarnation: Callable[[], int],
        on_suspect: Callable[[MemberNews], None],
        on_accused: Callable[[str, int], None],
    ) -> None:
        self._host = host
        self._view = view
        self._config = config
        self._is_member = is_member
        self._connect = connect
        self._incarnation = incarnation
        self._on_suspect = on_suspect
        self._on_accused = on_accused
        self.health = view.health
        self._round: list[str] = []
        self._urgent: dict[str, asyncio.Task[bool]] = {}
        self._unreachable: set[str] = set()
        self._channels: dict[str, _Channel] = {}
        self._opening: dict[str, asyncio.Future[_Channel]] = {}
        self._served: set[asyncio.Task[None]] = set()
        self._again: dict[str, asyncio.TimerHandle] = {}
        """Suspects to probe once more next period."""
        self._bytes_sent = 0
        self.probes = 0
        self.voided = 0
        self.direct_failures = 0
        self.suspicions = 0
        self.rtts: list[float] = []
        """Recent direct ping round trips, seconds (the last 200)."""
        host.set_stream_handler(PROBE_PROTOCOL, self._serve)

    # -- the probe loop ------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                interval = self.health.scale(self._config.probe_period_s(len(self._neighbours())))
                started = time.monotonic()
                await asyncio.sleep(interval)
                if time.monotonic() - started > interval + self._config.stall_s:
                    self.health.worse()  # we were not running: probe next period, with longer timeouts
                    continue
                target = self._next_target()
                if target is not None and target not in self._urgent:
                    await self.probe(target)
        finally:
            pending: list[asyncio.Future[Any]] = [*self._urgent.values(), *self._served, *self._opening.values()]
            for task in pending:
                task.cancel()
            for handle in self._again.values():
                handle.cancel()
            for channel in list(self._channels.values()):
                await channel.close()
            self._channels.clear()

    @property
    def bytes_sent(self) -> int:
        """Probe frames written (pings, acks, indirect requests), before libp2p framing."""
        return self._bytes_sent + sum(channel.bytes_sent for channel in self._channels.values())

    async def _channel(self, peer_id: str) -> _Channel:
        """Our probe channel to ``peer_id``, opened if there is none (or it ended)."""
        channel = self._channels.get(peer_id)
        if channel is not None and not channel.closed:
            return channel
        opening = self._opening.get(peer_id)
        if opening is None:  # one opening at a time per peer; others wait on it
            opening = asyncio.ensure_future(self._open_channel(peer_id))
            opening.add_done_callback(lambda _: self._opening.pop(peer_id, None))
            opening.add_done_callback(_retrieve)
            self._opening[peer_id] = opening
        return await asyncio.shield(opening)

    async def _open_channel(self, peer_id: str) -> _Channel:
        stream = await self._host.open_stream(peer_id, PROBE_PROTOCOL)
        channel = _Channel(stream, lambda frame, rtt: self._late(peer_id, frame, rtt), self._channel_ended)
        self._channels[peer_id] = channel
        return channel

    def _channel_ended(self, channel: _Channel) -> None:
        """Its stream ended (the connection closed, or the peer reset it)."""
        peer_id = channel.stream.remote_peer_id
        if self._channels.get(peer_id) is channel:
            del self._channels[peer_id]
        self._bytes_sent += channel.bytes_sent

    def _late(self, peer_id: str, frame: dict[str, object], rtt_s: float) -> None:
        """The answer to a request its caller gave up on (timed out)."""
        if frame.get("op") == "ack" and "inc" in frame:  # a ping's: alive all the same, and that slow
            self.health.observe(peer_id, rtt_s)
            self._heard(peer_id, frame)

    def _next_target(self) -> str | None:
        """Round robin over a shuffled list of the members we are connected to (each
        probed once per round, as memberlist); on swarms larger than the peer-exchange
        target, a member's neighbours probe it."""
        members = self._neighbours()
        while self._round:
            peer = self._round.pop()
            if peer in members:
                return peer
        self._round = list(members)
        random.shuffle(self._round)
        return self._round.pop() if self._round else None

    def _neighbours(self) -> set[str]:
        """The members in the view we are connected to: those we probe."""
        return {peer for peer in self._view.peers() if self._is_member(peer)}

    def probe_soon(self, peer_id: str) -> None:
        """Probe now, outside the round (its connection closed, or it is suspected)."""
        if peer_id in self._urgent or peer_id not in self._view:
            return
        task = asyncio.get_running_loop().create_task(self.probe(peer_id))
        self._urgent[peer_id] = task
        task.add_done_callback(lambda _: self._urgent.pop(peer_id, None))

    async def probe(self, target: str) -> bool:
        """Direct, then indirect; on failure suspect ``target``. True if it answered."""
        self.probes += 1
        started = time.monotonic()
        self._unreachable.discard(target)
        if not self._is_member(target):
            # Reconnect outside the probe's timeout: a join cut short by it would leave a
            # connection that never proves membership (the other end hangs up on it later).
            try:
                await self._connect(target)
            except ConnectionError as error:
                log.info("probe %s: cannot reconnect: %s", target, str(error)[:80])
                self._unreachable.add(target)
        try:
            if await self._ping(target):
                self.health.better()
                return True
            if await self._indirect(target):
                return True
        except _Void:
            self.voided += 1
            self.health.worse()
            log.info("probe of %s void after %.2f s: we stalled meanwhile", target, time.monotonic() - started)
            return True  # unknown: no accusation
        # A dial refused at once is no timeout (a stopped process still accepts TCP):
        # nothing listens where the member listened. Its suspicion runs the minimum.
        news = self._view.suspect(target, certain=target in self._unreachable)
        self.suspicions += 1
        if news is not None:
            log.info(
                "suspect %s (incarnation %d): direct and indirect probes failed in %.2f s (health %d, rto %.0f ms)",
                target,
                news.incarnation,
                time.monotonic() - started,
                self.health.score,
                1000 * self.health.rto(),
            )
            self._on_suspect(news)
        belief = self._view.state_of(target)
        if belief is not None and belief[0] == "suspect":
            # Ask again next period: a ping tells a live suspect that it is suspected (it
            # refutes in the ack), the fastest way back for one that was only slow.
            previous = self._again.pop(target, None)
            if previous is not None:
                previous.cancel()
            self._again[target] = asyncio.get_running_loop().call_later(
                self.health.scale(self._config.probe_interval_s), self._probe_suspect, target
            )
        return False

    def _probe_suspect(self, peer_id: str) -> None:
        self._again.pop(peer_id, None)
        belief = self._view.state_of(peer_id)
        if belief is not None and belief[0] == "suspect":
            self.probe_soon(peer_id)

    async def _timed(self, limit_s: float, work: Awaitable[bool]) -> bool:
        """``work`` within ``limit_s``; raises _Void if this process stalled meanwhile."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit_s):
                return await work
        except TimeoutError:
            if time.monotonic() - started > limit_s + self._config.stall_s:
                raise _Void() from None
            return False

    async def _ping(self, target: str) -> bool:
        ok = await self._timed(self.health.wait(self._config.probe_timeout_s), self._exchange_ping(target))
        if not ok:
            self.direct_failures += 1
        return ok

    def stats(self) -> dict[str, object]:
        rtts = sorted(self.rtts)
        return {
            "probes": self.probes,
            "direct_failures": self.direct_failures,
            "suspicions": self.suspicions,
            "voided": self.voided,
            "health": self.health.score,
            "rtt_p50_ms": round(1000 * rtts[len(rtts) // 2], 1) if rtts else None,
            "rtt_p99_ms": round(1000 * rtts[(len(rtts) * 99) // 100], 1) if rtts else None,
        }

    async def _exchange_ping(self, target: str) -> bool:
        if not self._is_member(target):
            return False  # no proved connection: an implicit dial would skip the handshake
        message: dict[str, object] = {"op": "ping", "inc": self._incarnation()}
        belief = self._view.state_of(target)
        if belief is not None and belief[0] != "alive":
            message["you"] = list(belief)
        try:
            channel = await self._channel(target)
            answer, rtt_s = await channel.request(message)
        except (ConnectionError, ValueError) as error:
            log.debug("ping %s: %s", target, error)
            return False
        if answer.get("op") != "ack":
            return False
        self.rtts = [*self.rtts[-199:], rtt_s]
        self.health.observe(target, rtt_s)
        self._heard(target, answer)
        return True

    async def _indirect(self, target: str) -> bool:
        # Not a member we hold suspect or are probing out of turn (its connection just
        # closed): when several die at once, they are no help with each other.
        helpers = [
            peer
            for peer, state in self._view.peers().items()
            if peer != target and state.state == "alive" and peer not in self._urgent and self._is_member(peer)
        ]
        helpers = random.sample(helpers, min(self._config.indirect_probes, len(helpers)))
        if not helpers:
            return False
        answers: list[str] = []
        # Two round trips: to a helper, and its to the target. When our dial was refused (it
        # is gone, or we alone cannot reach it), a live helper nacks or acks at once; waiting
        # longer only waits for helpers that died with it (a kill of several at once).
        base = self._config.probe_timeout_s if target in self._unreachable else self._config.indirect_timeout_s
        timeout = self.health.wait(base, round_trips=2)

        async def ask(helper: str) -> bool:
            if not self._is_member(helper):
                answers.append("gone")
                return False
            try:
                channel = await self._channel(helper)
                answer, _ = await channel.request({"op": "req", "target": target, "inc": self._incarnation()})
            except (ConnectionError, ValueError):
                answers.append("gone")
                return False
            answers.append(str(answer.get("op")))
            return answer.get("op") == "ack"

        async def any_ack() -> bool:
            pending = {asyncio.ensure_future(ask(helper)) for helper in helpers}
            try:
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    if any(task.result() for task in done):
                        return True
                return False
            finally:
                for task in pending:
                    task.cancel()

        if await self._timed(timeout, any_ack()):
            return True
        if len(answers) < len(helpers):
            self.health.worse()  # a helper did not even say "no" in time: maybe we are the slow one
        return False

    def _heard(self, peer_id: str, message: dict[str, object]) -> None:
        """A ping or ack: its sender is alive at the incarnation it states, and may
        tell us that it holds us suspect or dead."""
        incarnation = message.get("inc")
        if isinstance(incarnation, int) and not isinstance(incarnation, bool) and incarnation >= 0:
            self._view.alive(peer_id, incarnation)
        you = message.get("you")
        if isinstance(you, list) and len(you) == 2 and you[0] in ("suspect", "dead") and isinstance(you[1], int):
            self._on_accused(str(you[0]), int(you[1]))

    # -- answering -----------------------------------------------------------------

    async def _serve(self, stream: P2PStream) -> None:
        """A member's channel to us: answer its frames until it ends."""
        peer = stream.remote_peer_id
        if not self._is_member(peer):
            await stream.reset()
            return
        reader = FrameReader(stream, MAX_PROBE_FRAME)
        write_lock = asyncio.Lock()
        helping: set[asyncio.Task[None]] = set()

        async def answer(message: dict[str, object]) -> None:
            async with write_lock:
                with contextlib.suppress(ConnectionError):
                    self._bytes_sent += await write_frame(stream, message)

        async def help_probe(request_id: object, target: str) -> None:
            try:  # only over a connection we hold: a helper does not dial for others
                ok = (
                    target != peer
                    and self._is_member(target)
                    and await self._ping(target)
                )
            except _Void:
                return  # we stalled: say nothing (the prober counts it against its own health, rightly or not)
            await answer({"op": "ack" if ok else "nack", "id": request_id})

        try:
            while True:
                try:
                    message = await reader.read()
                except FrameError as error:
                    log.info("probe channel from %s: %s", peer, error)
                    message = None
                if message is None or not self._is_member(peer):
                    break
                op, request_id = message.get("op"), message.get("id")
                if op == "ping":
                    self._heard(peer, message)
                    ack: dict[str, object] = {"op": "ack", "id": request_id, "inc": self._incarnation()}
                    belief = self._view.state_of(peer)
                    if belief is not None and belief[0] != "alive":
                        ack["you"] = list(belief)
                    await asyncio.shield(answer(ack))
                elif op == "req" and isinstance(message.get("target"), str):
                    if len(helping) >= MAX_HELPING:
                        await asyncio.shield(answer({"op": "nack", "id": request_id}))
                        continue
                    task = asyncio.get_running_loop().create_task(help_probe(request_id, str(message["target"])))
                    helping.add(task)
                    self._served.add(task)
                    task.add_done_callback(helping.discard)
                    task.add_done_callback(self._served.discard)
                else:
                    break
            await stream.reset()
        finally:
            for task in helping:
                task.cancel()
