"""A swarm of real node processes on 127.0.0.1, created and admitted on the fly.

What the media simulation, the room benchmark and the process tests share:
an authority made in a temporary directory, one ``python -m swarm.node_cli
--media`` process per node (its own identity, certificate, entry token and
log file), ``bootstrap-peers.txt`` listing every node started so far, and an
in-process **observer**: a member admitted with the "monitor" role that serves
no media (so no worker may ever be placed on it) and whose view tells when
nodes have joined or left. Nothing here decides anything for the swarm; it is
an operator's hands, scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from libp2p.crypto.ed25519 import create_new_key_pair

from swarm.bootstrap import parse_bootstrap
from swarm.media_node import media_peers
from swarm.membership import CertificateVerifier, SwarmAuthority, load_or_create_identity, peer_id_of
from swarm.node import NodeOptions, SwarmNode
from swarm.view import SwarmView

__all__ = ["LocalSwarm", "NodeProcess", "alive", "free_port", "worker_pids"]

ENTRY_TOKEN = "local-swarm-entry-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_pids(node: NodeProcess) -> set[int]:
    """The mediasoup-worker processes a node process runs now."""
    try:
        children = psutil.Process(node.pid).children()
    except psutil.NoSuchProcess:
        return set()
    pids = set()
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.name() == "mediasoup-worker" and child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
    return pids


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a SIGKILLed node's workers are re-parented, not its children)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.add(pid)
    return found


@dataclass
class NodeProcess:
    name: str
    directory: Path
    peer_id: str
    multiaddr: str
    entry_url: str | None
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class LocalSwarm:
    """``async with LocalSwarm(tmp_dir) as swarm: a = await swarm.start_node("a")``."""

    def __init__(self, directory: Path, *, load_interval_s: float = 1.0, session_grace_s: float | None = None,
                 token: str = ENTRY_TOKEN) -> None:
        self.directory = directory
        self.load_interval_s = load_interval_s
        self.session_grace_s = session_grace_s
        self.token = token
        self.authority = SwarmAuthority.generate()
        self.nodes: dict[str, NodeProcess] = {}
        self.observer: SwarmNode | None = None
        self.public_key: Path = directory / "authority" / "swarm.pub"
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> LocalSwarm:
        self.directory.mkdir(parents=True, exist_ok=True)
        _, self.public_key = self.authority.save(self.directory / "authority")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- nodes ----------------------------------------------------------------------

    def admit(self, name: str, roles: tuple[str, ...]) -> tuple[Path, str]:
        directory = self.directory / name
        peer_id = peer_id_of(load_or_create_identity(directory / "node.key"))
        self.authority.issue(peer_id, roles).save(directory / "node.cert")
        (directory / "entry.token").write_text(self.token + "\n")
        return directory, peer_id

    def write_bootstrap(self) -> Path:
        path = self.directory / "bootstrap-peers.txt"
        lines = [node.multiaddr for node in self.nodes.values() if node.alive]
        path.write_text("# local swarm: every live node\n" + "\n".join(lines) + "\n")
        return path

    async def start_node(self, name: str, *, workers: int = 1, consumers_per_worker: int = 500, entry: bool = True,
                         extra: Sequence[str] = (), wait: bool = True) -> NodeProcess:
        """Admit and start a media node; with ``wait``, until the observer sees it serve media (and its entry
        accepts connections)."""
        directory, peer_id = self.admit(name, ("node",))
        port = free_port()
        entry_port = free_port() if entry else None
        node = NodeProcess(
            name, directory, peer_id, f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}",
            f"ws://127.0.0.1:{entry_port}" if entry_port is not None else None, directory / "node.log",
        )
        bootstrap = self.write_bootstrap()
        command = [
            sys.executable, "-m", "swarm.node_cli", "--media", "--dir", str(directory),
            "--swarm-pub", str(self.public_key), "--bootstrap", str(bootstrap),
            "--listen", f"/ip4/127.0.0.1/tcp/{port}", "--load-interval", str(self.load_interval_s),
            "--workers", str(workers), "--consumers-per-worker", str(consumers_per_worker),
        ]  # fmt: skip
        if entry_port is not None:
            command += ["--entry-port", str(entry_port)]
        if self.session_grace_s is not None:
            command += ["--session-grace", str(self.session_grace_s)]
        command += list(extra)
        with node.log_path.open("wb") as log_file:
            node.process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True,  # a terminal's Ctrl-C reaches only us; we stop them in order
            )
        self.nodes[name] = node
        await self._ensure_observer(node)
        if wait:
            await self.until(lambda: peer_id in media_peers(self.view_of_observer()), f"{name} serving media")
            if entry_port is not None:
                await self._wait_for_port(node, entry_port)
        return node

    async def _wait_for_port(self, node: NodeProcess, port: int) -> None:
        async def accepting() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True

        async with asyncio.timeout(60):
            while not await accepting():
                self._check_alive()
                await asyncio.sleep(0.1)

    def view_of_observer(self) -> SwarmView | None:
        return self.observer.view if self.observer is not None else None

    async def _ensure_observer(self, first: NodeProcess) -> None:
        """The observer joins through the first node started (then peer exchange keeps it connected)."""
        if self.observer is not None:
            return
        key_pair = create_new_key_pair()
        verifier = CertificateVerifier(self.authority.public_key)
        options = NodeOptions(
            bootstrap=parse_bootstrap(first.multiaddr), load_interval_s=self.load_interval_s,
            min_publish_gap_s=0.05, placements_refresh_s=2.0,
        )
        observer = SwarmNode(key_pair, self.authority.issue(peer_id_of(key_pair), ("monitor",)), verifier, options)
        self.observer = await self._stack.enter_async_context(observer)

    def in_view(self, node: NodeProcess) -> bool:
        view = self.observer.view if self.observer is not None else None
        return view is not None and node.peer_id in view

    async def until(self, predicate: Callable[[], object], what: str, within: float = 60.0) -> None:
        """Wait for ``predicate``; fail early (with its log) if a node we did not stop exits."""
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    self._check_alive()
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise TimeoutError(f"local swarm: no {what} within {within:.0f} s (logs in {self.directory})") from None

    def _check_alive(self) -> None:
        for node in self.nodes.values():
            code = node.process.returncode if node.process is not None else None
            if code is not None and code not in (-signal.SIGKILL, -signal.SIGTERM, 0):
                raise RuntimeError(f"node {node.name} exited with {code}:\n{node.log_tail()}")

    # -- failures ---------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL the node process (a crash); its workers, in sessions of their own, exit when its channel
        pipes close."""
        node = self.nodes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)

    def freeze(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.nodes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.nodes[name].pid, signal.SIGCONT)

    async def stop(self, name: str) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after 10 s."""
        node = self.nodes[name]
        if node.process is None or node.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGCONT)
            # Not process.terminate(): in CPython 3.11 it polls (and may reap) the child behind asyncio's
            # watcher first, which then reports exit status 255 (see media.worker._Signals).
            os.kill(node.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await node.process.wait()
        except TimeoutError:
            self.kill(name)
            await node.process.wait()

    async def close(self) -> None:
        for name in list(self.nodes):
            await self.stop(name)
        for node in self.nodes.values():  # worker processes left behind by a SIGKILLed node
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(node.pid, signal.SIGKILL)
        await self._stack.aclose()
