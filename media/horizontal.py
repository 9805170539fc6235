"""Mediasoup-horizontal: mediasoup's module API over several back-ends, as if their workers were local.

    horizontal = Horizontal([await connect_websocket(url_a, token=t), await connect_websocket(url_b, token=t)])
    worker = await horizontal.create_worker()        # started on the back-end the policy picks
    vertical = Vertical(horizontal)                   # the vertical-cluster: routers spanning servers

A back-end is anything with mediasoup's ``create_worker()``: the local `media`
module, a Remote Mediasoup client (`media.remote.RemoteMediasoup`), a
`Vertical`, another `Horizontal`. Each worker is created on one back-end and
stays its object: when that back-end goes away (a Remote Mediasoup server
lost for good), its workers "die" with their usual events, exactly as on the
back-end itself, and the others carry on. Back-ends can be added and removed
while running; a removed back-end gets no new workers and keeps the ones it
has unless `remove(..., close_workers=True)`.

Placement is one documented decision, `Policy.choose()` over `Candidate`s:
`LeastWorkers` (the default: the back-end running the fewest of our live
workers, the first listed on ties) or `LowestCpu` (the lowest system CPU the
back-end reports through `media.stats.get_stats`, then fewest workers). A
policy may also leave out back-ends that must get no worker (full ones): the
swarm's policy (`swarm.media_node`) reads each member's gossiped load and cap.
A back-end that fails to start a worker (a `CapacityError`, a dead server) is
left out for that call and the policy ranks the rest again, so one dead or
full server does not stop placement; when none is left, `CapacityError` if
they were all full, else `InvalidStateError` naming each failure. Workers
being started count as running, so concurrent calls spread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from media.errors import InvalidStateError
from media.events import EventEmitter
from media.vertical.pool import CapacityError
from rope import RemoteError

log = logging.getLogger("media.horizontal")

__all__ = ["Candidate", "Horizontal", "LeastWorkers", "LowestCpu", "Policy"]


@dataclass(frozen=True)
class Candidate:
    """One back-end as placement sees it."""

    backend: Any
    index: int
    """Its position in `Horizontal.backends` (earlier wins ties)."""
    workers: int
    """Live workers this `Horizontal` runs there."""
    cpu_percent: float | None = None
    """System CPU (0-100) the back-end reports; None when the policy does not ask or it cannot say."""
    starting: int = 0
    """Workers this `Horizontal` is starting there now (not yet in ``workers``)."""

    @property
    def load(self) -> int:
        """Workers there, running or starting: what spreading counts."""
        return self.workers + self.starting


class Policy(Protocol):
    needs_cpu: ClassVar[bool]
    """Whether `choose()` reads `Candidate.cpu_percent` (fetched from each back-end per placement)."""

    def choose(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates to try, best first; those left out get no worker (may raise `CapacityError`)."""
        ...


class LeastWorkers:
    """Spread workers: fewest live workers first, the first listed back-end on ties."""

    needs_cpu: ClassVar[bool] = False

    def choose(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=lambda c: (c.load, c.index))


class LowestCpu:
    """Least busy machine first (as it reports itself), then fewest workers; unknown CPU goes last."""

    needs_cpu: ClassVar[bool] = True

    def choose(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=lambda c: (c.cpu_percent is None, c.cpu_percent or 0.0, c.load, c.index))


