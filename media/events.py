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
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

logger = logging.getLogger("media.events")


class EventEmitter(AsyncIOEventEmitter):
    def _emit_handle_potential_error(self, event: str, error: Any) -> None:
        # pyee re-raises listener errors as an "error" event; keep them to logs
        # unless the application listens for "error" itself.
        if event == "error" and not self.listeners("error"):
            logger.error("unhandled error event: %r", error)
            return
        super()._emit_handle_potential_error(event, error)
