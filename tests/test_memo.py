"""`media.memo.JsonMemo`: what the shared tables and validated capabilities are kept by."""

from __future__ import annotations

import math

from media.memo import JsonMemo


def test_a_result_is_kept_for_equal_input_only_and_the_oldest_goes_first() -> None:
    memo: JsonMemo[list[object]] = JsonMemo(2)
    calls: list[object] = []

    def get(value: object) -> list[object]:
        return memo.get([value], lambda: calls.append(value) or [value])

    listed = get({"a": [1, 2]})
    assert get({"a": [1, 2]}) is listed and memo.holds(listed) and len(calls) == 1
    tupled = get({"a": (1, 2)})  # the same JSON, another input: computed, and kept in its place
    assert tupled is not listed and not memo.holds(listed) and memo.holds(tupled)
    assert get({"a": True}) is not get({"a": 1})  # two more kept: the oldest, the tuple's, goes
    assert not memo.holds(tupled)
    calls.clear()
    assert get({"a": True}) == [{"a": True}] and get({"a": 1}) == [{"a": 1}] and calls == []
    assert get({"x": math.nan}) is not get({"x": math.nan})  # NaN is never == itself: never a hit
    calls.clear()
    get({"a": 1})  # the NaN's second result replaced its first and pushed nothing else out
    assert calls == []
    assert get({1: "a"}) is not get({1: "a"})  # not JSON: never kept
