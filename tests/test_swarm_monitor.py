"""Mafalda-monitor: what a member sees of every other node's load and placements."""

from __future__ import annotations

from swarm.membership import SwarmAuthority
from swarm.monitor_cli import render, snapshot
from swarm.records import LoadReport, WorkerLoad
from tests.test_swarm_node import full_views, swarm_of, wait_until


async def test_monitor_shows_every_nodes_load_and_placements() -> None:
    async with swarm_of(SwarmAuthority.generate(), 3) as nodes:
        await wait_until(lambda: full_views(nodes))
        busy, monitor = nodes[1], nodes[2]
        busy.set_load_provider(lambda: LoadReport(workers=(WorkerLoad("w1", 42, 500), WorkerLoad("w2", 7, 500))))
        busy.notify_load_changed()
        busy.set_placement("room:abc", "room", {"entry": busy.peer_id})
        assert monitor.view is not None
        view = monitor.view

        def shows_busy() -> bool:
            rows = {row["peer"]: row for row in snapshot(view)}
            row = rows.get(busy.peer_id)
            return bool(row and row["consumers"] == 49 and row["placements"] == ["room:abc"])

        await wait_until(shows_busy)
        rows = snapshot(view)
        assert {row["peer"] for row in rows} == {nodes[0].peer_id, busy.peer_id}
        table = render(rows)
        assert "49/1000" in table and "room:abc" in table and "(2 node(s) in view)" in table
