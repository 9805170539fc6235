"""Prometheus `/metrics`: the node's own figures and, from its view, every other member's.

Names follow Prometheus conventions: the ``mafalda_swarm_`` prefix, base units
in the name (``_bytes``, ``_ratio``, ``_bits_per_second``, ``_seconds``),
gauges only (everything here is a current value). Labels stay bounded: ``node``
(a member of the swarm), ``worker`` (a worker of that node), ``room`` (a room
that exists now), ``role`` (a certificate role).

Every member's row comes from its gossiped load record (this node's from the
record it last published); on a media node `media.stats.get_stats` of its own
workers adds the ``mafalda_swarm_local_worker_*`` families, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["LOCAL_WORKER_COUNTS", "render_metrics"]

PREFIX = "mafalda_swarm_"

LOCAL_WORKER_COUNTS = ("routers", "transports", "pipe_transports", "producers", "pipe_producers", "consumers",
                       "pipe_consumers", "data_producers", "data_consumers")
"""`media.stats` worker counts exported one family each (``mafalda_swarm_local_worker_<count>``)."""

_NODE_GAUGES: tuple[tuple[str, str, str, float], ...] = (
    # (row key, metric name, help, scale)
    ("cpu", "node_cpu_ratio", "Machine CPU use of the node's host (0-1).", 0.01),
    ("cpus", "node_cpus", "CPUs of the node's host.", 1),
    ("memory", "node_memory_bytes", "Resident memory of the node process and its workers.", 1),
    ("consumers", "node_consumers", "Client consumers on the node's workers.", 1),
    ("pipe_consumers", "node_pipe_consumers", "Pipe consumers (producers carried to other workers).", 1),
    ("capacity", "node_consumer_capacity", "Client consumers the node's workers take at most.", 1),
    ("in_bps", "node_receive_bits_per_second", "Bitrate received by the node's transports.", 1),
    ("out_bps", "node_send_bits_per_second", "Bitrate sent by the node's transports.", 1),
    ("heard_at", "node_last_heard_timestamp_seconds", "When the node stamped its newest load record.", 1),
)


class _Snapshot(Collector):
    def __init__(self, rows: Sequence[Mapping[str, Any]], rooms: Sequence[Mapping[str, Any]],
                 local: Mapping[str, Any] | None, self_id: str) -> None:
        self.rows, self.rooms, self.local, self.self_id = rows, rooms, local, self_id

    def collect(self) -> Iterator[Metric]:
        yield from self._members()
        yield from self._workers()
        yield from self._rooms()
        if self.local is not None:
            yield from self._local()

    def _members(self) -> Iterator[Metric]:
        members = GaugeMetricFamily(PREFIX + "members", "Members in this node's view, itself included.")
        members.add_metric([], len(self.rows))
        yield members
        roles = GaugeMetricFamily(PREFIX + "node_role_info", "1 for each role of each member.", labels=["node", "role"])
        for row in self.rows:
            for role in row.get("roles") or ():
                roles.add_metric([row["peer"], role], 1)
        yield roles
        links = GaugeMetricFamily(PREFIX + "node_connections", "Members the node is connected to.", labels=["node"])
        for row in self.rows:
            links.add_metric([row["peer"]], len(row.get("links") or ()))
        yield links
        for key, name, help_text, scale in _NODE_GAUGES:
            family = GaugeMetricFamily(PREFIX + name, help_text, labels=["node"])
            for row in self.rows:
                if row.get(key) is not None:
                    family.add_metric([row["peer"]], row[key] * scale)
            yield family
        workers = GaugeMetricFamily(PREFIX + "node_workers", "Workers the node runs.", labels=["node"])
        for row in self.rows:
            workers.add_metric([row["peer"]], len(row.get("workers") or ()))
        yield workers

    def _workers(self) -> Iterator[Metric]:
        families = {
            "consumers": GaugeMetricFamily(PREFIX + "worker_consumers", "Client consumers on the worker.",
                                           labels=["node", "worker"]),
            "pipe_consumers": GaugeMetricFamily(PREFIX + "worker_pipe_consumers", "Pipe consumers on the worker.",
                                                labels=["node", "worker"]),
            "capacity": GaugeMetricFamily(PREFIX + "worker_consumer_capacity", "Client consumers the worker takes.",
                                          labels=["node", "worker"]),
            "cpu": GaugeMetricFamily(PREFIX + "worker_cpu_ratio", "CPU the worker uses, as a share of one core.",
                                     labels=["node", "worker"]),
        }
        for row in self.rows:
            for worker in row.get("workers") or ():
                for key, family in families.items():
                    value = worker.get(key)
                    if value is not None:
                        family.add_metric([row["peer"], worker["id"]], value * (0.01 if key == "cpu" else 1))
        yield from families.values()

    def _rooms(self) -> Iterator[Metric]:
        rooms = GaugeMetricFamily(PREFIX + "rooms", "Rooms in the swarm (by the placements gossiped).")
        rooms.add_metric([], len(self.rooms))
        yield rooms
        spans = {
            "nodes": GaugeMetricFamily(PREFIX + "room_nodes", "Nodes a room spans.", labels=["room"]),
            "workers": GaugeMetricFamily(PREFIX + "room_workers", "Workers a room spans.", labels=["room"]),
            "producers": GaugeMetricFamily(PREFIX + "room_producers", "Producers in a room.", labels=["room"]),
            "pipes": GaugeMetricFamily(PREFIX + "room_pipes", "Pipes (producer x worker) in a room.", labels=["room"]),
        }
        for room in self.rooms:
            for key, family in spans.items():
                family.add_metric([room["id"]], len(room[key]))
        yield from spans.values()

    def _local(self) -> Iterator[Metric]:
        """This node's workers as `media.stats.get_stats` counts them, at scrape time."""
        assert self.local is not None
        labels = ["node", "worker"]
        counts = {key: GaugeMetricFamily(PREFIX + f"local_worker_{key}", f"{key.replace('_', ' ')} (media.stats).",
                                         labels=labels) for key in LOCAL_WORKER_COUNTS}
        cpu = GaugeMetricFamily(PREFIX + "local_worker_cpu_ratio",
                                "Worker CPU since the previous reading, share of one core.", labels=labels)
        rss = GaugeMetricFamily(PREFIX + "local_worker_max_resident_memory_bytes",
                                "Worker peak resident memory.", labels=labels)
        for worker in self.local.get("workers", []):
            worker_labels = [self.self_id, str(worker.get("pid"))]
            for key, family in counts.items():
                family.add_metric(worker_labels, worker.get(key, 0))
            if worker.get("cpu") is not None:
                cpu.add_metric(worker_labels, worker["cpu"])
            if worker.get("memory_rss_kb") is not None:
                rss.add_metric(worker_labels, worker["memory_rss_kb"] * 1024)
        yield from counts.values()
        yield cpu
        yield rss
        system = self.local.get("system", {})
        memory = GaugeMetricFamily(PREFIX + "local_host_memory_available_bytes", "Memory available on the host.")
        if "memory_available" in system:
            memory.add_metric([], system["memory_available"])
        yield memory


def render_metrics(rows: Sequence[Mapping[str, Any]], rooms: Sequence[Mapping[str, Any]],
                   local_stats: Mapping[str, Any] | None, self_id: str) -> bytes:
    """The Prometheus text format for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(rows, rooms, local_stats, self_id))
    return generate_latest(registry)
