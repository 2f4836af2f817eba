"""Item-by-item decoding of big Alertmanager answers gives exactly what json.loads gives, reusing
the items of the previous answer never hands back an item that changed, and the typed decode of
a poll's alerts makes the same Alert as the dict parser the webhooks use."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall_tui.providers.alertmanager import parse_alert, parse_alert_json
from oncall_tui.providers.json_items import DecodedItem, decode_array

# What a JSON encoder such as Go's writes: no unpaired surrogates, no NaN or Infinity (msgspec
# refuses both; the client then falls back to Python's decoder, tested in the client's tests).
texts = st.text(st.characters(exclude_categories=("Cs",)))
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
spaces = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


def identity(raw: msgspec.Raw) -> Any:
    return msgspec.json.decode(raw)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(values, max_size=8), gaps=st.lists(spaces, min_size=20, max_size=20))
def test_same_items_as_json_loads(items: list[Any], gaps: list[str]) -> None:
    parts = [json.dumps(item) for item in items]
    text = gaps[0] + "[" + gaps[1]
    text += (gaps[2] + "," + gaps[3]).join(parts)
    text += gaps[4] + "]" + gaps[5]
    assert [item.value for item in decode_array(text, identity, key=repr)] == json.loads(text)


@pytest.mark.parametrize(
    "text",
    ["", "{}", "[1,]", "[1 2]", "[1", "[1] x", "[,1]", '["a"', "[1]]", "nope"],
)
def test_malformed_or_not_an_array_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's own errors are ValueErrors too
        decode_array(text, identity, key=repr)


class Parsed:
    """What a parser makes of one item: a new object each time, so reuse shows as identity."""

    def __init__(self, raw: msgspec.Raw) -> None:
        self.item = msgspec.json.decode(raw)

    @property
    def key(self) -> Any:
        return self.item["id"]


def array_text(items: list[dict[str, Any]], gap: str) -> str:
    return "[" + ("," + gap).join(json.dumps(item, ensure_ascii=False) for item in items) + "]"


payloads = st.dictionaries(st.sampled_from(["a", "b", "note"]), values, max_size=3)
objects = st.lists(
    st.builds(lambda id_, body: {"id": id_, **body}, st.integers(0, 30), payloads),
    max_size=12,
    unique_by=lambda item: item["id"],
)


@settings(max_examples=300, deadline=None)
@given(before=objects, after=objects, shuffled=st.booleans(), gap=spaces)
def test_only_unchanged_items_are_reused(
    before: list[dict[str, Any]], after: list[dict[str, Any]], shuffled: bool, gap: str
) -> None:
    # `after` shares ids with `before`: some items kept as they were, some changed, some new.
    kept = {item["id"]: item for item in before}
    after = [kept.get(item["id"], item) if item["id"] % 2 else item for item in after]
    if not shuffled:
        before.sort(key=lambda item: item["id"])
        after.sort(key=lambda item: item["id"])
    previous = decode_array(array_text(before, gap), Parsed, key=lambda p: p.key)
    result = decode_array(array_text(after, gap), Parsed, previous=previous, key=lambda p: p.key)

    assert [item.value.item for item in result] == after
    old_texts = {id(item.value): item.text for item in previous}
    for item in result:
        if id(item.value) in old_texts:
            assert old_texts[id(item.value)] == item.text, "only an unchanged item is reused"
    if not shuffled:
        unchanged = {bytes(item.text) for item in previous}
        reused = [item.text for item in result if id(item.value) in old_texts]
        # In order (as Alertmanager sends them), every unchanged item is reused but the one
        # right after a removed item, which is decoded to find where the old answer resumes.
        removed = len({item["id"] for item in before} - {item["id"] for item in after})
        assert len(reused) >= sum(bytes(item.text) in unchanged for item in result) - removed


def test_a_string_that_looks_like_the_next_item_is_not_mistaken_for_it() -> None:
    first = {"id": 1, "note": 'x"},{"id":2'}
    previous = decode_array(array_text([first], ""), Parsed, key=lambda p: p.key)
    changed = {"id": 1, "note": "x"}
    result = decode_array(array_text([changed], ""), Parsed, previous=previous, key=lambda p: p.key)
    assert [item.value.item for item in result] == [changed]
    assert result[0].value is not previous[0].value


def test_a_removed_item_costs_one_decode_not_all_after_it() -> None:
    items = [{"id": n, "a": n * 10} for n in range(100)]
    previous = decode_array(array_text(items, ""), Parsed, key=lambda p: p.key)
    parsed: list[int] = []

    def counting(raw: msgspec.Raw) -> Parsed:
        item = Parsed(raw)
        parsed.append(item.key)
        return item

    del items[40]
    items[70] = {"id": 71, "a": -1}  # changed
    result = decode_array(array_text(items, ""), counting, previous=previous, key=lambda p: p.key)
    assert [item.value.item for item in result] == items
    assert parsed == [41, 71]


@pytest.mark.parametrize(
    "text", ["{}", '[{"id": 1},]', '[{"id": 1} {"id": 2}]', '[{"id": 1}', '[{"id": 1}] x', "["]
)
def test_reuse_keeps_the_errors_of_a_malformed_answer(text: str) -> None:
    previous: list[DecodedItem[Parsed]] = decode_array('[{"id": 1}]', Parsed, key=lambda p: p.key)
    with pytest.raises(ValueError):  # noqa: PT011 - json's own errors are ValueErrors too
        decode_array(text, Parsed, previous=previous, key=lambda p: p.key)


times = st.builds(
    lambda moment, digits: moment.replace(microsecond=0).isoformat() + digits + "Z",
    st.datetimes(),
    st.sampled_from(["", ".5", ".123", ".123456", ".123456789"]),
)
label_maps = st.dictionaries(texts, texts, max_size=4)
off_type = st.integers() | st.booleans()  # the dict parser converts these to text
gettable_alerts = st.fixed_dictionaries(
    {
        "fingerprint": st.text("0123456789abcdef", min_size=16, max_size=16),
        "labels": label_maps | st.dictionaries(texts, off_type, min_size=1, max_size=2),
        "startsAt": times,
        "updatedAt": times,
        "status": st.fixed_dictionaries(
            {"state": st.sampled_from(["active", "suppressed", "unprocessed"])},
            optional={
                "silencedBy": st.lists(texts, max_size=2) | st.none(),
                "inhibitedBy": st.lists(texts, max_size=2) | st.none(),
            },
        ),
    },
    optional={
        "annotations": label_maps | st.none(),
        "endsAt": times | st.just("0001-01-01T00:00:00Z") | st.none() | st.just(""),
        "receivers": st.lists(st.fixed_dictionaries({"name": texts}), max_size=2) | st.none(),
        "generatorURL": texts | st.none(),
    },
)


@settings(max_examples=300, deadline=None)
@given(item=gettable_alerts)
def test_the_typed_decode_makes_the_alert_the_dict_parser_makes(item: dict[str, Any]) -> None:
    expected = parse_alert(json.loads(json.dumps(item)), cluster="prod", peer="prod-a")
    decoded = parse_alert_json(json.dumps(item).encode(), cluster="prod", peer="prod-a")
    assert decoded == expected
    assert (decoded.key, decoded.seen_by) == (expected.key, expected.seen_by)
    assert decoded.starts_at.tzinfo is not None


def test_an_alert_off_the_spec_is_named_by_the_dict_parser() -> None:
    with pytest.raises(KeyError, match="fingerprint"):
        parse_alert_json(b'{"labels": {}, "status": {"state": "active"}}', cluster="c")
