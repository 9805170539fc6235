"""The README's first command: ``mafalda-swarm simulate --media`` runs and the room carries on past a SIGKILL."""

from __future__ import annotations

from tests.cli import run_json


async def test_simulate_media_shows_one_room_through_every_entry_surviving_a_kill() -> None:
    result = await run_json("simulate", "--media", "--seconds", "1", within=240)
    before, after = result["before"], result["after"]
    assert {client["entry"] for client in before.values()} == {"n0", "n1", "n2"}  # three entries, one room
    for name, client in before.items():
        assert set(client["frames_from"]) == set(before) - {name}
        assert all(frames > 0 for frames in client["frames_from"].values())
    assert result["killed"] == "n1" and all(client["entry"] != "n1" for client in after.values())
    for name, client in after.items():
        assert set(client["frames_from"]) == set(after) - {name}
