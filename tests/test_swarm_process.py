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

LOAD_INTERVAL_S = 0.5
"""So the TTL (3 periods) is 1.5 s; the bound asserted below is generous for a busy 2-core box."""


async def wait_until(predicate: Callable[[], object], within: float) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
async def test_dead_or_frozen_process_leaves_the_view(tmp_path: Path, signum: signal.Signals) -> None:
    """SIGKILL closes its connections (suspicion: 1.5 periods); SIGSTOP leaves them
    open forever, so only the TTL (3 periods) removes it."""
    authority = SwarmAuthority.generate()
    _, public_key = authority.save(tmp_path / "authority")
    verifier = CertificateVerifier(authority.public_key)
    key_pair = create_new_key_pair()
    options = NodeOptions(load_interval_s=LOAD_INTERVAL_S, min_publish_gap_s=0.05)
    async with SwarmNode(key_pair, authority.issue(peer_id_of(key_pair)), verifier, options) as local:
        node_dir = tmp_path / "remote"
        remote_id = peer_id_of(load_or_create_identity(node_dir / "node.key"))
        authority.issue(remote_id).save(node_dir / "node.cert")
        bootstrap = tmp_path / "bootstrap-peers.txt"
        bootstrap.write_text(f"# the in-test node\n{local.listen_addrs[0]}\n")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "swarm.node_cli", "--control",
            "--dir", str(node_dir), "--swarm-pub", str(public_key), "--bootstrap", str(bootstrap),
            "--load-interval", str(LOAD_INTERVAL_S),
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
            # Bound: 1.5 periods (killed) or 3 periods (frozen); 10 s leaves room for a loaded machine.
            await wait_until(lambda: remote_id not in local.view, within=10)
            if signum == signal.SIGKILL:
                assert not local.is_member(remote_id)
        finally:
            if process.returncode is None:
                process.kill()
                process.send_signal(signal.SIGCONT)
                await process.wait()
