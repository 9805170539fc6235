"""``bootstrap-peers.txt``: the peers a node dials to join the swarm.

One full multiaddr with ``/p2p/<peer id>`` per line; blank lines and ``#``
comments (whole-line or trailing) are ignored. Every bad line is reported with
its line number at once, so an operator fixes the file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import multiaddr

from swarm.membership import is_peer_id

__all__ = ["BootstrapError", "BootstrapPeer", "load_bootstrap", "parse_bootstrap"]


class BootstrapError(ValueError):
    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"{source}:{line}: {problem}" for line, problem in problems)
        super().__init__(f"bad bootstrap peers file:\n{lines}")


@dataclass(frozen=True)
class BootstrapPeer:
    multiaddr: str
    peer_id: str
    line: int


def _parse_line(text: str) -> BootstrapPeer | str:
    try:
        address = multiaddr.Multiaddr(text)
    except Exception as error:
        return f"not a multiaddr ({error}): {text!r}"
    protocols = [protocol.name for protocol in address.protocols()]
    if "p2p" not in protocols:
        return f"missing /p2p/<peer id>: {text!r}"
    if not {"ip4", "ip6", "dns", "dns4", "dns6"} & set(protocols) or "tcp" not in protocols:
        return f"needs an IP (or DNS) and a /tcp/ port: {text!r}"
    peer_id = address.value_for_protocol("p2p")
    if not is_peer_id(peer_id):
        return f"bad peer id: {text!r}"
    return BootstrapPeer(str(address), peer_id, 0)


def parse_bootstrap(text: str, source: str = "bootstrap-peers.txt") -> list[BootstrapPeer]:
    """Parse the file's text; raises BootstrapError listing every bad line."""
    peers: list[BootstrapPeer] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parsed = _parse_line(line)
        if isinstance(parsed, str):
            problems.append((number, parsed))
        else:
            peers.append(BootstrapPeer(parsed.multiaddr, parsed.peer_id, number))
    if problems:
        raise BootstrapError(source, problems)
    return peers


def load_bootstrap(path: Path) -> list[BootstrapPeer]:
    """An absent file is an empty list: the node starts a new swarm."""
    if not path.exists():
        return []
    return parse_bootstrap(path.read_text(), str(path))
