"""Results of pure conversions of JSON values, kept by the JSON of their input.

A join storm repeats the same inputs hundreds of times: every consumer of one producer through
the same capabilities has the same codecs, every participant's transports the same options. The
channel's tables built from them are only read by its encoder, so one set serves every request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import orjson

from rope.values import AS_IS

T = TypeVar("T")


class JsonMemo(Generic[T]):
    """The last `size` results of a function of JSON values.

    A hit needs the same JSON (orjson's, which tells ``True`` from ``1`` and ``1`` from ``1.0``)
    and an input ``==`` to that JSON read back: a tuple where a list was, a NaN (which JSON writes
    as ``null``), a subclass, anything JSON would change, is computed afresh (and refused as
    before, if the function refuses it). A result is kept only if `compute` returned it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._kept: dict[bytes, tuple[object, T]] = {}
        self._ids: set[int] = set()
        """The ids of the kept results (alive while kept, so no other object has one): `holds`."""

    def get(self, given: list[object], compute: Callable[[], T]) -> T:
        try:
            key = orjson.dumps(given, option=AS_IS)
        except TypeError:  # not JSON
            return compute()
        kept = self._kept.get(key)
        if kept is not None and kept[0] == given:
            return kept[1]
        value = compute()
        if kept is not None:  # the same JSON from input that differs (a tuple, a NaN): replaced
            self._ids.discard(id(kept[1]))
        elif len(self._kept) >= self._size:
            self._ids.discard(id(self._kept.pop(next(iter(self._kept)))[1]))
        self._kept[key] = (orjson.loads(key), value)
        self._ids.add(id(value))
        return value

    def holds(self, value: object) -> bool:
        """Whether ``value`` is one of the results kept now (given out to every equal input)."""
        return id(value) in self._ids
