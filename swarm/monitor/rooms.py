"""Where each room lives: the entry node publishes its span, every reader gets a thin view of it.

A room (a vertical router) is known in full only to the node it was entered
through. That node announces it as the placement ``room:<id>`` (kind "room");
`RoomSpans` keeps the placement's info up to date with the room's span::

    {"entry": peer, "workers": [[peer, worker], ...],
     "producers": [[producer, kind, peer, worker], ...],
     "pipes": [[producer, from peer, from worker, to peer, to worker], ...]}

where ``worker`` is the worker id of the load records (its pid), so a reader
joins rooms to nodes and workers with nothing but gossip. `room_view` reads a
placement back, skipping whatever does not have that shape (gossip is input).
Lists are capped so a big room cannot push the placement record past the
gossip message limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from swarm.records import Placement

__all__ = ["MAX_ITEMS", "RoomSpans", "describe_room", "room_view", "rooms_of"]

log = logging.getLogger(__name__)

MAX_ITEMS = 64
"""Workers, producers and pipes listed per room at most."""

PeerOf = Callable[[Any], str | None]


def describe_room(router: Any, entry_peer: str, peer_of: PeerOf) -> dict[str, Any]:
    """The span of a vertical router: its real workers, producers and the pipes between workers."""

    def place(real_router: Any) -> tuple[str, str]:
        worker = real_router.worker
        return (peer_of(worker) or "?", str(worker.pid))

    workers = sorted({place(real) for real in router.real_routers})
    producers = []
    for producer_id, producer in router.producers.items():
        with contextlib.suppress(KeyError):
            producers.append([producer_id, producer.kind, *place(router.home_router(producer_id))])
    pipes: set[tuple[str, str, str, str, str]] = set()
    for transport in router.transports.values():
        target = transport.real_router
        for consumer in transport.consumers.values():
            try:
                home = router.home_router(consumer.producer_id)
            except KeyError:
                continue
            if home is not target:
                pipes.add((consumer.producer_id, *place(home), *place(target)))
    return {
        "entry": entry_peer,
        "workers": [list(w) for w in workers[:MAX_ITEMS]],
        "producers": sorted(producers)[:MAX_ITEMS],
        "pipes": [list(p) for p in sorted(pipes)[:MAX_ITEMS]],
    }


class RoomSpans:
    """Keeps each room's placement (set by `MediaNode` when the room opens) carrying its span.

    It looks every `interval_s` (a room's span changes with its transports and
    pipes, which have no single event) and republishes only what changed; a
    closed room has already left ``media_node.rooms`` and its placement.
    """

    def __init__(self, media_node: Any, interval_s: float = 0.25) -> None:
        self._media_node = media_node
        self._interval_s = interval_s
        self._published: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def refresh(self) -> None:
        media_node = self._media_node
        node = media_node.node
        rooms = dict(media_node.rooms)
        for room_id in set(self._published) - set(rooms):
            del self._published[room_id]
        for room_id, router in rooms.items():
            try:
                info = describe_room(router, node.peer_id, media_node.mediasoup.peer_of)
            except Exception:  # a room closing under our feet: next round
                log.debug("cannot describe room %s", room_id, exc_info=True, extra={"room_id": room_id})
                continue
            if self._published.get(room_id) != info:
                self._published[room_id] = info
                node.set_placement(f"room:{room_id}", "room", info)

    async def _run(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(self._interval_s)


def _strings(value: Any, size: int) -> list[str] | None:
    if isinstance(value, list) and len(value) == size and all(isinstance(v, str) and len(v) <= 512 for v in value):
        return value
    return None


def _rows(info: Mapping[str, Any], key: str, size: int) -> list[list[str]]:
    items = info.get(key)
    if not isinstance(items, list):
        return []
    return [row for row in (_strings(item, size) for item in items[:MAX_ITEMS]) if row is not None]


def room_view(key: str, owner: str, placement: Placement) -> dict[str, Any] | None:
    """One room as the page shows it, from its placement (None if ``key`` is no room)."""
    if placement.kind != "room":
        return None
    info = placement.info
    room_id = key.removeprefix("room:")
    workers = [{"peer": p, "worker": w} for p, w in _rows(info, "workers", 2)]
    producers = [{"id": i, "kind": k, "peer": p, "worker": w} for i, k, p, w in _rows(info, "producers", 4)]
    pipes = [
        {"producer": i, "from": {"peer": fp, "worker": fw}, "to": {"peer": tp, "worker": tw}}
        for i, fp, fw, tp, tw in _rows(info, "pipes", 5)
    ]
    entry = info.get("entry")
    if not isinstance(entry, str):
        entry = owner
    nodes = sorted({w["peer"] for w in workers} | {entry})
    return {"id": room_id, "entry": entry, "owner": owner, "nodes": nodes, "workers": workers,
            "producers": producers, "pipes": pipes}


def rooms_of(placements: Mapping[str, tuple[str, Placement]]) -> list[dict[str, Any]]:
    """Every room among ``placements`` (key -> (owner, placement)), in a stable order."""
    views = (room_view(key, owner, placement) for key, (owner, placement) in sorted(placements.items()))
    return [view for view in views if view is not None]
