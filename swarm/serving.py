"""What ``mafalda-swarm serve`` and ``proxy`` share: serve a back-end until SIGINT/SIGTERM.

WebSocket (application servers) needs a token, read from a file or the
``MAFALDA_REMOTE_TOKEN`` environment variable, never from the command line
(it would show in ``ps``). libp2p admits the peer ids given with
``--allow-peer`` (a swarm node admits its members instead:
``members_only(view.is_member)``). The endpoints are printed once on stdout,
one per line, since port 0 picks a free port; everything else is quiet unless
``-v``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

from media.cpus import shared_cpu
from media.remote.server import MediasoupServer, any_of
from rope import members_only, token_auth
from rope.libp2p import serve_libp2p
from rope.server import Authorizer
from rope.websocket import WebSocketListener
from swarm import gc_policy

log = logging.getLogger("media.remote")

TOKEN_ENV = "MAFALDA_REMOTE_TOKEN"


def add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ws", metavar="HOST:PORT", default=None,
                        help="serve over WebSocket on HOST:PORT (port 0: any free port); needs a token")
    parser.add_argument("--token-file", type=Path, default=None,
                        help=f"file holding the WebSocket token (default: ${TOKEN_ENV})")
    parser.add_argument("--libp2p", metavar="MULTIADDR", default=None,
                        help="serve over libp2p, listening on MULTIADDR (e.g. /ip4/0.0.0.0/tcp/4001)")
    parser.add_argument("--key", type=Path, default=None, help="libp2p identity file (created if missing)")
    parser.add_argument("--allow-peer", action="append", default=[], metavar="PEER_ID",
                        help="libp2p peer id admitted (repeatable)")


def read_token(path: Path | None) -> str | None:
    if path is not None:
        return path.read_text().strip() or None
    return os.environ.get(TOKEN_ENV) or None


def _authorizer(args: argparse.Namespace, token: str | None) -> Authorizer:
    allowed = frozenset(args.allow_peer)
    rules: list[Authorizer] = [members_only(allowed.__contains__)]
    if token is not None:
        rules.append(token_auth(token))
    return any_of(*rules)


async def serve_until_stopped(backend: Any, args: argparse.Namespace) -> int:
    """Serve ``backend`` as the arguments say; on a signal close everything (workers included)."""
    if args.ws is None and args.libp2p is None:
        raise SystemExit("nothing to serve on: give --ws and/or --libp2p")
    token = read_token(args.token_file)
    if args.ws is not None and token is None:
        raise SystemExit(f"--ws needs a token: --token-file or ${TOKEN_ENV}")
    server = MediasoupServer(backend, authorize=_authorizer(args, token))
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(shared_cpu())  # exits last
        stack.push_async_callback(server.close)
        if args.ws is not None:
            host, _, port = args.ws.rpartition(":")
            listener = await WebSocketListener(server.rope, host or "127.0.0.1", int(port)).start()
            stack.push_async_callback(listener.close)
            print(f"websocket {listener.url}", flush=True)
        if args.libp2p is not None:
            from swarm.bridge import open_host  # libp2p loads only when used
            from swarm.membership import load_or_create_identity

            key_pair = None
            if args.key is not None:
                key_pair = load_or_create_identity(args.key)
            p2p = await stack.enter_async_context(open_host(key_pair=key_pair, listen=args.libp2p))
            serve_libp2p(server.rope, p2p)
            for address in p2p.listen_addrs:
                print(f"libp2p {address}", flush=True)
        gc_policy.tune_for_a_server()  # up: what it imported and built stays (as a swarm node does)
        await _wait_for_signal()
        log.info("stopping: closing connections and workers")
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
