"""``mafalda-swarm cluster``: one endpoint over several Remote Mediasoup servers (Mediasoup-cluster).

    MAFALDA_REMOTE_TOKEN=front mafalda-swarm cluster --upstream-ws ws://10.0.0.2:4443 \\
        --upstream-ws ws://10.0.0.3:4443 --upstream-token-file upstream.token --ws 0.0.0.0:4443

Each worker a client creates is started on one upstream, chosen by
``--policy`` (`media.horizontal`: ``least-workers``, the default, or
``lowest-cpu`` as each server reports it). With ``--vertical`` (Mafalda's
Mediasoup-vertical-cluster) every router spans workers of all the upstreams,
and producers are piped between servers on demand. An upstream that goes away
takes only its workers with it (they "die" for the clients, with their events).
"""

from __future__ import annotations

import argparse
import contextlib

from media.horizontal import Horizontal, LeastWorkers, LowestCpu, Policy
from swarm.serving import add_serving_arguments, serve_until_stopped
from swarm.upstreams import add_upstream_arguments, connect_upstreams, vertical_over

__all__ = ["add_arguments", "run"]

POLICIES: dict[str, type[Policy]] = {"least-workers": LeastWorkers, "lowest-cpu": LowestCpu}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_upstream_arguments(parser, many=True)
    parser.add_argument("--policy", choices=sorted(POLICIES), default="least-workers",
                        help="where each new worker goes (default: least-workers)")
    add_serving_arguments(parser)


async def run(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        upstreams = await connect_upstreams(args, stack)
        backend = Horizontal(upstreams, POLICIES[args.policy]())
        if args.vertical:
            return await serve_until_stopped(await vertical_over(backend, upstreams, args), args)
        return await serve_until_stopped(backend, args)
    return 0
