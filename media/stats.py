"""One node's load, the same way over every back-end: what the swarm gossips and monitoring shows.

``await get_stats(source)`` where ``source`` is the `media` module (the
workers this process created: tracked from ``media.observer`` once this module
is imported), a `media.remote.RemoteMediasoup` (the server's own figures, in
one call: its CPU and memory, not ours), a `VerticalWorker` (its real workers),
a `media.horizontal.Horizontal` (the workers it placed, on every back-end; the
system figures are this machine's) or any iterable of workers of these kinds.

It walks the public API only (worker.routers, router.transports,
transport.producers/consumers) and asks each worker for its resource usage,
so it works unchanged on local, remote and vertical workers. Cheap by design:
counting is local (remote state is mirrored), a worker's CPU share comes from
the difference of two ``get_resource_usage()`` readings (no sleeping), and
per-transport bitrates (one ``get_stats()`` call per transport) can be turned
off or capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import psutil

import media

_local_workers: weakref.WeakSet[Any] = weakref.WeakSet()
media.observer.on("newworker", _local_workers.add)

_cpu_samples: weakref.WeakKeyDictionary[Any, tuple[float, float]] = weakref.WeakKeyDictionary()
"""worker -> (CPU seconds used, monotonic time) at the previous reading."""

COUNTS = ("routers", "transports", "pipe_transports", "producers", "pipe_producers", "consumers", "pipe_consumers",
          "data_producers", "data_consumers")


async def get_stats(source: Any, *, transport_bitrates: bool = True, max_transports: int = 1000) -> dict[str, Any]:
    """The node's figures: ``system``, ``workers`` (one entry each), ``totals`` and ``transports`` (bitrates)."""
    node_stats = getattr(source, "get_node_stats", None)
    if node_stats is not None:
        return await node_stats()
    workers = [worker for worker in _workers(source) if not worker.closed]
    worker_stats = await asyncio.gather(*(_worker_stats(worker) for worker in workers))
    totals = {key: sum(stats[key] for stats in worker_stats) for key in COUNTS}
    totals["workers"] = len(workers)
    transports = await transport_stats(workers, max_transports) if transport_bitrates else []
    return {"time": time.time(), "system": system_stats(), "workers": worker_stats, "totals": totals,
            "transports": transports}


def system_stats() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "cpu_count": psutil.cpu_count() or 1,
        "cpu_percent": psutil.cpu_percent(interval=None),
        "load_average": list(psutil.getloadavg()),
        "memory_total": memory.total,
        "memory_available": memory.available,
        "memory_percent": memory.percent,
    }


def _workers(source: Any) -> list[Any]:
    if isinstance(source, ModuleType):
        return list(_local_workers)
    real = getattr(source, "real_workers", None)  # a VerticalWorker
    if real is not None:
        return list(real)
    placed = getattr(source, "workers", None)  # a Horizontal: the workers it placed, on any back-end
    if isinstance(placed, list):
        return placed
    if hasattr(source, "create_router"):
        return [source]
    if isinstance(source, Iterable):
        return [worker for item in source for worker in _workers(item)]
    raise TypeError(f"get_stats() needs the media module, a RemoteMediasoup, a worker or workers, not {source!r}")


def _routers(worker: Any) -> list[Any]:
    return [router for router in worker.routers if not router.closed]


def count_worker(worker: Any) -> dict[str, int]:
    """The worker's objects by kind (`COUNTS`): a consumer of a PipeTransport counts as a pipe consumer."""
    counts = dict.fromkeys(COUNTS, 0)
    for router in _routers(worker):
        counts["routers"] += 1
        for transport in router.transports.values():
            pipe = type(transport).__name__ == "PipeTransport"
            counts["pipe_transports" if pipe else "transports"] += 1
            counts["pipe_producers" if pipe else "producers"] += len(transport.producers)
            for consumer in transport.consumers.values():
                counts["pipe_consumers" if consumer.type == "pipe" else "consumers"] += 1
            counts["data_producers"] += len(transport.data_producers)
            counts["data_consumers"] += len(transport.data_consumers)
    return counts


async def _worker_stats(worker: Any) -> dict[str, Any]:
    counts = count_worker(worker)
    try:
        usage = await worker.get_resource_usage()
    except Exception:  # closing or unreachable right now: counts still stand
        usage = {}
    return {"pid": getattr(worker, "pid", None), "cpu": _cpu_share(worker, usage),
            "memory_rss_kb": usage.get("ru_maxrss"), **counts}


def _cpu_share(worker: Any, usage: dict[str, int]) -> float | None:
    """CPU used since the previous reading, as a share of one core (None on the first reading)."""
    if "ru_utime" not in usage:
        return None
    seconds = (usage["ru_utime"] + usage["ru_stime"]) / 1000.0  # mediasoup reports milliseconds
    now = time.monotonic()
    previous = _cpu_samples.get(worker)
    _cpu_samples[worker] = (seconds, now)
    if previous is None or now <= previous[1]:
        return None
    return max(0.0, (seconds - previous[0]) / (now - previous[1]))


RTT_CONSUMERS = 2
"""Consumers per transport asked for their round-trip time (one request each)."""


async def _bitrates(transport: Any) -> dict[str, Any] | None:
    """A transport's bitrates and packet loss, its worst producer/consumer score and an RTT.

    Scores come from the mirrored state (no request); the RTT from the first
    `RTT_CONSUMERS` consumers' stats (the worker measures it on what it sends).
    """
    try:
        [stats, *_] = await transport.get_stats()
    except Exception:  # closed meanwhile
        return None
    consumers = list(transport.consumers.values())
    scores = [c.score.get("score") for c in consumers if isinstance(getattr(c, "score", None), dict)]
    for producer in transport.producers.values():
        scores += [s.get("score") for s in getattr(producer, "score", None) or [] if isinstance(s, dict)]
    rtts = []
    for consumer in consumers[:RTT_CONSUMERS]:
        with contextlib.suppress(Exception):
            rtts += [s["roundTripTime"] for s in await consumer.get_stats() if s.get("roundTripTime")]
    valid = [s for s in scores if isinstance(s, int | float)]
    return {"id": transport.id, "type": stats.get("type"), "recv_bitrate": stats.get("recvBitrate", 0),
            "send_bitrate": stats.get("sendBitrate", 0),
            "packet_loss_received": stats.get("rtpPacketLossReceived"),
            "packet_loss_sent": stats.get("rtpPacketLossSent"),
            "score": min(valid) if valid else None, "rtt_ms": max(rtts) if rtts else None,
            "producers": len(transport.producers), "consumers": len(consumers)}


async def transport_stats(workers: Iterable[Any], max_transports: int = 1000) -> list[dict[str, Any]]:
    """`_bitrates` of every transport on these workers (at most ``max_transports``)."""
    every = [t for worker in workers for router in _routers(worker) for t in router.transports.values()]
    return [t for t in await asyncio.gather(*(_bitrates(t) for t in every[:max_transports])) if t]
