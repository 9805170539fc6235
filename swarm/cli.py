"""The `mafalda-swarm` console script.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``async def run(args) -> int`` (or a plain ``run``); this file only wires them,
so adding a subcommand is one line in ``SUBCOMMANDS``.

Only the chosen subcommand's module is imported (libp2p, aiortc and the media
layer take seconds to import on a busy box): ``--help`` lists every subcommand
from ``SUBCOMMANDS`` alone, and a subcommand's own help or argument error costs
only its module, whose top level must stay light (heavy imports go in ``run``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys

from swarm import logs

# name -> (module, one-line help). A module that fails to import leaves its
# subcommand listed as unavailable (with the reason) instead of breaking the CLI.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("media.demo", "loopback room: one aiortc client sends, one receives, through a real worker"),
    "simulate": ("swarm.simulate", "local multi-peer simulation of the swarm's control plane"),
    "node": ("swarm.node_cli", "run one swarm node (membership, gossip of load and placements)"),
    "create-swarm": ("swarm.create_swarm_cli", "create a swarm: its authority key and public key"),
    "admit": ("swarm.admit_cli", "admit a node: issue a membership certificate for its peer id"),
    "serve": ("swarm.serve_cli", "serve this node's media layer (Remote Mediasoup) over WebSocket or libp2p"),
    "proxy": ("swarm.proxy_cli", "connect to a Remote Mediasoup server and re-export its media layer [--vertical]"),
    "cluster": ("swarm.cluster_cli", "one endpoint over several Remote Mediasoup servers (horizontal) [--vertical]"),
    "monitor": ("swarm.monitor_cli", "the loads and placements of every node, as the swarm gossips them"),
}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is one), if any."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand chosen in ``argv`` gets its arguments (and its
    module imported). ``argv=None`` builds every subcommand fully (for tests and docs)."""
    parser = argparse.ArgumentParser(prog="mafalda-swarm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logs (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(argv) if argv is not None else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if argv is not None and name != chosen:
            sub.add_parser(name, help=help_text).set_defaults(_module=module_name)
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            sub.add_parser(name, help=f"(unavailable: {error})").set_defaults(_module=module_name)
            continue
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        module.add_arguments(sub_parser)
        logs.add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logs.configure(args.verbose, getattr(args, "log_format", "text"))
    module = importlib.import_module(args._module)
    result = module.run(args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
