"""The real workers and routers behind vertical routers, and their load.

At most one real router per (worker, media codecs), shared by every vertical
router with those codecs; workers are created lazily, up to `max_workers`, and
closed when they hold no router. Load is what placement reads: consumers per
worker (counted here, pipe consumers included) and the worker's CPU share
(from `get_resource_usage()`, which local and remote workers both offer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("media.vertical")

CPU_SAMPLE_MIN_INTERVAL_S = 0.5


class CapacityError(RuntimeError):
    """A back-end refuses another worker: it already runs all it may (a hard cap, not a hint)."""


@dataclass(frozen=True)
class Capacity:
    """When a worker takes no new transports. Mafalda's documented defaults."""

    max_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Real workers at most (one per core)."""
    max_consumers_per_worker: int = 500
    """mediasoup's rule of thumb for one worker."""
    watermark_cpu: float = 0.6
    """CPU share (0..1) above which a worker takes no new transports."""

    def __post_init__(self) -> None:
        if self.max_workers < 1 or self.max_consumers_per_worker < 1 or not 0 < self.watermark_cpu <= 1:
            raise TypeError("Capacity needs max_workers >= 1, max_consumers_per_worker >= 1, 0 < watermark_cpu <= 1")


@dataclass
class WorkerLoad:
    worker: Any
    consumers: int = 0
    cpu: float = 0.0
    _last_cpu_seconds: float | None = None
    _last_sample_at: float = 0.0

    async def sample_cpu(self) -> float:
        now = time.monotonic()
        if now - self._last_sample_at < CPU_SAMPLE_MIN_INTERVAL_S:
            return self.cpu
        usage = await self.worker.get_resource_usage()
        cpu_seconds = (usage["ru_utime"] + usage["ru_stime"]) / 1000.0  # mediasoup reports ms
        if self._last_cpu_seconds is not None and now > self._last_sample_at:
            self.cpu = max(0.0, (cpu_seconds - self._last_cpu_seconds) / (now - self._last_sample_at))
        self._last_cpu_seconds, self._last_sample_at = cpu_seconds, now
        return self.cpu


def codecs_key(media_codecs: list[dict[str, Any]] | None) -> str:
    return json.dumps(media_codecs or [], sort_keys=True)


class WorkerPool:
    def __init__(
        self,
        create_worker: Callable[..., Awaitable[Any]],
        capacity: Capacity,
        worker_settings: dict[str, Any],
    ) -> None:
        self._create_worker = create_worker
        self.capacity = capacity
        self._worker_settings = worker_settings
        self._loads: dict[Any, WorkerLoad] = {}
        self._routers: dict[tuple[int, str], Any] = {}
        self._router_users: dict[int, int] = {}
        self._lock = asyncio.Lock()

    @property
    def workers(self) -> list[Any]:
        return list(self._loads)

    def load(self, worker: Any) -> WorkerLoad:
        return self._loads[worker]

    def real_routers(self, key: str) -> list[Any]:
        return [router for (_, k), router in self._routers.items() if k == key and not router.closed]

    async def has_room(self, worker: Any) -> bool:
        load = self._loads.get(worker)
        if load is None or worker.closed:
            return False
        if load.consumers >= self.capacity.max_consumers_per_worker:
            return False
        return await load.sample_cpu() < self.capacity.watermark_cpu

    async def busiest_first(self, routers: list[Any]) -> list[Any]:
        """Routers whose worker has room, the busiest worker first (fill before spreading)."""
        with_room = [r for r in routers if await self.has_room(r.worker)]
        return sorted(with_room, key=lambda r: (self._loads[r.worker].consumers, self._loads[r.worker].cpu),
                      reverse=True)

    async def acquire_router(self, key: str, media_codecs: list[dict[str, Any]] | None) -> Any:
        """A real router with these codecs on a worker with room: shared, new, or on a new worker."""
        async with self._lock:
            for router in await self.busiest_first(self.real_routers(key)):
                return self._use(router)
            for worker in sorted(self._loads, key=lambda w: self._loads[w].consumers, reverse=True):
                if (id(worker), key) not in self._routers and await self.has_room(worker):
                    return self._use(await self._new_router(worker, key, media_codecs))
            if len(self._loads) < self.capacity.max_workers:
                try:
                    worker = await self._new_worker()
                except CapacityError:
                    if not self._loads:
                        raise
                    logger.warning("the back-end has no worker to spare; placing on this pool's least loaded")
                else:
                    return self._use(await self._new_router(worker, key, media_codecs))
            # Every worker is over its thresholds (or no more can be had): best effort on the least loaded one.
            least = min(self._loads.values(), key=lambda load: load.consumers)
            logger.warning("all %d workers are over capacity; placing on the least loaded", len(self._loads))
            existing = self._routers.get((id(least.worker), key))
            return self._use(existing or await self._new_router(least.worker, key, media_codecs))

    def _use(self, router: Any) -> Any:
        self._router_users[id(router)] = self._router_users.get(id(router), 0) + 1
        return router

    async def release_router(self, router: Any) -> None:
        """A vertical router stopped using this real router: close it (and its worker) when unused."""
        users = self._router_users.get(id(router), 0) - 1
        if users > 0:
            self._router_users[id(router)] = users
            return
        self._router_users.pop(id(router), None)
        self._forget_router(router)
        await router.close()
        await self._close_idle_worker(router.worker)

    async def _new_worker(self) -> Any:
        worker = await self._create_worker(**self._worker_settings)
        self._loads[worker] = WorkerLoad(worker)
        worker.on("died", lambda _error: self._forget_worker(worker))
        logger.info("vertical: new worker (%d of at most %d)", len(self._loads), self.capacity.max_workers)
        return worker

    async def _new_router(self, worker: Any, key: str, media_codecs: list[dict[str, Any]] | None) -> Any:
        router = await worker.create_router(media_codecs=media_codecs)
        self._routers[(id(worker), key)] = router
        router.observer.on("close", lambda: self._forget_router(router))
        return router

    def _forget_router(self, router: Any) -> None:
        for slot, known in list(self._routers.items()):
            if known is router:
                del self._routers[slot]

    def _forget_worker(self, worker: Any) -> None:
        self._loads.pop(worker, None)
        for slot in [slot for slot in self._routers if slot[0] == id(worker)]:
            del self._routers[slot]

    async def _close_idle_worker(self, worker: Any) -> None:
        if worker in self._loads and not any(slot[0] == id(worker) for slot in self._routers):
            self._forget_worker(worker)
            await worker.close()

    def count_consumer(self, worker: Any, delta: int) -> None:
        load = self._loads.get(worker)
        if load is not None:
            load.consumers = max(0, load.consumers + delta)

    async def close(self) -> None:
        for worker in list(self._loads):
            await worker.close()
        self._loads.clear()
        self._routers.clear()
        self._router_users.clear()
