"""What the monitor page shows, built from a node's view of the swarm, and 10 minutes of history.

`SwarmState.snapshot()` is plain JSON: every member (this node included, from
the load record it last published) with its figures, the rooms read from the
placements, and the members that left recently. It holds no wall-clock age:
``heard_at`` is when the owner stamped its newest load record (its version is
wall-clock microseconds), so a snapshot changes only when the swarm does and
the page ages it by itself.

`SwarmState.run()` pushes a new snapshot to subscribers when it changes (a
view event wakes it at once: a member leaving shows without delay; figures
that change without an event are noticed within `poll_s`) and samples every
member each `sample_s` into per-node series the page plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swarm.monitor.rooms import rooms_of
from swarm.records import LoadRecord
from swarm.view import ViewEvent

__all__ = ["HISTORY_S", "SwarmState", "node_row"]

HISTORY_S = 600.0
LEFT_KEPT = 50
SAMPLE_FIELDS = ("cpu", "consumers", "pipe_consumers", "in_bps", "out_bps", "memory")


def node_row(record: LoadRecord | None, peer_id: str, *, is_self: bool, expires_at: float | None) -> dict[str, Any]:
    """One member as the page and `/metrics` show it (figures None while no load record came)."""
    row: dict[str, Any] = {"peer": peer_id, "self": is_self, "expires_at": expires_at}
    if record is None:
        return row | {"roles": [], "links": [], "workers": [], "heard_at": None}
    return row | {
        "roles": list(record.roles),
        "links": list(record.links),
        "heard_at": record.version / 1e6,
        "cpu": record.cpu_percent,
        "cpus": record.cpu_count,
        "memory": record.memory_bytes or None,
        "consumers": record.consumers,
        "pipe_consumers": record.pipe_consumers,
        "capacity": record.capacity,
        "in_bps": record.bandwidth_in_bps,
        "out_bps": record.bandwidth_out_bps,
        "workers": [
            {"id": w.worker_id, "consumers": w.consumers, "pipe_consumers": w.pipe_consumers,
             "capacity": w.capacity, "cpu": w.cpu_percent}
            for w in record.workers
        ],
    }


@dataclass
class _Series:
    times: deque[float]
    values: dict[str, deque[float | None]]


class SwarmState:
    """The page's model over one `SwarmNode` (a monitor, or any node serving the page)."""

    def __init__(self, node: Any, *, sample_s: float = 2.0, poll_s: float = 0.25,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.sample_s = sample_s
        self.poll_s = poll_s
        self._clock = clock
        self._left: deque[dict[str, Any]] = deque(maxlen=LEFT_KEPT)
        self._series: dict[str, _Series] = {}
        self._subscribers: set[asyncio.Queue[tuple[str, str]]] = set()
        self._woken = asyncio.Event()
        self._last_json = ""
        self.version = 0
        """Bumped on every new snapshot: the page shows it (tests and benches wait on it)."""

    # -- building ----------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        node = self.node
        view = node.view
        own = node_row(node.last_load, node.peer_id, is_self=True, expires_at=None)
        if node.last_load is None:
            own["roles"] = list(node.certificate.roles)
        rows = [own]
        if view is not None:
            now = time.monotonic()
            for peer_id, state in sorted(view.peers().items()):
                rows.append(node_row(state.load, peer_id, is_self=False,
                                     expires_at=self._clock() + max(0.0, state.expires_at - now)))
        return rows

    def rooms(self) -> list[dict[str, Any]]:
        node = self.node
        placements = dict(node.view.placements()) if node.view is not None else {}
        for key, placement in node.own_placements.items():
            placements[key] = (node.peer_id, placement)
        return rooms_of(placements)

    def snapshot(self) -> dict[str, Any]:
        rows = self.rows()
        for row in rows:
            row.pop("expires_at")  # changes on every record: the page does not need it
        return {"self": self.node.peer_id, "nodes": rows, "rooms": self.rooms(), "left": list(self._left)}

    def history(self) -> dict[str, Any]:
        """Per node: sample times and one list per figure (`SAMPLE_FIELDS`)."""
        return {peer: {"t": list(s.times), **{k: list(v) for k, v in s.values.items()}}
                for peer, s in self._series.items()}

    # -- sampling ----------------------------------------------------------------------

    def sample(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        point: dict[str, dict[str, Any]] = {}
        for row in self.rows():
            if row.get("heard_at") is None:
                continue
            values = {key: row.get(key) for key in SAMPLE_FIELDS}
            series = self._series.get(row["peer"])
            if series is None:
                size = int(HISTORY_S / self.sample_s) + 1
                series = _Series(deque(maxlen=size), {k: deque(maxlen=size) for k in SAMPLE_FIELDS})
                self._series[row["peer"]] = series
            series.times.append(now)
            for key, value in values.items():
                series.values[key].append(value)
            point[row["peer"]] = {"t": now, **values}
        horizon = now - HISTORY_S
        for peer in [p for p, s in self._series.items() if not s.times or s.times[-1] < horizon]:
            del self._series[peer]
        return point

    # -- pushing -----------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[tuple[str, str]]:
        """A queue of (event, JSON data): "state" now and on every change, "sample" every `sample_s`."""
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=64)
        queue.put_nowait(("history", json.dumps(self.history())))
        queue.put_nowait(("state", self._state_json()))
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str]]) -> None:
        self._subscribers.discard(queue)

    def is_subscribed(self, queue: asyncio.Queue[tuple[str, str]]) -> bool:
        return queue in self._subscribers

    def _state_json(self) -> str:
        return json.dumps({"version": self.version, **self.snapshot()}, separators=(",", ":"))

    def _publish(self, event: str, data: str) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait((event, data))
            except asyncio.QueueFull:  # a stalled page: drop it, its browser reconnects
                self._subscribers.discard(queue)

    def on_view(self, event: ViewEvent) -> None:
        if event.kind == "removed":
            self._left.appendleft({"peer": event.peer_id, "at": self._clock()})
        self._woken.set()

    async def run(self) -> None:
        view = self.node.view
        remove = view.add_listener(self.on_view) if view is not None else None
        next_sample = 0.0
        try:
            while True:
                self._woken.clear()
                snapshot = self.snapshot()
                key = json.dumps(snapshot, separators=(",", ":"), sort_keys=True)
                if key != self._last_json:
                    self._last_json = key
                    self.version += 1
                    self._publish("state", json.dumps({"version": self.version, **snapshot}, separators=(",", ":")))
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + self.sample_s
                    self._publish("sample", json.dumps(self.sample(), separators=(",", ":")))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._woken.wait()
        finally:
            if remove is not None:
                remove()
