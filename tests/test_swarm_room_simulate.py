"""The README's first command: ``mafalda-swarm simulate --media`` runs and the room carries on past a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import sys


async def test_simulate_media_shows_one_room_through_every_entry_surviving_a_kill() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarm.cli", "simulate", "--media", "--seconds", "1", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(240):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    before, after = result["before"], result["after"]
    assert {client["entry"] for client in before.values()} == {"n0", "n1", "n2"}  # three entries, one room
    for name, client in before.items():
        assert set(client["frames_from"]) == set(before) - {name}
        assert all(frames > 0 for frames in client["frames_from"].values())
    assert result["killed"] == "n1" and all(client["entry"] != "n1" for client in after.values())
    for name, client in after.items():
        assert set(client["frames_from"]) == set(after) - {name}
