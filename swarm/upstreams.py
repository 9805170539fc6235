"""What ``proxy`` and ``cluster`` share: connecting to upstream Remote Mediasoup servers, and the
vertical layer they can put over them.

An upstream is a WebSocket URL (with a token from a file or ``$MAFALDA_REMOTE_TOKEN``, never the
command line) or a libp2p multiaddr ending in ``/p2p/<peer id>`` (all libp2p upstreams share one
host, whose identity is ``--key``). ``--vertical`` wraps the back-end in `media.vertical.Vertical`:
its routers span the upstream workers; by default it may start as many workers as the upstreams
have CPUs in all (each server reports its own count), ``--max-workers`` overrides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import Any

from media.remote.client import RemoteMediasoup, connect_libp2p, connect_websocket
from media.stats import get_stats
from media.vertical import Capacity, Vertical
from swarm.serving import TOKEN_ENV, read_token


def add_upstream_arguments(parser: argparse.ArgumentParser, *, many: bool) -> None:
    """``--upstream-ws`` / ``--upstream-libp2p``: exactly one for a proxy, any number (at least one) for a cluster."""
    if many:
        parser.add_argument("--upstream-ws", metavar="URL", action="append", default=[],
                            help="an upstream server's WebSocket URL (repeatable)")
        parser.add_argument("--upstream-libp2p", metavar="MULTIADDR", action="append", default=[],
                            help="an upstream server's multiaddr, /p2p/... included (repeatable)")
    else:
        upstream = parser.add_mutually_exclusive_group(required=True)
        upstream.add_argument("--upstream-ws", metavar="URL", help="the upstream server's WebSocket URL")
        upstream.add_argument("--upstream-libp2p", metavar="MULTIADDR",
                              help="the upstream server's multiaddr (/p2p/...)")
    parser.add_argument("--upstream-token-file", type=Path, default=None,
                        help=f"the upstream WebSocket token (default: ${TOKEN_ENV})")
    parser.add_argument("--vertical", action="store_true",
                        help="serve vertical routers: each spans the upstream workers (Mediasoup-vertical)")
    parser.add_argument("--max-workers", type=int, default=None, metavar="N",
                        help="with --vertical: real workers at most (default: the upstreams' CPUs in all)")
    per_worker = Capacity.max_consumers_per_worker
    parser.add_argument("--consumers-per-worker", type=int, default=per_worker, metavar="N",
                        help=f"with --vertical: consumers per real worker (default {per_worker})")


def _listed(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


async def connect_upstreams(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> list[RemoteMediasoup]:
    """One client per upstream, closed by ``stack``; an unreachable upstream is a clear exit."""
    ws_urls, multiaddrs = _listed(args.upstream_ws), _listed(args.upstream_libp2p)
    if not ws_urls and not multiaddrs:
        raise SystemExit("no upstream: give --upstream-ws URL and/or --upstream-libp2p MULTIADDR")
    upstreams: list[RemoteMediasoup] = []
    token = read_token(args.upstream_token_file) if ws_urls else None
    for url in ws_urls:
        try:
            upstream = await connect_websocket(url, token=token)
        except (OSError, TimeoutError) as error:
            raise SystemExit(f"cannot reach upstream {url}: {error}") from None
        stack.push_async_callback(upstream.close)
        upstreams.append(upstream)
    if multiaddrs:
        from swarm.bridge import open_host  # libp2p loads only when used
        from swarm.membership import load_or_create_identity

        key_pair = load_or_create_identity(args.key) if args.key is not None else None
        host = await stack.enter_async_context(open_host(key_pair=key_pair))
        for multiaddr in multiaddrs:
            peer_id = await host.connect(multiaddr)
            upstream = await connect_libp2p(host, peer_id)
            stack.push_async_callback(upstream.close)
            upstreams.append(upstream)
    return upstreams


async def vertical_over(backend: Any, upstreams: list[RemoteMediasoup], args: argparse.Namespace) -> Vertical:
    """``--vertical``: a Vertical over ``backend`` sized by the upstreams' own CPU counts unless told."""
    max_workers = args.max_workers
    if max_workers is None:
        reports = await asyncio.gather(*(get_stats(upstream, transport_bitrates=False) for upstream in upstreams))
        max_workers = sum(int(report["system"]["cpu_count"]) for report in reports)
    return Vertical(backend, Capacity(max_workers=max_workers, max_consumers_per_worker=args.consumers_per_worker))
