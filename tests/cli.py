"""Run ``mafalda-swarm`` (``python -m swarm.cli``) as a process to its end, as a user would."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


async def run_json(*argv: str, within: float) -> dict[str, Any]:
    """Its ``--json`` result (the last stdout line); asserts exit 0, with the end of stderr if not."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarm.cli", *argv, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result
