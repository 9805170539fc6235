"""JSON-RPC 2.0 messages: parse untrusted text into typed messages, encode ours.

The parser is the server's first line of defence: it accepts exactly the
shapes PROTOCOL.md describes and turns anything else into a `ProtocolError`
carrying the JSON-RPC code and, when it could be read, the request id, so the
server can answer the sender precisely and carry on.

JSON goes through orjson (several times faster than the standard library:
~5 % of a remote ``consume()`` was JSON) wherever its answer is certainly the
standard library's strict one; everything else is decided by the standard
library as before, so output, refusals and their messages do not change:
orjson writes NaN/Infinity as ``null`` (output holding ``null`` is re-encoded
strictly when the value holds a non-finite float), refuses integers beyond 64
bits and non-string keys (re-encoded: the standard library sends big integers),
reads integers beyond 64 bits as floats (a run of 19 digits is re-read) and
refuses NaN, Infinity, 1e400 and lone surrogates (re-read, for the same errors
as before).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from rope.errors import ErrorCode, ProtocolError
from rope.values import AS_IS, untagged_text

JSONRPC = "2.0"
RequestId = int | str | None

_strict_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def dumps(value: Any) -> str:
    """Compact, strict, ASCII-only JSON.

    No NaN/Infinity (other languages' parsers reject them); ASCII so that a
    message's length in characters is its length in bytes on the wire.
    """
    try:
        data = orjson.dumps(value, option=AS_IS)
    except TypeError:  # orjson.JSONEncodeError: big integers, non-string keys, a set...
        return _strict_dumps(value)
    if not data.isascii() or (b"null" in data and _holds_non_finite(value)):  # non-ASCII needs escapes
        return _strict_dumps(value)
    return data.decode("ascii")


_FINITE_LEAVES = (str, int, bool, type(None))


def _holds_non_finite(value: Any) -> bool:
    """Whether orjson wrote a NaN or an infinity of ``value`` as ``null``: then the strict encoder
    refuses it. A walk of what orjson took (exact dicts, lists and tuples; anything else made it
    raise), several times cheaper than re-encoding everything that holds a ``None``."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is float or isinstance(value, float):
        return not math.isfinite(value)
    else:
        return False
    for item in items:
        if type(item) not in _FINITE_LEAVES and _holds_non_finite(item):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: dict[str, Any] | list[Any]
    id: RequestId
    is_notification: bool
    untagged: bool = field(default=False, compare=False)
    """Whether its text shows that its values hold no tag and nest no deeper than allowed
    (`rope.values.untagged_text`): then they need no walk to find references."""


@dataclass(frozen=True, slots=True)
class Response:
    id: RequestId
    result: Any = None
    error: dict[str, Any] | None = None


Message = Request | Response


class MessageError(ProtocolError):
    """A message we cannot act on; ``request_id`` is set when the sender can be answered."""

    def __init__(self, message: str, *, code: int, request_id: RequestId = None, answerable: bool = False) -> None:
        super().__init__(message, code=code)
        self.request_id = request_id
        self.answerable = answerable


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse(text: str | bytes) -> Message:
    """Parse one JSON-RPC 2.0 message (batches are refused: ROPE never sends them)."""
    try:
        data, raw = _loads(text)
    except _NonFinite as refused:
        # Python's json reads NaN/Infinity and turns 1e400 into inf; ``dumps`` can never send
        # them on, so one such value kept in state would break every later snapshot: refuse it,
        # answering the request's id (the lenient parse below only recovers it).
        message = _shape(json.loads(text))
        if not isinstance(message, Request):
            raise MessageError(str(refused), code=ErrorCode.INVALID_REQUEST) from None
        raise MessageError(str(refused), code=ErrorCode.INVALID_PARAMS, request_id=message.id,
                           answerable=not message.is_notification) from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MessageError(f"parse error: {exc}", code=ErrorCode.PARSE_ERROR, answerable=True) from None
    return _shape(data, untagged=untagged_text(raw))


class _NonFinite(Exception):  # not a ValueError: json must not turn it into a parse error
    def __init__(self, literal: str) -> None:
        super().__init__(f"{literal} is not a JSON number (NaN, Infinity and numbers beyond double range are refused)")


def _refuse(literal: str) -> float:
    raise _NonFinite(literal)


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _NonFinite(literal)
    return value


_strict_loads = json.JSONDecoder(parse_constant=_refuse, parse_float=_finite).decode
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
"""Maps every digit to "0" and everything else to a space: a run of `_LONG` then means 19 digits in a row."""
_LONG = b"0" * 19
"""The fewest digits an integer beyond 64 bits has (-2**63 - 1 has 19)."""


def _loads(text: str | bytes) -> tuple[Any, bytes]:
    """The value, and the text as bytes."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, 1e400, a lone surrogate, bad JSON: the errors of the strict parser
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        return _strict_loads(text), text.encode("utf-8", "surrogatepass")
    raw = text.encode() if isinstance(text, str) else text  # valid UTF-8: orjson read it
    if _LONG in raw.translate(_DIGITS):  # maybe an integer orjson read as a float
        return _strict_loads(raw.decode("utf-8")), raw
    return data, raw


def _shape(data: Any, *, untagged: bool = False) -> Message:
    if isinstance(data, list):
        raise MessageError("batches are not supported", code=ErrorCode.INVALID_REQUEST, answerable=True)
    if not isinstance(data, dict):
        raise MessageError("a message must be a JSON object", code=ErrorCode.INVALID_REQUEST, answerable=True)
    raw_id = data.get("id")
    request_id = raw_id if _valid_id(raw_id) else None
    # Never answer what looks like a response, even a malformed one: two peers that answered
    # each other's errors would do so forever. Everything else that is invalid gets -32600.
    looks_like_response = "method" not in data and ("result" in data or "error" in data)
    if data.get("jsonrpc") != JSONRPC:
        raise MessageError(
            'missing or wrong "jsonrpc" (must be "2.0")',
            code=ErrorCode.INVALID_REQUEST,
            request_id=request_id,
            answerable=not looks_like_response,
        )
    if "method" in data:
        method = data["method"]
        params = data.get("params", {})
        has_id = "id" in data
        if not isinstance(method, str):
            raise MessageError('"method" must be a string', code=ErrorCode.INVALID_REQUEST, request_id=request_id,
                               answerable=True)
        if not _valid_id(raw_id):
            raise MessageError('"id" must be a string, an integer or null', code=ErrorCode.INVALID_REQUEST,
                               answerable=True)
        if not isinstance(params, dict | list):
            raise MessageError('"params" must be an object or an array', code=ErrorCode.INVALID_REQUEST,
                               request_id=request_id, answerable=has_id)
        return Request(method=method, params=params, id=request_id, is_notification=not has_id, untagged=untagged)
    if "result" in data or "error" in data:
        if "id" not in data or not _valid_id(raw_id):
            raise MessageError("a response needs a valid id", code=ErrorCode.INVALID_REQUEST)
        if "error" in data:
            error = data["error"]
            if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                raise MessageError("malformed error object", code=ErrorCode.INVALID_REQUEST, request_id=raw_id)
            return Response(id=raw_id, error=error)
        return Response(id=raw_id, result=data["result"])
    raise MessageError("neither a request nor a response", code=ErrorCode.INVALID_REQUEST, request_id=request_id,
                       answerable=True)


def encode_request(request_id: int, method: str, params: dict[str, Any]) -> str:
    return dumps({"jsonrpc": JSONRPC, "id": request_id, "method": method, "params": params})


def encode_notification(method: str, params: dict[str, Any]) -> str:
    return dumps({"jsonrpc": JSONRPC, "method": method, "params": params})


def encode_result(request_id: RequestId, result: Any) -> str:
    return dumps({"jsonrpc": JSONRPC, "id": request_id, "result": result})


def encode_error(request_id: RequestId, error: dict[str, Any]) -> str:
    return dumps({"jsonrpc": JSONRPC, "id": request_id, "error": error})


def error_object(code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": int(code), "message": message}
    if data is not None:
        error["data"] = data
    return error
