"""How every bench script reports: a plain-text table, then optionally one JSON line.

Figures go to stdout, progress to stderr, so `--json | tail -1` is machine-readable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from swarm import gc_policy


def parser(description: str) -> argparse.ArgumentParser:
    """The common options; also keeps the workers' own log lines (benign at this volume) off the output."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("media.worker.log").setLevel(logging.CRITICAL)
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="also print one JSON object as the last line")
    return p


def add_gc_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--default-gc", action="store_true",
                   help="CPython's default garbage collection, not a node's (swarm.gc_policy)")


def collect_like_a_node(default_gc: bool) -> str:
    """Collect garbage as `mafalda-swarm node` does once it is up (`swarm.gc_policy`: the start-up
    heap frozen, young collections every 10,000 allocations), unless ``default_gc``. Returns the
    wording for a title; call it once the set-up's imports are done."""
    if default_gc:
        return "CPython's default GC"
    gc_policy.tune_for_a_server()
    return "a node's GC policy"


def thread_placement(cpu: int | None) -> str:
    """Where the threads were, for a title: ``cpu`` is what `media.cpus.shared_cpu` yielded."""
    return "threads where the kernel puts them" if cpu is None else "threads sharing one CPU"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    if title:
        print(title)
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print()


def emit_json(enabled: bool, payload: dict[str, Any]) -> None:
    if enabled:
        print(json.dumps(payload, sort_keys=True))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
