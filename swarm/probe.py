"""SWIM probing over libp2p: ``/mafalda/probe/1.0.0``, members only.

One stream per exchange, one frame each way (see `swarm.frames`):

- ``{"op": "ping", "inc": I, "you": [state, inc]?}`` -> ``{"op": "ack", "inc": I, "you": ...?}``:
  both sides state their own incarnation (proof of life at it); ``you`` tells the
  other end that we hold it suspect or dead, so it refutes at once (Lifeguard's
  "buddy system") even if it missed the gossip;
- ``{"op": "req", "target": P, "inc": I}`` -> ``{"op": "ack"}`` or ``{"op": "nack"}``: an
  indirect probe; the helper pings P itself. A nack (helper fine, target silent)
  tells the prober that its own network and CPU work, a missing answer that
  they may not (local health).

The prober runs one probe per period over a shuffled round of the members and
an extra one at once when a member's last connection closes or someone else
suspects it (so a SIGKILLed peer, whose connections close at once, is
suspected by everyone within milliseconds and its suspicion confirmed at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from swarm.bridge import P2PHost, P2PStream
from swarm.frames import read_frame, write_frame
from swarm.records import MemberNews
from swarm.swim import SwimConfig
from swarm.view import SwarmView

__all__ = ["PROBE_PROTOCOL", "Prober"]

log = logging.getLogger(__name__)

PROBE_PROTOCOL = "/mafalda/probe/1.0.0"
MAX_PROBE_FRAME = 1024


class _Void(Exception):
    """The probe's wait spanned a stall of this process: its outcome says nothing."""


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
        self.bytes_sent = 0
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
                interval = self.health.scale(self._config.probe_interval_s)
                started = time.monotonic()
                await asyncio.sleep(interval)
                if time.monotonic() - started > interval + self._config.stall_s:
                    self.health.worse()  # we were not running: probe next period, with longer timeouts
                    continue
                target = self._next_target()
                if target is not None and target not in self._urgent:
                    await self.probe(target)
        finally:
            for task in list(self._urgent.values()):
                task.cancel()

    def _next_target(self) -> str | None:
        """Round robin over a shuffled list of the members we are connected to (each
        probed once per round, as memberlist); on swarms larger than the peer-exchange
        target, a member's neighbours probe it."""
        members = {p for p in self._view.peers() if self._is_member(p)}
        while self._round:
            peer = self._round.pop()
            if peer in members:
                return peer
        self._round = list(members)
        random.shuffle(self._round)
        return self._round.pop() if self._round else None

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
            if await self._ping(target, self.health.scale(self._config.probe_timeout_s)):
                self.health.better()
                return True
            if await self._indirect(target):
                return True
        except _Void:
            self.voided += 1
            self.health.worse()
            return True  # unknown: no accusation
        # A dial refused at once is no timeout (a stopped process still accepts TCP):
        # nothing listens where the member listened. Its suspicion runs the minimum.
        news = self._view.suspect(target, certain=target in self._unreachable)
        self.suspicions += 1
        if news is not None:
            log.info("suspect %s (incarnation %d): direct and indirect probes failed", target, news.incarnation)
            self._on_suspect(news)
        return False

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

    async def _ping(self, target: str, limit_s: float) -> bool:
        started = time.monotonic()
        ok = await self._timed(limit_s, self._exchange_ping(target))
        if ok:
            self.rtts = [*self.rtts[-199:], time.monotonic() - started]
        else:
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
        try:
            stream = await self._host.open_stream(target, PROBE_PROTOCOL)
        except (ConnectionError, ValueError) as error:
            log.debug("ping %s: %s", target, error)
            return False
        try:
            message: dict[str, object] = {"op": "ping", "inc": self._incarnation()}
            belief = self._view.state_of(target)
            if belief is not None and belief[0] != "alive":
                message["you"] = list(belief)
            self.bytes_sent += await write_frame(stream, message)
            answer = await read_frame(stream, MAX_PROBE_FRAME)
        except ConnectionError as error:
            log.debug("ping %s: %s", target, error)
            return False
        finally:
            with contextlib.suppress(ConnectionError):
                await stream.close()
        if answer.get("op") != "ack":
            return False
        self._heard(target, answer)
        return True

    async def _indirect(self, target: str) -> bool:
        helpers = [p for p in self._view.peers() if p != target and self._is_member(p)]
        helpers = random.sample(helpers, min(self._config.indirect_probes, len(helpers)))
        if not helpers:
            return False
        answers: list[str] = []
        timeout = self.health.scale(self._config.indirect_timeout_s)

        async def ask(helper: str) -> bool:
            if not self._is_member(helper):
                answers.append("gone")
                return False
            try:
                stream = await self._host.open_stream(helper, PROBE_PROTOCOL)
            except (ConnectionError, ValueError):
                answers.append("gone")
                return False
            try:
                request = {"op": "req", "target": target, "inc": self._incarnation()}
                self.bytes_sent += await write_frame(stream, request)
                answer = await read_frame(stream, MAX_PROBE_FRAME)
            except ConnectionError:
                answers.append("gone")
                return False
            finally:
                with contextlib.suppress(ConnectionError):
                    await stream.close()
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
        peer = stream.remote_peer_id
        if not self._is_member(peer):
            await stream.reset()
            return
        try:
            async with asyncio.timeout(self.health.scale(self._config.probe_timeout_s) + 1.0):
                message = await read_frame(stream, MAX_PROBE_FRAME)
        except (ConnectionError, TimeoutError):
            await stream.reset()
            return
        op = message.get("op")
        if op == "ping":
            self._heard(peer, message)
            answer: dict[str, object] = {"op": "ack", "inc": self._incarnation()}
            belief = self._view.state_of(peer)
            if belief is not None and belief[0] != "alive":
                answer["you"] = list(belief)
        elif op == "req" and isinstance(message.get("target"), str):
            target = str(message["target"])
            try:  # only over a connection we hold: a helper does not dial for others
                ok = (
                    target != peer
                    and self._is_member(target)
                    and await self._ping(target, self.health.scale(self._config.probe_timeout_s))
                )
            except _Void:
                return  # we stalled: say nothing (the prober counts it against its own health, rightly or not)
            answer = {"op": "ack" if ok else "nack"}
        else:
            await stream.reset()
            return
        with contextlib.suppress(ConnectionError):
            self.bytes_sent += await write_frame(stream, answer)
