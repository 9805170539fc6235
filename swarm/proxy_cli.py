"""``mafalda-swarm proxy``: connect to a Remote Mediasoup server and re-export its media layer.

Clients of the proxy see the upstream server's API (their objects live
upstream); e.g. a WebSocket front for a server reachable only over libp2p:

    mafalda-swarm proxy --upstream-libp2p /ip4/10.0.0.2/tcp/4001/p2p/12D3... --ws 0.0.0.0:4443 --token-file token
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from media.remote.client import RemoteMediasoup, connect_libp2p, connect_websocket
from swarm.serving import TOKEN_ENV, add_serving_arguments, read_token, serve_until_stopped

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    upstream = parser.add_mutually_exclusive_group(required=True)
    upstream.add_argument("--upstream-ws", metavar="URL", help="the upstream server's WebSocket URL")
    upstream.add_argument("--upstream-libp2p", metavar="MULTIADDR", help="the upstream server's multiaddr (/p2p/...)")
    parser.add_argument("--upstream-token-file", type=Path, default=None,
                        help=f"the upstream WebSocket token (default: ${TOKEN_ENV})")
    add_serving_arguments(parser)


async def run(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        upstream: RemoteMediasoup
        if args.upstream_ws is not None:
            upstream = await connect_websocket(args.upstream_ws, token=read_token(args.upstream_token_file))
        else:
            from swarm.bridge import open_host  # libp2p loads only when used
            from swarm.membership import load_or_create_identity

            key_pair = None
            if args.key is not None:
                key_pair = load_or_create_identity(args.key)
            host = await stack.enter_async_context(open_host(key_pair=key_pair))
            peer_id = await host.connect(args.upstream_libp2p)
            upstream = await connect_libp2p(host, peer_id)
        stack.push_async_callback(upstream.close)
        return await serve_until_stopped(upstream, args)
    return 0
