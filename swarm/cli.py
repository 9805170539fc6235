"""The `mafalda-swarm` console script.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``async def run(args) -> int`` (or a plain ``run``); this file only wires them,
so adding a subcommand is one line in ``SUBCOMMANDS``.
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
    "serve": ("media.remote.serve_cli", "serve this node's media layer (Remote Mediasoup) over WebSocket or libp2p"),
    "proxy": ("media.remote.proxy_cli", "connect to a Remote Mediasoup server and re-export its media layer"),
    "monitor": ("swarm.monitor_cli", "the loads and placements of every node, as the swarm gossips them"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mafalda-swarm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logs (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            sub.add_parser(name, help=f"(unavailable: {error})").set_defaults(_module=module_name)
            continue
        sub_parser = sub.add_parser(name, help=help_text)
        sub_parser.set_defaults(_module=module_name)
        module.add_arguments(sub_parser)
        logs.add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.verbose, getattr(args, "log_format", "text"))
    module = importlib.import_module(args._module)
    result = module.run(args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
