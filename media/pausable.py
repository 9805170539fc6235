"""pause()/resume() as every mediasoup object does them, written once.

One channel request (`<PREFIX>_PAUSE` / `<PREFIX>_RESUME`), then the flag,
then an observer "pause"/"resume" only when the state really changed and the
change is visible (a consumer whose producer is paused sends nothing either
way, so monitoring sees no change).
"""

from __future__ import annotations

from typing import Any, cast


class Pausable:
    REQUEST_PREFIX: str
    """e.g. "PRODUCER": the channel methods are PRODUCER_PAUSE and PRODUCER_RESUME."""

    _paused: bool
    _id: str
    _channel: Any
    observer: Any

    def _check_open(self) -> None:
        raise NotImplementedError

    UPSTREAM = ""
    """What feeds a consumer ("producer", "dataproducer"): its events are "<UPSTREAM>pause"/"resume"."""

    _upstream_paused = False
    """Whether what feeds this object is paused (consumers only; producers have no upstream)."""

    def _pause_visible(self) -> bool:
        """Whether a change of our own paused flag changes what flows: not while the upstream is paused."""
        return not self._upstream_paused

    def _upstream_pause_changed(self, paused: bool) -> None:
        """The worker says our upstream paused or resumed: tell the application, and monitoring
        when it changes what flows (it does not while we are paused ourselves)."""
        if self._upstream_paused == paused:
            return
        self._upstream_paused = paused
        action = "pause" if paused else "resume"
        cast(Any, self).emit(f"{self.UPSTREAM}{action}")
        if not self._paused:
            self.observer.emit(action)

    async def pause(self) -> None:
        await self._set_paused(True)

    async def resume(self) -> None:
        await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> None:
        self._check_open()
        action = "PAUSE" if paused else "RESUME"
        await self._channel.request(f"{self.REQUEST_PREFIX}_{action}", handler_id=self._id)
        was_paused, self._paused = self._paused, paused
        if was_paused != paused and self._pause_visible():
            self.observer.emit(action.lower())
