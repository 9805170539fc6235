"""An RTP observer as seen through a vertical router.

An observer compares the producers it watches, so they must share one real
router: the observer lives on an anchor router and each watched producer is
piped there on demand (the same refcounted pipes consumers use). Events name
the application's producers, not the pipe producers that stand for them on
the anchor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media.events import EventEmitter

if TYPE_CHECKING:
    from media.vertical.router import VerticalRouter


class VerticalRtpObserver(EventEmitter):
    def __init__(self, inner: Any, router: VerticalRouter, anchor: Any) -> None:
        super().__init__()
        self._inner = inner
        self._router = router
        self._anchor = anchor
        self._watched: set[str] = set()
        self.observer = EventEmitter()
        for event in ("volumes", "silence", "dominantspeaker"):
            inner.on(event, self._relay(event, self))
            inner.observer.on(event, self._relay(event, self.observer))
        for event in ("pause", "resume", "close"):
            inner.observer.on(event, self._relay(event, self.observer))
        inner.on("routerclose", lambda: self.emit("routerclose"))

    def __getattr__(self, name: str) -> Any:
        return self._router.as_one_router(getattr(self._inner, name))

    @property
    def app_data(self) -> dict[str, Any]:
        return self._inner.app_data

    def _original(self, value: Any) -> Any:
        """Pipe producers on the anchor -> the application's producers (same id)."""
        if isinstance(value, list):
            return [self._original(item) for item in value]
        if isinstance(value, dict) and "producer" in value:
            return {**value, "producer": self._router.get_producer(value["producer"].id) or value["producer"]}
        return value

    def _relay(self, event: str, target: EventEmitter) -> Any:
        def relay(*args: Any) -> None:
            target.emit(event, *(self._original(arg) for arg in args))

        return relay

    async def add_producer(self, *, producer_id: str) -> None:
        await self._router._acquire_pipe(producer_id, self._anchor)
        try:
            await self._inner.add_producer(producer_id=producer_id)
        except BaseException:
            await self._router._release_pipe(producer_id, self._anchor)
            raise
        self._watched.add(producer_id)
        self.observer.emit("addproducer", self._router.get_producer(producer_id))

    async def remove_producer(self, *, producer_id: str) -> None:
        await self._inner.remove_producer(producer_id=producer_id)
        if producer_id in self._watched:
            self._watched.discard(producer_id)
            await self._router._release_pipe(producer_id, self._anchor)
        self.observer.emit("removeproducer", self._router.get_producer(producer_id))

    async def close(self) -> None:
        await self._release_all()
        await self._inner.close()
        self.emit("@close")

    async def router_closed(self) -> None:
        """The vertical router closed: "routerclose", as for an observer on one router."""
        await self._release_all()
        await self._inner.close()
        self.emit("@close")
        self.emit("routerclose")

    async def _release_all(self) -> None:
        for producer_id in list(self._watched):
            self._watched.discard(producer_id)
            await self._router._release_pipe(producer_id, self._anchor)
