"""A partition: ``mafalda-swarm simulate --partition 1`` cuts a live node off the network, then reconnects it.

Every node runs in a network namespace of its own on one bridge (`swarm.netns`), so taking a node's
link down separates running processes for real: the rest must drop it, it must drop the rest, and
once the link is back every view must be whole again, with no node of the rest ever removed by
another. Needs root (network namespaces); elsewhere the test says so and skips.
"""

from __future__ import annotations

import pytest

from swarm.netns import NetnsLab
from tests.cli import run_json

UNAVAILABLE = NetnsLab.unavailable()


@pytest.mark.skipif(UNAVAILABLE is not None, reason=f"partitions need network namespaces: {UNAVAILABLE}")
async def test_a_cut_node_and_the_rest_drop_each_other_and_merge_again_when_it_is_back() -> None:
    result = await run_json(
        "simulate", "--peers", "4", "--partition", "1", "--kill", "0", "--cut-for", "3", "--window", "2",
        "--settle", "1", within=300,
    )
    assert result["partitioned"] == 1
    assert result["detect_partition_s"] is not None and result["cut_side_detect_s"] is not None
    assert result["heal_s"] is not None  # every view whole again (the simulation waited for it)
    assert result["false_removals"] == 0, "a node of the rest was removed by another during the cut"
