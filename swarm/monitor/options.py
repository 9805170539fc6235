"""``--http HOST:PORT`` and its token, for ``node`` and ``monitor`` (no web imports: the CLI stays light)."""

from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TOKEN_ENV", "HttpConfig", "TokenError", "add_arguments", "http_config", "load_token", "page",
           "parse_host_port"]

TOKEN_ENV = "MAFALDA_MONITOR_TOKEN"


class TokenError(ValueError):
    """No usable token: the server does not start without one."""


def load_token(path: Path | None, default_path: Path) -> str:
    """The token from ``path`` if given, else ``$MAFALDA_MONITOR_TOKEN``, else ``default_path``."""
    if path is None and os.environ.get(TOKEN_ENV):
        token = os.environ[TOKEN_ENV].strip()
    else:
        source = path or default_path
        try:
            token = source.read_text().strip()
        except OSError as error:
            raise TokenError(f"cannot read the monitor token from {source} (or set ${TOKEN_ENV}): {error}") from None
    if len(token) < 16:
        raise TokenError("the monitor token must be at least 16 characters")
    return token


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--http takes HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("web page (live page of the swarm, its JSON API, Prometheus /metrics)")
    group.add_argument("--http", metavar="HOST:PORT", default=None, help="serve the page here, e.g. 127.0.0.1:8080")
    group.add_argument("--http-token-file", type=Path, default=None,
                       help=f"file holding the page's token (default: ${TOKEN_ENV}, else DIR/monitor.token)")


@dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    token: str


def http_config(args: argparse.Namespace) -> HttpConfig | None:
    """What ``--http`` asks for, checked before the node starts (raises ValueError with the reason)."""
    if getattr(args, "http", None) is None:
        return None
    host, port = parse_host_port(args.http)
    return HttpConfig(host, port, load_token(args.http_token_file, args.dir / "monitor.token"))


def page(config: HttpConfig | None, node: Any, local_stats: Any = None) -> contextlib.AbstractAsyncContextManager[Any]:
    """``async with page(config, node):`` serves the page while the block runs (nothing without ``--http``)."""
    if config is None:
        return contextlib.nullcontext()
    from swarm.monitor.http import serving

    return serving(config, node, local_stats)
