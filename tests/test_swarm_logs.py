"""py-libp2p's log records go through the node's own logging: quiet by default, JSON with --log-format json.

Importing libp2p cuts its loggers off (no handler, no propagation), so before the fix its errors (a
failed dial to a peer that just died, routine in a swarm) reached stderr as bare text through
logging's last resort, whatever the node's settings: a stray line in the main job's output, and a
line that is not JSON among JSON lines. Each case runs in a process of its own: logging is global.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import logging, sys
from swarm import logs
logs.configure(int(sys.argv[1]), sys.argv[2])
import swarm.bridge  # imports libp2p, as every command with a host does
logging.getLogger("libp2p.network.swarm").error("failed to upgrade security for peer X: routine")
logging.getLogger("swarm.node").warning("ours")
"""


def _stderr_lines(verbosity: int, log_format: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(verbosity), log_format], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stderr.splitlines()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_libp2p_routine_errors_are_quiet_by_default(log_format: str) -> None:
    lines = _stderr_lines(0, log_format)
    assert len(lines) == 1 and "ours" in lines[0], lines


def test_libp2p_records_are_json_lines_with_json_logs() -> None:
    records = [json.loads(line) for line in _stderr_lines(2, "json")]  # every line is JSON
    assert [(r["logger"], r["level"]) for r in records if "routine" in r["message"]] == [
        ("libp2p.network.swarm", "error")]
    assert any(r["message"] == "ours" for r in records)
