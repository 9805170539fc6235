"""Access to the flatc-generated channel bindings (object API).

The bindings are generated at install time for the worker's own version, so
they cannot be imported statically; `table("Worker.CreateRouterRequest")`
returns the object-API class (`CreateRouterRequestT`) and `enum(...)` the enum
class. Everything that touches FlatBuffers types goes through here; the
bytes on the channel are written and read by `media.fbs_codec`.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from media.worker_install import ensure_bindings_importable


@functools.cache
def _module(path: str) -> Any:
    ensure_bindings_importable()
    return importlib.import_module(f"FBS.{path}")


@functools.cache
def table(path: str) -> Any:
    """Object-API class of a table, e.g. table("Transport.ProduceRequest") -> ProduceRequestT."""
    name = path.rsplit(".", 1)[1]
    return getattr(_module(path), f"{name}T")


@functools.cache
def enum(path: str) -> Any:
    name = path.rsplit(".", 1)[1]
    return getattr(_module(path), name)


@functools.cache
def has(path: str, field: str | None = None) -> bool:
    """Whether this worker version's schema has the table or enum `path` (and its `field`).

    The bindings are generated from the installed worker's own schemas, so this
    is how code that serves more than one mediasoup version (3.14 and 3.27)
    tells them apart, without comparing version strings.
    """
    try:
        module = _module(path)
    except ModuleNotFoundError:
        return False
    name = path.rsplit(".", 1)[1]
    if field is None:
        return hasattr(module, name)
    if hasattr(module, f"{name}T"):
        return hasattr(getattr(module, f"{name}T")(), field)
    return hasattr(getattr(module, name), field)


def new(path: str, **fields: Any) -> Any:
    """Build an object-API table with the given attributes (flatc's camelCase names)."""
    obj = table(path)()
    if not fields.keys() <= _field_names(path):
        key = next(key for key in fields if key not in _field_names(path))
        raise AttributeError(f"FBS.{path} has no field {key!r}")
    vars(obj).update(fields)
    return obj


@functools.cache
def _field_names(path: str) -> frozenset[str]:
    """A table's fields: the attributes its object-API constructor sets."""
    return frozenset(vars(table(path)()))


@functools.cache
def enum_names(path: str) -> dict[int, str]:
    cls = enum(path)
    return {value: name for name, value in vars(cls).items() if not name.startswith("_")}


def to_plain(obj: Any) -> Any:
    """Object-API value -> plain Python (dicts keep flatc's camelCase field names).

    Union type tags (`fooType`) are dropped: the union's value carries the data.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, bytes):
        return obj.decode()
    if isinstance(obj, (list, tuple)):
        return [to_plain(item) for item in obj]
    if hasattr(obj, "tolist"):  # numpy arrays, when flatbuffers finds numpy
        return obj.tolist()
    fields = vars(obj)
    return {
        key: to_plain(value)
        for key, value in fields.items()
        if not (key.endswith("Type") and key[:-4] in fields and isinstance(value, int))
    }
