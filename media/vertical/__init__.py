"""Mediasoup-vertical: mediasoup's API where one Router spans many workers.

    vertical = Vertical(media, capacity=Capacity(max_consumers_per_worker=500))
    worker = await vertical.create_worker()
    router = await worker.create_router(media_codecs=...)   # a VerticalRouter

`backend` is any module or object with mediasoup's `create_worker()`: the
local `media` package, a Remote Mediasoup client, another Vertical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from media.errors import WorkerClosedError
from media.events import EventEmitter
from media.vertical.pool import Capacity, CapacityError, WorkerPool, codecs_key
from media.vertical.router import ForeignProducer, ForeignProducers, VerticalRouter

RouterIds = Callable[[dict[str, Any]], str | None]

__all__ = ["Capacity", "CapacityError", "ForeignProducer", "ForeignProducers", "RouterIds", "Vertical",
           "VerticalRouter", "VerticalWorker"]


class VerticalWorker(EventEmitter):
    """Looks like one worker; its routers draw on the whole pool of real workers."""

    def __init__(self, pool: WorkerPool, app_data: dict[str, Any] | None,
                 router_id: RouterIds | None = None) -> None:
        super().__init__()
        self._pool = pool
        self._router_id = router_id
        self._closed = False
        self._routers: set[VerticalRouter] = set()
        self.app_data: dict[str, Any] = app_data if app_data is not None else {}
        self.observer = EventEmitter()

    closed = property(lambda self: self._closed)
    died = property(lambda self: False)

    @property
    def real_workers(self) -> list[Any]:
        return self._pool.workers

    @property
    def capacity(self) -> Capacity:
        """When its real workers take no more (the Vertical's, or the tighter one it was created with)."""
        return self._pool.capacity

    async def create_router(
        self, *, media_codecs: list[dict[str, Any]] | None = None, app_data: dict[str, Any] | None = None
    ) -> VerticalRouter:
        if self._closed:
            raise WorkerClosedError("Worker closed")
        if media_codecs is not None and not isinstance(media_codecs, list):
            raise TypeError("if given, media_codecs must be a list")
        if app_data is not None and not isinstance(app_data, dict):
            raise TypeError("if given, app_data must be a dict")
        router_id = self._router_id(app_data or {}) if self._router_id is not None else None
        router = VerticalRouter(
            pool=self._pool, key=codecs_key(media_codecs), media_codecs=media_codecs, app_data=app_data,
            router_id=router_id,
        )
        self._routers.add(router)
        router.on("@close", lambda: self._routers.discard(router))
        self.observer.emit("newrouter", router)
        return router

    async def get_resource_usage(self) -> dict[str, int]:
        """The sum over the real workers in use."""
        total: dict[str, int] = {}
        for worker in self._pool.workers:
            for key, value in (await worker.get_resource_usage()).items():
                total[key] = total.get(key, 0) + value
        return total

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for router in list(self._routers):
            await router.worker_closed()
        await self._pool.close()
        self.observer.emit("close")


class Vertical:
    """A mediasoup-compatible object (`create_worker`) whose routers span workers.

    ``router_id``: given a new router's app_data, the id it takes (None: a random one); a swarm uses
    it to give one room the same id through every entry point.
    """

    def __init__(self, backend: Any, capacity: Capacity | None = None, *, router_id: RouterIds | None = None) -> None:
        self._backend = backend
        self.capacity = capacity or Capacity()
        self._router_id = router_id

    async def create_worker(self, *, app_data: dict[str, Any] | None = None, capacity: Capacity | None = None,
                            **settings: Any) -> VerticalWorker:
        """Settings apply to every real worker the pool starts. ``capacity``: this worker's own, at most the
        Vertical's in each figure (an operator's limits hold for the applications of a server)."""
        if capacity is None:
            capacity = self.capacity
        elif not isinstance(capacity, Capacity):
            raise TypeError(f"capacity must be a Capacity, not {type(capacity).__name__}")
        elif (capacity.max_workers > self.capacity.max_workers
              or capacity.max_consumers_per_worker > self.capacity.max_consumers_per_worker
              or capacity.watermark_cpu > self.capacity.watermark_cpu):
            raise ValueError(f"a worker's capacity can only be tighter than this back-end's {self.capacity}, "
                             f"not {capacity}")
        pool = WorkerPool(self._backend.create_worker, capacity, settings)
        return VerticalWorker(pool, app_data, self._router_id)
