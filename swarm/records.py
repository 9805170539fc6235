"""What nodes gossip: typed, versioned records and their wire codec.

Each record is owned by one node (its ``peer_id``) and carries a version that
only grows (it starts from the wall clock in microseconds, so a restarted node
still supersedes what it said before). Only the owner announces its own
records, so merging is "highest version wins" with no conflicts.

Every record also carries its publisher's incarnation number (see `swarm.swim`):
a record proves its publisher alive at that incarnation, so a late copy of one
sent before the publisher was declared dead cannot bring it back.

Wire: one JSON envelope per gossip message, ``{"v":1, "cert": <the publisher's
membership certificate>, "kind": "load"|"placements"|"members", "record": {...}}``. The
decoder is strict (types, sizes): gossip comes from the network.

A load record's fields added after version 1 shipped (``wpipe``, ``mem``, ``roles``,
``links``) are optional top-level keys: a worker entry keeps its four items, so
nodes that predate them still accept the record (they ignore unknown keys) and
records from such nodes still decode here (the fields take their defaults).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Envelope",
    "LoadRecord",
    "LoadReport",
    "MemberNews",
    "MembershipRecord",
    "Placement",
    "PlacementRecord",
    "RecordError",
    "VersionCounter",
    "WorkerLoad",
    "decode_envelope",
    "encode_envelope",
    "heartbeat_s",
    "process_memory_bytes",
    "significant_change",
]

MAX_MESSAGE_BYTES = 256 * 1024
MAX_PLACEMENTS = 20000
MAX_WORKERS = 1024
MAX_ADDRS = 16
MAX_ROLES = 8
MAX_LINKS = 64


class RecordError(ValueError):
    """Gossip that does not decode into a valid record."""


@dataclass(frozen=True)
class WorkerLoad:
    worker_id: str
    consumers: int
    """Client consumers (what capacity is about); pipe consumers are counted apart."""
    capacity: int
    cpu_percent: float | None = None
    pipe_consumers: int = 0
    """Consumers on PipeTransports: the cost of carrying a producer to another worker."""


def process_memory_bytes() -> int:
    """Resident memory of this process: what a node without workers reports."""
    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class LoadReport:
    """What the media side reports (through the node's load provider)."""

    workers: tuple[WorkerLoad, ...] = ()
    bandwidth_in_bps: float = 0.0
    bandwidth_out_bps: float = 0.0
    memory_bytes: int = field(default_factory=process_memory_bytes)
    """Resident memory of the node (with its workers, for a media node)."""


@dataclass(frozen=True)
class LoadRecord:
    peer_id: str
    version: int
    cpu_percent: float
    cpu_count: int
    workers: tuple[WorkerLoad, ...]
    bandwidth_in_bps: float
    bandwidth_out_bps: float
    addrs: tuple[str, ...]
    """Where the node listens: what peer exchange dials."""
    ttl_s: float
    """How long the view keeps this node without hearing from it again (a backstop:
    failure detection is `swarm.probe`'s job)."""
    placements_version: int = 0
    incarnation: int = 0
    memory_bytes: int = 0
    roles: tuple[str, ...] = ()
    """The roles of the owner's certificate ("node", "monitor"...): a monitor hosts no workers."""
    links: tuple[str, ...] = ()
    """Members the owner is connected to (at most MAX_LINKS): the swarm's connection graph."""

    @property
    def consumers(self) -> int:
        return sum(worker.consumers for worker in self.workers)

    @property
    def pipe_consumers(self) -> int:
        return sum(worker.pipe_consumers for worker in self.workers)

    @property
    def capacity(self) -> int:
        return sum(worker.capacity for worker in self.workers)


@dataclass(frozen=True)
class Placement:
    """One piece the owner hosts: ``kind`` (e.g. "router", "producer") plus free JSON info."""

    kind: str
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlacementRecord:
    """The complete set of pieces one node hosts, keyed by a swarm-wide key."""

    peer_id: str
    version: int
    placements: Mapping[str, Placement]
    incarnation: int = 0


MEMBER_STATES = ("alive", "suspect", "dead")


@dataclass(frozen=True)
class MemberNews:
    """One SWIM update: ``subject`` is ``state`` at ``incarnation``. "alive" is only
    ever said by the subject itself (it refutes a suspicion by raising its number)."""

    subject: str
    state: str
    incarnation: int


@dataclass(frozen=True)
class MembershipRecord:
    """What the publisher has to say about members: its own refutation, or the
    peers it suspects (after a failed direct and indirect probe) or declares dead
    (their suspicion ran out). Versioned like every record; not stored."""

    peer_id: str
    version: int
    news: tuple[MemberNews, ...]
    incarnation: int = 0


Record = LoadRecord | PlacementRecord | MembershipRecord


@dataclass(frozen=True)
class Envelope:
    certificate: str
    record: Record


class VersionCounter:
    """Monotonic versions that survive restarts (wall-clock microseconds, then +1)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns() // 1000)
        return self._last


def encode_envelope(certificate: str, record: Record) -> bytes:
    if isinstance(record, LoadRecord):
        kind = "load"
        body: dict[str, Any] = {
            "peer": record.peer_id,
            "ver": record.version,
            "cpu": round(record.cpu_percent, 1),
            "ncpu": record.cpu_count,
            "workers": [
                [w.worker_id, w.consumers, w.capacity, None if w.cpu_percent is None else round(w.cpu_percent, 1)]
                for w in record.workers
            ],
            "bw": [round(record.bandwidth_in_bps), round(record.bandwidth_out_bps)],
            "addrs": list(record.addrs),
            "ttl": record.ttl_s,
            "pver": record.placements_version,
            "inc": record.incarnation,
        }
        if any(w.pipe_consumers for w in record.workers):
            body["wpipe"] = [w.pipe_consumers for w in record.workers]
        if record.memory_bytes:
            body["mem"] = record.memory_bytes
        if record.roles:
            body["roles"] = list(record.roles[:MAX_ROLES])
        if record.links:
            body["links"] = list(record.links[:MAX_LINKS])
    elif isinstance(record, MembershipRecord):
        kind = "members"
        body = {
            "peer": record.peer_id,
            "ver": record.version,
            "inc": record.incarnation,
            "news": [[n.subject, n.state, n.incarnation] for n in record.news],
        }
    else:
        kind = "placements"
        body = {
            "peer": record.peer_id,
            "ver": record.version,
            "inc": record.incarnation,
            "items": {key: [p.kind, dict(p.info)] for key, p in record.placements.items()},
        }
    data = json.dumps({"v": 1, "cert": certificate, "kind": kind, "record": body}, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise RecordError(f"{kind} record is {len(data)} bytes, over the {MAX_MESSAGE_BYTES} limit")
    return data


def heartbeat_s(interval_s: float, nodes: int, peers: int = 5) -> float:
    """Seconds between unforced load (and placement) messages in a swarm of ``nodes``.

    Each node carries every node's messages, so its traffic is about
    nodes / heartbeat messages a second: a heartbeat proportional to N above
    ``peers`` keeps that (and so the bytes per node) flat as the swarm grows.
    Changes do not wait for it (see `significant_change`)."""
    return interval_s * max(1.0, nodes / max(1, peers))


MACHINE_CPU_POINTS = 25.0


def significant_change(old: LoadRecord | None, new: LoadRecord) -> list[str]:
    """What in ``new`` a reader of ``old`` would act on (or see) differently: field names, [] if nothing.

    Counts, capacity, addresses, roles, links and placements are exact; the machine's
    CPU within 25 points (measured: on a shared 2-core box it moves 10 points between
    most 5 s samples, which made one message per node per sample and gossip linear in N
    again), a worker's within 10 (`swarm.media_node`'s placement calls that a tie),
    memory within 10 %, bandwidth within 20 % (or 64 kbit/s) can wait for the heartbeat."""
    if old is None:
        return ["all"]
    exact = ("cpu_count", "addrs", "placements_version", "incarnation", "roles", "links")
    changed = [name for name in exact if getattr(old, name) != getattr(new, name)]
    if [(w.worker_id, w.consumers, w.capacity, w.pipe_consumers) for w in old.workers] != [
        (w.worker_id, w.consumers, w.capacity, w.pipe_consumers) for w in new.workers
    ]:
        changed.append("workers")
    elif any(
        (a.cpu_percent is None) != (b.cpu_percent is None)
        or (a.cpu_percent is not None and b.cpu_percent is not None and abs(a.cpu_percent - b.cpu_percent) >= 10)
        for a, b in zip(old.workers, new.workers, strict=True)
    ):
        changed.append("worker cpu")
    if abs(old.cpu_percent - new.cpu_percent) >= MACHINE_CPU_POINTS:
        changed.append("cpu")
    if abs(old.memory_bytes - new.memory_bytes) > 0.1 * max(old.memory_bytes, 1):
        changed.append("memory")
    if any(
        abs(a - b) > max(0.2 * a, 64_000)
        for a, b in ((old.bandwidth_in_bps, new.bandwidth_in_bps), (old.bandwidth_out_bps, new.bandwidth_out_bps))
    ):
        changed.append("bandwidth")
    return changed


def _str(value: object, what: str, limit: int = 512) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise RecordError(f"{what} must be a string of at most {limit} characters")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"{what} must be a non-negative integer")
    return value


def _num(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RecordError(f"{what} must be a non-negative number")
    return float(value)


def _list(value: object, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise RecordError(f"{what} must be a list of at most {limit} items")
    return value


def _decode_load(body: dict[str, Any]) -> LoadRecord:
    items = _list(body.get("workers"), "workers", MAX_WORKERS)
    pipes = _list(body.get("wpipe", [0] * len(items)), "wpipe", len(items))
    if len(pipes) != len(items):
        raise RecordError("wpipe must have one count per worker")
    workers = []
    for item, pipe_consumers in zip(items, pipes, strict=True):
        entry = _list(item, "worker", 4)
        if len(entry) != 4:
            raise RecordError("worker must be [id, consumers, capacity, cpu]")
        cpu = None if entry[3] is None else _num(entry[3], "worker cpu")
        worker_id = _str(entry[0], "worker id")
        workers.append(WorkerLoad(
            worker_id, _int(entry[1], "consumers"), _int(entry[2], "capacity"), cpu, _int(pipe_consumers, "wpipe"),
        ))
    bandwidth = _list(body.get("bw"), "bw", 2)
    if len(bandwidth) != 2:
        raise RecordError("bw must be [in, out]")
    return LoadRecord(
        peer_id=_str(body.get("peer"), "peer"),
        version=_int(body.get("ver"), "ver"),
        cpu_percent=_num(body.get("cpu"), "cpu"),
        cpu_count=_int(body.get("ncpu"), "ncpu"),
        workers=tuple(workers),
        bandwidth_in_bps=_num(bandwidth[0], "bw in"),
        bandwidth_out_bps=_num(bandwidth[1], "bw out"),
        addrs=tuple(_str(a, "addr") for a in _list(body.get("addrs"), "addrs", MAX_ADDRS)),
        ttl_s=_num(body.get("ttl"), "ttl"),
        placements_version=_int(body.get("pver", 0), "pver"),
        incarnation=_int(body.get("inc", 0), "inc"),
        memory_bytes=_int(body.get("mem", 0), "mem"),
        roles=tuple(_str(r, "role", 32) for r in _list(body.get("roles", []), "roles", MAX_ROLES)),
        links=tuple(_str(p, "link") for p in _list(body.get("links", []), "links", MAX_LINKS)),
    )


def _decode_placements(body: dict[str, Any]) -> PlacementRecord:
    items = body.get("items")
    if not isinstance(items, dict) or len(items) > MAX_PLACEMENTS:
        raise RecordError(f"items must be an object of at most {MAX_PLACEMENTS} entries")
    placements: dict[str, Placement] = {}
    for key, value in items.items():
        entry = _list(value, "placement", 2)
        if len(entry) != 2 or not isinstance(entry[1], dict):
            raise RecordError("placement must be [kind, {info}]")
        placements[_str(key, "placement key")] = Placement(_str(entry[0], "placement kind", 64), entry[1])
    incarnation = _int(body.get("inc", 0), "inc")
    return PlacementRecord(_str(body.get("peer"), "peer"), _int(body.get("ver"), "ver"), placements, incarnation)


MAX_NEWS = 64


def _decode_members(body: dict[str, Any]) -> MembershipRecord:
    news = []
    for item in _list(body.get("news"), "news", MAX_NEWS):
        entry = _list(item, "news item", 3)
        if len(entry) != 3 or entry[1] not in MEMBER_STATES:
            raise RecordError(f"news item must be [peer, {'|'.join(MEMBER_STATES)}, incarnation]")
        news.append(MemberNews(_str(entry[0], "news subject"), entry[1], _int(entry[2], "news incarnation")))
    peer = _str(body.get("peer"), "peer")
    if any(n.state == "alive" and n.subject != peer for n in news):
        raise RecordError("only a member itself may say it is alive")
    return MembershipRecord(peer, _int(body.get("ver"), "ver"), tuple(news), _int(body.get("inc", 0), "inc"))


def decode_envelope(data: bytes) -> Envelope:
    if len(data) > MAX_MESSAGE_BYTES:
        raise RecordError(f"message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES} limit")
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise RecordError(f"not JSON: {error}") from None
    if not isinstance(message, dict) or message.get("v") != 1:
        raise RecordError("not a version 1 envelope")
    body = message.get("record")
    if not isinstance(body, dict):
        raise RecordError("record must be an object")
    kind = message.get("kind")
    record: Record
    if kind == "load":
        record = _decode_load(body)
    elif kind == "members":
        record = _decode_members(body)
    elif kind == "placements":
        record = _decode_placements(body)
    else:
        raise RecordError(f"unknown record kind {kind!r}")
    return Envelope(_str(message.get("cert"), "cert", 4096), record)
