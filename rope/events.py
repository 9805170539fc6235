"""A small pyee-style emitter whose async handlers have an owner.

pyee's asyncio emitter starts a task per coroutine handler that nobody awaits;
here such tasks go to a `TaskSet` owned by the client, which cancels and
awaits them on close, so a test ends with nothing running. A handler that
raises is logged and never breaks ROPE's own bookkeeping (mediasoup's
``safeEmit``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, overload

log = logging.getLogger("rope.events")

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)


class TaskSet:
    """Owns fire-and-forget tasks: ``close()`` cancels and awaits them all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any] | None:
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class EventEmitter:
    def __init__(self, tasks: TaskSet) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._tasks = tasks

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Call ``handler(*args)`` on every ``event``; usable as a decorator. Returns the handler."""
        if handler is None:
            return lambda h: self.on(event, h)
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def once(self, event: str, handler: H) -> H:
        def wrapper(*args: Any) -> Any:
            self.off(event, wrapper)
            return handler(*args)

        self.on(event, wrapper)
        return handler

    def off(self, event: str, handler: Handler) -> None:
        handlers = self._handlers.get(event)
        if handlers and handler in handlers:
            handlers.remove(handler)

    def listeners(self, event: str) -> list[Handler]:
        return list(self._handlers.get(event, ()))

    def remove_all_listeners(self) -> None:
        self._handlers.clear()

    def emit(self, event: str, *args: Any) -> bool:
        handlers = self._handlers.get(event)
        if not handlers:
            return False
        for handler in list(handlers):
            try:
                result = handler(*args)
            except Exception:
                log.exception("handler for %r failed", event)
                continue
            if inspect.iscoroutine(result):
                self._tasks.spawn(result, name=f"rope handler {event}")
        return True

    async def wait_for(self, event: str) -> tuple[Any, ...]:
        """The arguments of the next ``event`` (bound it with ``asyncio.timeout``)."""
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

        def handler(*args: Any) -> None:
            if not future.done():
                future.set_result(args)

        self.on(event, handler)
        try:
            return await future
        finally:
            self.off(event, handler)