class Horizontal:
    """mediasoup's ``create_worker()`` over several back-ends (see the module's docstring)."""

    def __init__(self, backends: Iterable[Any] = (), policy: Policy | None = None) -> None:
        self._backends: list[Any] = []
        self._workers: dict[int, list[Any]] = {}
        """id(backend) -> its live workers started through us."""
        self._starting: dict[int, int] = {}
        """id(backend) -> workers being started there now."""
        self.policy: Policy = policy or LeastWorkers()
        self.observer = EventEmitter()
        """"newworker" (worker), as `media.observer`."""
        for backend in backends:
            self.add(backend)

    @property
    def backends(self) -> tuple[Any, ...]:
        return tuple(self._backends)

    @property
    def workers(self) -> list[Any]:
        """Every live worker started through this object, on any back-end."""
        return [worker for backend in self._backends for worker in self._workers[id(backend)]]

    def workers_of(self, backend: Any) -> list[Any]:
        return list(self._workers.get(id(backend), ()))

    @property
    def version(self) -> str | None:
        """The mediasoup version of the first back-end (a cluster runs one version)."""
        return getattr(self._backends[0], "version", None) if self._backends else None

    def add(self, backend: Any) -> None:
        if not callable(getattr(backend, "create_worker", None)):
            raise TypeError(f"a back-end needs mediasoup's create_worker(), {backend!r} has none")
        if id(backend) in self._workers:
            raise ValueError(f"{backend!r} is already a back-end")
        self._backends.append(backend)
        self._workers[id(backend)] = []
        self._starting[id(backend)] = 0

    async def remove(self, backend: Any, *, close_workers: bool = False) -> None:
        """No new workers there; its workers keep running unless ``close_workers``."""
        workers = self._detach(backend)
        if close_workers:
            await asyncio.gather(*(worker.close() for worker in workers), return_exceptions=True)

    def _detach(self, backend: Any) -> list[Any]:
        """Stop placing on and tracking ``backend``; returns the workers it had."""
        if id(backend) not in self._workers:
            raise ValueError(f"{backend!r} is not a back-end")
        self._backends.remove(backend)
        self._starting.pop(id(backend), None)
        return self._workers.pop(id(backend))

    async def create_worker(self, **settings: Any) -> Any:
        """A worker on the back-end the policy ranks first that can start one."""
        if not self._backends:
            raise InvalidStateError("Horizontal has no back-end to place a worker on")
        refused: set[int] = set()
        errors: list[str] = []
        full = True
        while True:
            ranked = self.policy.choose([c for c in await self._candidates() if id(c.backend) not in refused])
            if not ranked:
                if full:
                    raise CapacityError(f"every back-end is full{': ' if errors else ''}{'; '.join(errors)}")
                raise InvalidStateError(f"no back-end could start a worker: {'; '.join(errors)}")
            backend = ranked[0].backend
            self._starting[id(backend)] = self._starting.get(id(backend), 0) + 1
            try:
                worker = await backend.create_worker(**settings)
            except (TypeError, ValueError):
                raise  # bad settings: every back-end would refuse them alike
            except Exception as error:
                capacity = _is_capacity_error(error)
                full = full and capacity
                (log.info if capacity else log.warning)(
                    "back-end %r could not start a worker (%s); trying the next", backend, error)
                errors.append(f"{backend!r}: {error}")
                refused.add(id(backend))
                continue
            finally:
                if id(backend) in self._starting:  # not removed meanwhile
                    self._starting[id(backend)] -= 1
            if id(backend) in self._workers:
                self._track(backend, worker)
            return worker

    async def get_supported_rtp_capabilities(self) -> dict[str, Any]:
        if not self._backends:
            raise InvalidStateError("Horizontal has no back-end")
        result = self._backends[0].get_supported_rtp_capabilities()
        return await result if inspect.isawaitable(result) else result

    async def close(self) -> None:
        """Close every worker started through this object (the back-ends themselves stay open)."""
        await asyncio.gather(*(worker.close() for worker in self.workers), return_exceptions=True)

    async def _candidates(self) -> list[Candidate]:
        cpus: list[float | None] = [None] * len(self._backends)
        if self.policy.needs_cpu:
            cpus = list(await asyncio.gather(*(_system_cpu(backend) for backend in self._backends)))
        return [
            Candidate(backend, index, len(self._workers[id(backend)]), cpus[index], self._starting[id(backend)])
            for index, backend in enumerate(self._backends)
        ]

    def _track(self, backend: Any, worker: Any) -> None:
        workers = self._workers[id(backend)]
        workers.append(worker)

        def forget(*_: Any) -> None:
            if worker in workers:
                workers.remove(worker)

        worker.observer.on("close", forget)
        log.info("new worker on %r", backend)
        self.observer.emit("newworker", worker)


def _is_capacity_error(error: Exception) -> bool:
    """A back-end's "I run all the workers I may", raised here or on a Remote Mediasoup server."""
    return isinstance(error, CapacityError) or (
        isinstance(error, RemoteError) and error.remote_type == CapacityError.__name__)


async def _system_cpu(backend: Any) -> float | None:
    """The back-end's own system CPU figure (a remote server reports its machine's), or None."""
    from media.stats import get_stats

    try:
        stats = await get_stats(backend, transport_bitrates=False)
    except Exception as error:  # unreachable or not a stats source: rank it last, do not fail placement
        log.debug("no CPU figure from %r: %s", backend, error)
        return None
    cpu = (stats.get("system") or {}).get("cpu_percent")
    return float(cpu) if isinstance(cpu, int | float) else None
