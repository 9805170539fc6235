"""A real transport as seen through a vertical router.

Everything is the real transport's (id, parameters, connect, events,
observer, stats) except produce(), which registers the producer with the
vertical router, and consume(), which first makes the producer reachable on
this transport's real router. Producers and consumers returned are the real
ones, so their events are exactly mediasoup's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from media.vertical.router import VerticalRouter


class VerticalTransport:
    def __init__(self, inner: Any, router: VerticalRouter) -> None:
        self._inner = inner
        self._vertical_router = router

    def __getattr__(self, name: str) -> Any:
        return self._vertical_router.as_one_router(getattr(self._inner, name))

    def __repr__(self) -> str:
        return f"<VerticalTransport {self._inner.id} on real router {self._inner.router.id}>"

    @property
    def router(self) -> VerticalRouter:
        return self._vertical_router

    @property
    def real_router(self) -> Any:
        return self._inner.router

    async def produce(self, **options: Any) -> Any:
        producer = await self._inner.produce(**options)
        self._vertical_router._adopt_producer(producer, self._inner.router)
        return producer

    async def produce_data(self, **options: Any) -> Any:
        return await self._inner.produce_data(**options)

    async def consume(self, *, producer_id: str, **options: Any) -> Any:
        router, target = self._vertical_router, self._inner.router
        await router._acquire_pipe(producer_id, target)
        try:
            consumer = await self._inner.consume(producer_id=producer_id, **options)
        except BaseException:
            await router._release_pipe(producer_id, target)
            raise
        pool = router._pool
        pool.count_consumer(target.worker, +1)

        async def on_close() -> None:
            pool.count_consumer(target.worker, -1)
            await router._release_pipe(producer_id, target)

        consumer.observer.once("close", on_close)
        return consumer
