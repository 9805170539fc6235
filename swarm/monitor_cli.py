"""``mafalda-swarm monitor``: the loads and placements of every node, as the swarm gossips them.

The monitor is a member like any other (its own identity and certificate,
which must carry the "monitor" role: nodes never place workers on a monitor);
it hosts nothing and prints the view it learns: per node CPU, workers,
consumers against capacity, bandwidth, and the rooms and other pieces each
hosts. ``--once`` prints one table (after the view has had time to fill) and
exits; ``--json`` prints one JSON object per refresh. ``--http HOST:PORT``
serves the live web page, its API and ``/metrics`` instead (see `swarm.monitor`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from swarm import logs
from swarm.bootstrap import BootstrapError
from swarm.membership import CertificateError, load_or_create_identity
from swarm.monitor import options as http_options
from swarm.monitor.rooms import room_view
from swarm.node_cli import add_arguments as add_node_arguments
from swarm.node_cli import build_node
from swarm.view import SwarmView

MONITOR_ROLE = "monitor"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_node_arguments(parser)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    parser.add_argument("--once", action="store_true", help="print one refresh, then exit")
    parser.add_argument("--json", action="store_true", help="one JSON object per refresh instead of a table")


def snapshot(view: SwarmView) -> list[dict[str, Any]]:
    """One row per live node, in a stable order."""
    placements: dict[str, list[str]] = {}
    for key, (owner, placement) in view.placements().items():
        room = room_view(key, owner, placement)
        label = key if key.startswith(f"{placement.kind}:") else f"{placement.kind}:{key}"
        for peer in room["nodes"] if room is not None else [owner]:  # a room shows on every node it spans
            placements.setdefault(peer, []).append(label)
    rows = []
    for peer_id, state in sorted(view.peers().items()):
        load = state.load
        rows.append({
            "peer": peer_id,
            "cpu_percent": load.cpu_percent if load else None,
            "cpus": load.cpu_count if load else None,
            "workers": len(load.workers) if load else None,
            "consumers": load.consumers if load else None,
            "pipe_consumers": load.pipe_consumers if load else None,
            "memory_bytes": load.memory_bytes if load else None,
            "capacity": load.capacity if load else None,
            "in_bps": load.bandwidth_in_bps if load else None,
            "out_bps": load.bandwidth_out_bps if load else None,
            "placements": sorted(placements.get(peer_id, [])),
        })
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["node", "cpu %", "workers", "consumers/capacity", "pipe consumers", "out kbit/s", "hosts"]
    lines = []
    for row in rows:
        def num(value: Any, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        lines.append([
            row["peer"][-12:],
            num(row["cpu_percent"], ".1f"),
            num(row["workers"], "d"),
            f"{num(row['consumers'], 'd')}/{num(row['capacity'], 'd')}",
            num(row["pipe_consumers"], "d"),
            num(row["out_bps"] / 1000 if row["out_bps"] is not None else None, ".0f"),
            ", ".join(row["placements"]) or "-",
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out) + f"\n({len(rows)} node(s) in view)"


async def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        http = http_options.http_config(args)
        node = build_node(args, load_or_create_identity(directory / "node.key"))
        if MONITOR_ROLE not in node.certificate.roles:
            raise ValueError(f"the certificate in {directory} lacks the {MONITOR_ROLE!r} role "
                             "(admit the monitor with --roles monitor: nodes then never place workers on it)")
    except (OSError, CertificateError, BootstrapError, ValueError) as error:
        print(f"mafalda-swarm monitor: {error}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with node:
        assert node.view is not None
        logs.set_peer_id(node.peer_id)
        if http is not None:
            async with http_options.page(http, node):
                await stop.wait()
            return 0
        while not stop.is_set():
            # The first refresh waits one interval: views fill through gossip.
            try:
                await asyncio.wait_for(stop.wait(), args.interval)
            except TimeoutError:
                pass
            rows = snapshot(node.view)
            print(json.dumps({"nodes": rows}) if args.json else render(rows), flush=True)
            if args.once:
                break
    return 0
