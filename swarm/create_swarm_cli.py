"""``mafalda-swarm create-swarm DIR``: create a swarm's authority key.

Writes ``DIR/swarm-authority.key`` (mode 0600: whoever holds it admits nodes;
keep it off the nodes) and ``DIR/swarm.pub`` (copy it to every node).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swarm.membership import AUTHORITY_KEY_FILE, SWARM_PUBLIC_KEY_FILE, create_swarm

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="where to write the authority key and public key")


def run(args: argparse.Namespace) -> int:
    try:
        authority = create_swarm(args.directory)
    except (OSError, ValueError) as error:
        print(f"mafalda-swarm create-swarm: {error}", file=sys.stderr)
        return 1
    print(f"swarm {authority.swarm_id}")
    print(f"authority key: {args.directory / AUTHORITY_KEY_FILE} (secret, mode 0600)")
    print(f"public key:    {args.directory / SWARM_PUBLIC_KEY_FILE} (copy to every node)")
    return 0
