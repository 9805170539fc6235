"""With ``MAFALDA_SHARED_CPU=1`` a node's threads share one CPU; its workers, where the media runs,
get every CPU.

Checked in processes of their own (a node, a script), never in the test process: pinning pytest's
threads would change every other test's machine.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
from pathlib import Path

import pytest

from media.cpus import CROWDED, better_cpu
from swarm.local_swarm import LocalSwarm

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                reason="one CPU allowed: there is nothing to share or to give back")


def thread_cpus(pid: int | str) -> list[list[int]]:
    """The CPUs each thread of process ``pid`` (or "self") may run on; a thread that ends while we
    read (an executor's, a waiter's) is left out."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            found.append(sorted(os.sched_getaffinity(int(tid))))
        except ProcessLookupError:
            continue
    return sorted(found)


SCRIPT = "import os\n" + inspect.getsource(thread_cpus) + r"""
import asyncio, json
import media
from media.cpus import shared_cpu
from swarm.bridge import open_host

async def main():
    report = {}
    async with shared_cpu(check_s=3600) as cpu:  # no move to another CPU while we look
        async with open_host():  # its trio thread starts after the threads were pinned
            worker = await media.create_worker()
            report["cpu"] = cpu
            report["threads"] = thread_cpus("self")
            report["worker"] = sorted(os.sched_getaffinity(worker.pid))
            await worker.close()
    report["threads_after"] = thread_cpus("self")
    print(json.dumps(report))

asyncio.run(main())
"""


async def test_threads_share_one_cpu_while_workers_get_them_all() -> None:
    everything = sorted(os.sched_getaffinity(0))
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SCRIPT, stdout=asyncio.subprocess.PIPE,
                                                   env={**os.environ, "MAFALDA_SHARED_CPU": "1"})
    output, _ = await process.communicate()
    assert process.returncode == 0
    report = json.loads(output.decode().splitlines()[-1])
    assert report["cpu"] in everything
    assert len(report["threads"]) >= 3  # asyncio's, the host's trio thread, the worker's waiter...
    assert report["threads"] == [[report["cpu"]]] * len(report["threads"])
    assert report["worker"] == everything
    assert report["threads_after"] == [everything] * len(report["threads_after"])


async def test_threads_stay_where_the_kernel_puts_them_by_default() -> None:
    environment = {name: value for name, value in os.environ.items() if name != "MAFALDA_SHARED_CPU"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SCRIPT, stdout=asyncio.subprocess.PIPE,
                                                   env=environment)
    output, _ = await process.communicate()
    assert process.returncode == 0
    report = json.loads(output.decode().splitlines()[-1])
    everything = sorted(os.sched_getaffinity(0))
    assert report["cpu"] is None
    assert report["threads"] == [everything] * len(report["threads"])


async def test_a_node_process_keeps_its_threads_on_one_cpu_when_asked(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAFALDA_SHARED_CPU", "1")  # the node process inherits it
    async with LocalSwarm(tmp_path) as swarm:
        node = await swarm.start_node("a", entry=False)
        # The node may move its threads to a quieter CPU (once a second), one thread after the other:
        # read until a look falls between two moves.
        for _ in range(50):
            cpus = thread_cpus(node.pid)
            if cpus == [cpus[0]] * len(cpus):
                break
            await asyncio.sleep(0.01)
        assert len(cpus[0]) == 1 and cpus == [cpus[0]] * len(cpus), cpus


def test_threads_move_only_off_a_crowded_cpu_to_a_quiet_one() -> None:
    quiet, crowded = CROWDED / 2, (1 + CROWDED) / 2
    # Others took most of our CPU 0; CPU 1 is quiet: move there, to the quietest of several.
    assert better_cpu(0, {0: 1.0, 1: quiet}, own=0.1) == 1
    assert better_cpu(0, {0: 1.0, 1: quiet, 2: 0.05}, own=0.1) == 2
    # Busy with our own work, not others': stay (moving would not make it faster).
    assert better_cpu(0, {0: 1.0, 1: quiet}, own=0.9) is None
    # Everyone is crowded: stay (a move would only trade one crowd for another).
    assert better_cpu(0, {0: 1.0, 1: crowded}, own=0.1) is None
    # One CPU: nowhere to go.
    assert better_cpu(0, {0: 1.0}, own=0.1) is None
