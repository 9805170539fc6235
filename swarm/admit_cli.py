"""``mafalda-swarm admit PEER_ID``: admit a node by issuing its membership certificate.

Get the peer id on the node with ``mafalda-swarm node --dir D --print-peer-id``
(which creates its identity), then copy the certificate to ``D/node.cert``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swarm.membership import AUTHORITY_KEY_FILE, admit

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("peer_id", help="the node's libp2p peer id")
    parser.add_argument("--authority", type=Path, default=Path(AUTHORITY_KEY_FILE), help="swarm authority key")
    parser.add_argument("--out", type=Path, default=Path("node.cert"), help="certificate file to write")
    parser.add_argument("--roles", default="node", help="comma-separated roles")
    parser.add_argument("--days", type=float, default=365.0, help="validity in days")


def run(args: argparse.Namespace) -> int:
    roles = tuple(role.strip() for role in args.roles.split(",") if role.strip())
    try:
        certificate = admit(args.authority, args.peer_id, args.out, roles, args.days * 86400)
    except (OSError, ValueError) as error:
        print(f"mafalda-swarm admit: {error}", file=sys.stderr)
        return 1
    roles_text = ", ".join(certificate.roles)
    print(f"admitted {certificate.peer_id} ({roles_text}) until {certificate.expires_at:.0f}: {args.out}")
    return 0
