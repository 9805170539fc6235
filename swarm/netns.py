"""Network namespaces on a bridge: how `simulate --partition` cuts live nodes apart.

On 127.0.0.1 nothing separates two running processes short of stopping one; in a
namespace of its own, each node has its own network stack, and taking its link to
the bridge down cuts it off from the others while it keeps running, as a real
partition does. Needs root (CAP_NET_ADMIN) and iproute2: `NetnsLab.unavailable()`
says why not. Traffic stays on the bridge and the namespaces made here; all of it
is removed on exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from types import TracebackType

__all__ = ["NetnsLab"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class NetnsLab:
    """``with NetnsLab(3) as lab:`` namespaces 0..2 at `address(i)`, joined by one bridge."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 10000
        self.count = count
        self.bridge = f"mfbr{tag}"
        self.namespaces = [f"mfns{tag}-{i}" for i in range(count)]
        self._links = [f"mfv{tag}-{i}" for i in range(count)]
        self._subnet = f"10.254.{tag % 250}"

    @staticmethod
    def unavailable() -> str | None:
        """Why this machine cannot make namespaces (None when it can)."""
        if shutil.which("ip") is None:
            return "needs iproute2's `ip` (network namespaces)"
        if os.geteuid() != 0:
            return "needs root to make network namespaces (CAP_NET_ADMIN)"
        probe = f"mfprobe{os.getpid() % 10000}"
        try:
            _ip("netns", "add", probe)
        except subprocess.CalledProcessError as error:
            return f"cannot make a network namespace here: {error.stderr.strip()}"
        _ip("netns", "del", probe)
        return None

    def address(self, index: int) -> str:
        return f"{self._subnet}.{index + 1}"

    def command(self, index: int, argv: list[str]) -> list[str]:
        """``argv`` run inside namespace ``index`` (the same process: ``ip netns exec`` execs it)."""
        return ["ip", "netns", "exec", self.namespaces[index], *argv]

    def cut(self, index: int) -> None:
        """Take namespace ``index``'s link down: it and the others no longer reach each other."""
        _ip("link", "set", f"{self._links[index]}h", "down")

    def heal(self, index: int) -> None:
        _ip("link", "set", f"{self._links[index]}h", "up")

    def __enter__(self) -> NetnsLab:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("link", "set", self.bridge, "up")
            for index, (namespace, link) in enumerate(zip(self.namespaces, self._links, strict=True)):
                _ip("netns", "add", namespace)
                _ip("link", "add", f"{link}h", "type", "veth", "peer", "name", f"{link}n")
                _ip("link", "set", f"{link}n", "netns", namespace)
                _ip("link", "set", f"{link}h", "master", self.bridge)
                _ip("link", "set", f"{link}h", "up")
                _ip("-n", namespace, "addr", "add", f"{self.address(index)}/24", "dev", f"{link}n")
                _ip("-n", namespace, "link", "set", f"{link}n", "up")
                _ip("-n", namespace, "link", "set", "lo", "up")
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._remove()

    def _remove(self) -> None:
        for namespace, link in zip(self.namespaces, self._links, strict=True):
            # Deleting one end of a veth pair deletes both; the namespace itself lingers while a process
            # in it is still exiting, and its end with it, so the pair goes from this side.
            subprocess.run(["ip", "link", "del", f"{link}h"], capture_output=True)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
