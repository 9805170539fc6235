"""`rope.values.untagged` (and `untagged_text`): the check that lets the value walks hand a value on
uncopied.

A wrong "yes" would send a reference, a tagged value or over-deep arguments untranslated, so
every way a value can need a walk is a "no" here.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rope.values import MAX_DEPTH, untagged, untagged_text


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value", [
    {}, [], {"a": 1, "b": [1.5, None, True, "x"]}, {"codecs": [{"mimeType": "audio/opus", "parameters": {}}]},
    {"$ref": "x", "other": 1}, {"ref": "x"}, nested(MAX_DEPTH),  # at the limit: the list itself is level 1
])
def test_json_values_without_tags_need_no_walk(value: Any) -> None:
    assert untagged(value)
    assert untagged_text(orjson.dumps(value)) == (value != {"$ref": "x", "other": 1})  # a "$": walk to see


@pytest.mark.parametrize("text", [
    b'{"\\u0024ref":"a"}', b'[{"a":{"\\u0024bytes":"aGk="}}]',  # a tag's "$" as an escape is a tag
    orjson.dumps(nested(MAX_DEPTH + 1)), orjson.dumps({"a": nested(MAX_DEPTH)}),  # too deep
    orjson.dumps([{"$ref": "a"}]),
])
def test_a_text_that_may_hold_a_tag_or_nest_too_deep_needs_its_values_walked(text: bytes) -> None:
    assert not untagged_text(text)
    assert not untagged(orjson.loads(text))


@pytest.mark.parametrize("value", [
    {"$ref": "a"}, {"$bytes": "aGk="}, {"a": [{"$ref": "a"}]}, [[{"$x": 1}]],  # tags, at any depth
    {1: "a"}, {"a": {None: 1}},  # keys the walks turn into strings
    (1, 2), {"a": (1,)}, {"a": b"raw"}, [object()], {"a": {1, 2}},  # not JSON values as they are
    nested(MAX_DEPTH + 1), {"a": nested(MAX_DEPTH)},  # deeper than calls may nest
    1, "text", None,  # not a container: the walks decide
])
def test_anything_a_walk_would_change_or_refuse_needs_one(value: Any) -> None:
    assert not untagged(value)
