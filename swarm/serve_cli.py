"""``mafalda-swarm serve``: serve this node's media layer (Remote Mediasoup) over WebSocket and/or libp2p.

    MAFALDA_REMOTE_TOKEN=secret mafalda-swarm serve --ws 0.0.0.0:4443 \\
        --libp2p /ip4/0.0.0.0/tcp/4001 --allow-peer 12D3...
"""

from __future__ import annotations

import argparse

import media
from media.vertical import Capacity, Vertical
from swarm.serving import add_serving_arguments, serve_until_stopped

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_serving_arguments(parser)
    parser.add_argument("--vertical", action="store_true",
                        help="serve a vertical back-end: each worker a client creates spans this machine's cores")


async def run(args: argparse.Namespace) -> int:
    backend = Vertical(media, Capacity()) if args.vertical else media
    return await serve_until_stopped(backend, args)
