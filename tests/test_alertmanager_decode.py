"""Item-by-item decoding of big Alertmanager answers gives exactly what json.loads gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall_tui.providers.alertmanager import json_array_items

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
spaces = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


@settings(max_examples=200, deadline=None)
@given(items=st.lists(values, max_size=8), gaps=st.lists(spaces, min_size=20, max_size=20))
def test_same_items_as_json_loads(items: list[Any], gaps: list[str]) -> None:
    parts = [json.dumps(item) for item in items]
    text = gaps[0] + "[" + gaps[1]
    text += (gaps[2] + "," + gaps[3]).join(parts)
    text += gaps[4] + "]" + gaps[5]
    assert list(json_array_items(text)) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    ["", "{}", "[1,]", "[1 2]", "[1", "[1] x", "[,1]", '["a"', "[1]]", "nope"],
)
def test_malformed_or_not_an_array_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's own errors are ValueErrors too
        list(json_array_items(text))
