"""A real node process (``python -m swarm.node_cli``) joining, then SIGKILLed or frozen."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair

from swarm.membership import CertificateVerifier, SwarmAuthority, load_or_create_identity, peer_id_of
from swarm.node import NodeOptions, SwarmNode

BOUND_S = 10.0
"""Generous for a busy 2-core box (the simulation measures ~1 s and ~2 s), and well
under the TTL backstop (6 load periods = 30 s): only failure detection gets there."""


async def wait_until(predicate: Callable[[], object], within: float) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
async def test_dead_or_frozen_process_leaves_the_view(tmp_path: Path, signum: signal.Signals) -> None:
    """SIGKILL closes its connections (probed at once: refused); SIGSTOP leaves them
    open forever, so the probe round finds it. A frozen one is back once SIGCONTed."""
    authority = SwarmAuthority.generate()
    _, public_key = authority.save(tmp_path / "authority")
    verifier = CertificateVerifier(authority.public_key)
    key_pair = create_new_key_pair()
    options = NodeOptions()
    async with SwarmNode(key_pair, authority.issue(peer_id_of(key_pair)), verifier, options) as local:
        node_dir = tmp_path / "remote"
        remote_id = peer_id_of(load_or_create_identity(node_dir / "node.key"))
        authority.issue(remote_id).save(node_dir / "node.cert")
        bootstrap = tmp_path / "bootstrap-peers.txt"
        bootstrap.write_text(f"# the in-test node\n{local.listen_addrs[0]}\n")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swarm.node_cli", "--control",
            "--dir", str(node_dir), "--swarm-pub", str(public_key), "--bootstrap", str(bootstrap),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            async with asyncio.timeout(30):
                ready = json.loads(await process.stdout.readline())
            assert ready["event"] == "ready" and ready["peer"] == remote_id
            assert local.view is not None
            await wait_until(lambda: remote_id in local.view and local.is_member(remote_id), within=30)
            async with asyncio.timeout(30):  # and the remote sees us
                while (event := json.loads(await process.stdout.readline()))["event"] != "added":
                    pass
            assert event["peer"] == local.peer_id

            process.send_signal(signum)
            await wait_until(lambda: remote_id not in local.view, within=BOUND_S)
            if signum == signal.SIGKILL:
                assert not local.is_member(remote_id)
            else:
                process.send_signal(signal.SIGCONT)  # it refutes its death with a higher incarnation
                await wait_until(lambda: remote_id in local.view, within=BOUND_S)
        finally:
            if process.returncode is None:
                process.kill()
                process.send_signal(signal.SIGCONT)
                await process.wait()


CHECK_LIGHT = """
import sys
from swarm.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    heavy = sorted(m for m in ("libp2p", "aiortc") if m in sys.modules)
    print("HEAVY", heavy, "CODE", exit.code)
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["node", "--bogus"], ["simulate", "--peers", "x"], ["admit"], ["monitor", "--help"], ["demo", "-x"]],
)
async def test_help_and_argument_errors_import_nothing_heavy(argv: list[str]) -> None:
    """What makes `mafalda-swarm --help` and argument errors answer at once: only the
    chosen subcommand's light module is imported, never libp2p or the media stack."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHECK_LIGHT, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert b"HEAVY [] CODE" in stdout, stdout + stderr
    if argv == ["--help"]:
        for name in ("node", "simulate", "create-swarm", "admit", "monitor", "serve", "proxy", "demo"):
            assert name.encode() in stdout
    elif argv[-1] != "--help":
        assert b"usage: mafalda-swarm" in stderr and b"CODE 2" in stdout
