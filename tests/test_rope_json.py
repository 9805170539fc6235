"""ROPE's JSON: fast (orjson) where it is certain to agree, and exactly as strict as the standard library.

What a peer sends or receives must not depend on which encoder answered: NaN and
Infinity are refused both ways with the same errors, integers beyond 64 bits travel
exactly, output stays ASCII, and values JSON has no form for are refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rope import ErrorCode
from rope.messages import MessageError, Request, dumps, encode_request, parse

STRICT = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6) | st.integers(-3, 3), children, max_size=4),
    max_leaves=24,
)


@given(values)
def test_dumps_agrees_with_the_strict_standard_encoder_on_any_value(value: Any) -> None:
    try:
        expected: Any = json.loads(STRICT(value))
    except ValueError as error:
        with pytest.raises(ValueError) as refused:
            dumps(value)
        assert str(refused.value) == str(error)
        return
    text = dumps(value)
    assert text.isascii()
    assert json.loads(text) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_even_where_nothing_else_is_null(bad: float) -> None:
    for value in (bad, [1, bad], {"a": {"b": [bad]}}, {"a": None, "b": bad}, {"t": (None, (1, bad))}):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            dumps(value)
    with pytest.raises(ValueError):
        encode_request(1, "rope.call", {"args": [bad]})  # refused before a request is kept


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**40, -(10**30)])
def test_integers_beyond_64_bits_travel_exactly_both_ways(number: int) -> None:
    text = encode_request(7, "rope.call", {"args": [number], "kwargs": {"n": number}})
    message = parse(text)
    assert isinstance(message, Request) and isinstance(message.params, dict)
    assert message.params["args"] == [number] and type(message.params["args"][0]) is int
    assert message.params["kwargs"]["n"] == number


def test_long_digit_runs_inside_strings_and_floats_read_the_same() -> None:
    text = '{"jsonrpc":"2.0","id":1,"method":"m","params":{"s":"12345678901234567890","f":0.12345678901234567890}}'
    message = parse(text)
    assert isinstance(message, Request)
    assert message.params == {"s": "12345678901234567890", "f": 0.12345678901234567890}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_from_a_peer_get_invalid_params_with_the_request_id(literal: str) -> None:
    with pytest.raises(MessageError) as refused:
        parse('{"jsonrpc":"2.0","id":5,"method":"rope.call","params":{"args":[' + literal + "]}}")
    assert refused.value.code == ErrorCode.INVALID_PARAMS and refused.value.request_id == 5
    assert refused.value.answerable and "is not a JSON number" in str(refused.value)


def test_parse_errors_and_lone_surrogates_read_as_before() -> None:
    with pytest.raises(MessageError) as refused:
        parse('{"jsonrpc":"2.0","id":5,')
    assert refused.value.code == ErrorCode.PARSE_ERROR
    message = parse('{"jsonrpc":"2.0","id":1,"method":"m","params":["\\ud800"]}')  # Python reads it
    assert isinstance(message, Request) and message.params == ["\ud800"]
    message = parse(b'{"jsonrpc":"2.0","id":2,"method":"m","params":["\xc3\xa9"]}')
    assert isinstance(message, Request) and message.params == ["é"]


def test_output_is_ascii_and_keys_are_strings_as_the_standard_library_writes_them() -> None:
    assert dumps({"name": "café ☕"}) == '{"name":"caf\\u00e9 \\u2615"}'
    assert dumps({1: "a", "b": (1, 2)}) == '{"1":"a","b":[1,2]}'


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [Point(1), {1, 2}, datetime.datetime(2026, 1, 1), b"bytes", object()])
def test_values_json_has_no_form_for_are_refused(value: Any) -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        dumps({"v": value})
