"""Garbage collection for a long-running node process.

A node flooded with connections allocates ~13,000 Python objects per refused stranger
(py-libp2p and trio: tasks, cancel scopes, outcomes, frames), nearly all freed by
reference counting at once. At CPython's default gen0 threshold (700 allocations) a
collection starts every few dozen microseconds of such work and walks every young
object alive at that moment: 0.65 ms of GC per refused stranger, 8 % of the node's CPU
(bench.accept, ~900 refusals, timed with ``gc.callbacks``); at 10,000 it is 0.19 ms.
``gc.freeze()`` once the host is up takes what was imported and built (80,000 objects)
out of every later full collection: without it, one full collection in 1,000 sequential
``create_webrtc_transport()`` or ``consume()`` calls took 34-114 ms, and all collections
together 43-128 µs per call (the control plane's figures in bench.control_plane); with it,
7-11 µs per call. Called by ``mafalda-swarm node`` once its node is up, by the other
servers (``serve``, ``proxy``, ``cluster``) once they listen, and by the benches that
measure a node's work (`bench.report.collect_like_a_node`).
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_for_a_server"]

GEN0_THRESHOLD = 10_000
"""Allocations between two young collections: at most this many young objects wait for one."""


def tune_for_a_server() -> None:
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
