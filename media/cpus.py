"""Which CPUs this process's threads run on, and which its children get.

A node's control plane hops threads: a ROPE call over libp2p passes between the asyncio thread and
the libp2p host's trio thread four times (`swarm.bridge`), and every hop wakes a thread that sleeps,
then hands it the GIL. Waking a thread asleep on another CPU costs an inter-processor interrupt,
on a VM a trip through the hypervisor: two threads of one process echoing one byte over a socket
pair took 63-66 µs per round trip on two vCPUs of this project's VM, 9-12 µs on one
(``python -m bench.cpu_hops``). CPython runs one of those threads at a time anyway, so keeping them
all on one CPU (`shared_cpu`) costs them no parallelism and makes every hop a context switch.

The media does not go with them: a worker (or a node) spawned meanwhile gets every CPU this process
had (`release`), and the workers are where the media runs. And since the kernel can no longer move
the threads off a CPU that has become busy, `shared_cpu` looks every second and moves them all to
the idlest CPU when other tasks took most of theirs (`better_cpu`): with a process spinning on
their CPU, they moved to the other one at the first look.

Why it is not the default (``MAFALDA_SHARED_CPU=1`` turns it on): the kernel no longer puts a
thread woken by another process next to it either. In 6 alternating runs of `bench.rope_latency`
(README, Figures) a ROPE call over libp2p within one process took 0.86 ms instead of 1.54 (p50),
but one between two such processes on one machine 1.23 ms instead of 1.03; calls to a worker
moved within the noise. A node alone on its machine gains; nodes sharing one, as in a local
swarm, lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

__all__ = ["better_cpu", "current_cpu", "pin_threads", "release", "shared_cpu"]

log = logging.getLogger(__name__)

CHECK_S = 1.0
"""How often `shared_cpu` looks at the CPUs' load."""
CROWDED = 0.5
"""Others' share of our CPU past which the threads move, to a CPU busy at most this much."""

_process_cpus: frozenset[int] | None = None
"""The CPUs the process had before `shared_cpu` pinned its threads; None while not pinned."""


def current_cpu() -> int:
    """The CPU the calling thread runs on now (field 39 of ``/proc/thread-self/stat``)."""
    with open("/proc/thread-self/stat") as file:
        return int(file.read().rsplit(")", 1)[1].split()[36])


def pin_threads(cpus: set[int] | frozenset[int]) -> None:
    """Set the affinity of every thread of this process; threads they start later inherit it."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def release(pid: int) -> None:
    """Give a child process (spawned by a pinned thread, so pinned too) every CPU of this process."""
    if _process_cpus is not None:
        with contextlib.suppress(ProcessLookupError):  # it exited already
            os.sched_setaffinity(pid, _process_cpus)


def better_cpu(ours: int, busy: Mapping[int, float], own: float) -> int | None:
    """Where the threads should move, or None to stay.

    ``busy``: the share of the last period each CPU was busy; ``own``: the share the threads
    themselves used (all on ``ours``). They move when other tasks took more than `CROWDED` of
    their CPU and another CPU was busy at most `CROWDED`, to the least busy one.
    """
    if busy.get(ours, 0.0) - own <= CROWDED:
        return None
    idlest = min((cpu for cpu in busy if cpu != ours), key=lambda cpu: (busy[cpu], cpu), default=None)
    if idlest is None or busy[idlest] > CROWDED:
        return None
    return idlest


def _cpu_busy_ticks(cpus: frozenset[int]) -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks since boot of each CPU in ``cpus``, from ``/proc/stat``."""
    ticks = {}
    with open("/proc/stat") as file:
        for line in file:
            name, _, rest = line.partition(" ")
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in rest.split()[:8])
                busy = user + nice + system + irq + softirq + steal
                ticks[int(name[3:])] = (busy, busy + idle + iowait)
    return ticks


def _own_ticks() -> int:
    """Clock ticks this process's threads have run (utime + stime)."""
    with open("/proc/self/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def _follow_load(cpus: frozenset[int], cpu: int, check_s: float) -> None:
    try:
        before, own_before = _cpu_busy_ticks(cpus), _own_ticks()
        while True:
            await asyncio.sleep(check_s)
            after, own_after = _cpu_busy_ticks(cpus), _own_ticks()
            busy = {c: (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]) for c in after if c in before}
            moved_to = better_cpu(cpu, busy, (own_after - own_before) / max(1, after[cpu][1] - before[cpu][1]))
            if moved_to is not None:
                log.info("threads move from CPU %d (%.0f %% busy) to CPU %d (%.0f %% busy)",
                         cpu, 100 * busy[cpu], moved_to, 100 * busy[moved_to])
                cpu = moved_to
                pin_threads({cpu})
            before, own_before = after, own_after
    except (OSError, ValueError, KeyError):  # an odd /proc: the threads stay where they are
        log.exception("cannot read the CPUs' load; the threads stay on CPU %d", cpu)


@asynccontextmanager
async def shared_cpu(enabled: bool | None = None, check_s: float = CHECK_S) -> AsyncIterator[int | None]:
    """With ``enabled`` (by default: ``MAFALDA_SHARED_CPU=1``), keep every thread of this process on
    one CPU (the one the caller runs on now) until exit.

    Yields that CPU, or None when off or with nothing to share (one CPU allowed). Not re-entrant:
    one per process, around what runs its hosts; an inner one yields None.
    """
    global _process_cpus
    cpus = frozenset(os.sched_getaffinity(0))
    if enabled is None:
        enabled = os.environ.get("MAFALDA_SHARED_CPU") == "1"
    if not enabled or len(cpus) < 2 or _process_cpus is not None:
        yield None
        return
    cpu = current_cpu()
    _process_cpus = cpus
    pin_threads({cpu})
    follower = asyncio.create_task(_follow_load(cpus, cpu, check_s), name="shared-cpu")
    try:
        yield cpu
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        pin_threads(cpus)
        _process_cpus = None
