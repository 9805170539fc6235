"""``mafalda-swarm proxy``: connect to a Remote Mediasoup server and re-export its media layer.

Clients of the proxy see the upstream server's API (their objects live
upstream); e.g. a WebSocket front for a server reachable only over libp2p:

    mafalda-swarm proxy --upstream-libp2p /ip4/10.0.0.2/tcp/4001/p2p/12D3... --ws 0.0.0.0:4443 --token-file token

With ``--vertical`` (Mafalda's Mediasoup-vertical-proxy) its routers span the
upstream server's workers instead of being re-exported one to one.
"""

from __future__ import annotations

import argparse
import contextlib

from swarm.serving import add_serving_arguments, serve_until_stopped
from swarm.upstreams import add_upstream_arguments, connect_upstreams, vertical_over

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_upstream_arguments(parser, many=False)
    add_serving_arguments(parser)


async def run(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        [upstream] = await connect_upstreams(args, stack)
        backend = await vertical_over(upstream, [upstream], args) if args.vertical else upstream
        return await serve_until_stopped(backend, args)
    return 0
