"""Event emitters for worker objects.

mediasoup emits with `safeEmit`: a listener that raises is logged and never
breaks the library's own bookkeeping (a close cascade must finish whatever an
application handler does). pyee already turns a listener's exception into an
"error" event; here an "error" nobody listens to is logged instead of raised.
pyee's asyncio emitter also runs coroutine listeners as tasks, so
`on("close", async_fn)` works.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

logger = logging.getLogger("media.events")


class EventEmitter(AsyncIOEventEmitter):
    _taps: tuple[Callable[..., Any], ...] = ()

    def add_tap(self, tap: Callable[..., Any]) -> None:
        """Call ``tap(event, *args)`` for every event, after its listeners: one registration for all of an
        object's events (a Remote Mediasoup server forwards ~15 of every object it mirrors; one listener
        each cost ~80 objects per consumer, kept as long as it lives). A tap that raises is logged."""
        self._taps = (*self._taps, tap)

    def remove_tap(self, tap: Callable[..., Any]) -> None:
        self._taps = tuple(other for other in self._taps if other != tap)

    def emit(self, event: str, *args: Any, **kwargs: Any) -> bool:
        handled = super().emit(event, *args, **kwargs)
        for tap in self._taps:
            try:
                tap(event, *args)
            except Exception:
                logger.exception("tap for %r failed", event)
        return handled

    def _emit_handle_potential_error(self, event: str, error: Any) -> None:
        # pyee re-raises listener errors as an "error" event; keep them to logs
        # unless the application listens for "error" itself.
        if event == "error" and not self.listeners("error"):
            logger.error("unhandled error event: %r", error)
            return
        super()._emit_handle_potential_error(event, error)

    def _add_event_handler(self, event: str, k: Callable[..., Any], v: Callable[..., Any]) -> None:
        # pyee emits "new_listener" before adding each listener: an emit (a lock, a list) per listener
        # even when nobody listens for it, ~15 per object a Remote Mediasoup server mirrors.
        if "new_listener" in self._events:
            super()._add_event_handler(event, k, v)
            return
        with self._lock:
            self._events.setdefault(event, OrderedDict())[k] = v
