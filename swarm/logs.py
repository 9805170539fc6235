"""Logging for the console script: readable and quiet by default, or one JSON object per line.

``--log-format json`` is for log shippers: every line is a JSON object with
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``peer`` (this
node's peer id, once its host runs) and, where the call site gives them as
``extra={"room_id": ..., "remote_peer": ...}``, ``room`` and ``remote_peer``;
an exception adds ``exc``. The text format is the one the CLI always had.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "JsonFormatter", "add_arguments", "adopt_libp2p_loggers", "announce", "configure", "set_peer_id"]

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_peer_id: str | None = None
_json = False
_libp2p_level = logging.CRITICAL
"""py-libp2p logs every failed dial at "error": redialling a peer that just died is routine (the
caller gets the exception and the view decides); -vv shows them."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="logs on stderr as text (default) or one JSON object per line")


def set_peer_id(peer_id: str | None) -> None:
    """Stamp every later log line with this node's peer id (one node per process)."""
    global _peer_id
    _peer_id = peer_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if _peer_id is not None:
            line["peer"] = _peer_id
        for attribute, key in (("room_id", "room"), ("remote_peer", "remote_peer")):
            value = getattr(record, attribute, None)
            if value is not None:
                line[key] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


def configure(verbosity: int = 0, log_format: str = "text") -> None:
    """Root logging on stderr; without -v, silence the chatty libraries (their errors are routine)."""
    global _json
    _json = log_format == "json"
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if not verbosity:
        # The worker's own log lines (libwebrtc reports benign conditions at "error"),
        # aiortc's decoder warnings before a key frame, aiohttp's per-request lines.
        logging.getLogger("media.worker.log").setLevel(logging.CRITICAL)
        logging.getLogger("aiortc").setLevel(logging.ERROR)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    global _libp2p_level
    _libp2p_level = logging.CRITICAL if verbosity < 2 else logging.NOTSET
    if "libp2p" in sys.modules:
        adopt_libp2p_loggers()


def adopt_libp2p_loggers() -> None:
    """Route py-libp2p's log records through ours, at the level `configure` chose.

    Importing libp2p runs its ``setup_logging()``: without ``LIBP2P_DEBUG`` it cuts its logger
    off (no handler, WARNING, no propagation). A level set on it before the import is lost, and
    its errors reach stderr through logging's last-resort handler as bare text, even with
    ``--log-format json``. `swarm.bridge` calls this once libp2p is imported. The upstream fix we
    would propose: leave the library's loggers alone unless ``LIBP2P_DEBUG`` asks (a library
    should add no handlers nor switch off propagation).
    """
    logger = logging.getLogger("libp2p")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(_libp2p_level)


def announce(logger: str, message: str) -> None:
    """A line the operator always sees (where a node listens, where its page is): plain text on
    stderr, or with ``--log-format json`` a JSON line like every other, whatever the level."""
    if _json:
        record = logging.LogRecord(logger, logging.INFO, __file__, 0, message, None, None)
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)
    else:
        print(message, file=sys.stderr, flush=True)
