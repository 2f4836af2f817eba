"""Decoding a big JSON array one item at a time, reusing what was decoded from the last answer.

Alertmanager answers a poll of 10,000 alerts with about 5 MB of JSON that is mostly the same as
the previous answer. Decoding it all again (JSON, then timestamps and label maps into Alert
objects) costs hundreds of milliseconds of CPU on every poll; comparing each item's text with the
item's text in the previous answer costs a few. An item whose text is unchanged is handed back as
the very object decoded last time.

Why comparing text is enough: a JSON object is prefix-free. If the text at some position starts
with the complete text of an object decoded before, decoding from that position would read
exactly that object and stop at its end, so it is that object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_SPACE_CHARS = frozenset(" \t\n\r")


@dataclass(frozen=True, slots=True)
class DecodedItem(Generic[T]):
    """One item of a JSON array: its exact text and what it was turned into."""

    text: str
    value: T


def _skip_space(text: str, pos: int) -> int:
    if text[pos : pos + 1] not in _SPACE_CHARS:
        return pos  # compact JSON, as Alertmanager and the vendors send it: no regex needed
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]


def _read_items(text: str, read_item: Callable[[int], int]) -> None:
    """Call `read_item(start)` for every item of the array `text`; it returns the item's end."""
    pos = _skip_space(text, 0)
    if text[pos : pos + 1] != "[":
        raise ValueError("not a JSON array")
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] != "]":
        while True:
            end = read_item(pos)
            if text[end : end + 1] == ",":  # the common case, checked first
                pos = _skip_space(text, end + 1)
                continue
            pos = _skip_space(text, end)
            separator = text[pos : pos + 1]
            if separator == "]":
                break
            if separator != ",":
                raise ValueError(f"expected ',' or ']' at {pos}")
            pos = _skip_space(text, pos + 1)
    if _skip_space(text, pos + 1) != len(text):
        raise ValueError("extra data after the JSON array")


def decode_array(
    text: str,
    parse: Callable[[Any], T],
    *,
    previous: Sequence[DecodedItem[T]] = (),
    key: Callable[[T], Hashable],
) -> list[DecodedItem[T]]:
    """Every item of the JSON array `text`, parsed, reusing the unchanged items of `previous`.

    `previous` is what this function returned for the last answer of the same endpoint, whose
    items come in a stable order (Alertmanager sorts by fingerprint). Items are matched in
    order; after an item that is new or changed, `key` (a fingerprint, an id) finds where the
    previous answer continues, so one added or removed item costs one decode, not all after it.
    Raises ValueError when `text` is not a JSON array, and whatever `parse` raises.
    """
    result: list[DecodedItem[T]] = []
    cursor = 0  # the item of `previous` expected next
    positions: dict[Hashable, int] | None = None

    def read_item(pos: int) -> int:
        nonlocal cursor, positions
        if cursor < len(previous):
            expected = previous[cursor]
            if text.startswith(expected.text, pos):
                result.append(expected)
                cursor += 1
                return pos + len(expected.text)
        item, end = _DECODER.raw_decode(text, pos)
        value = parse(item)
        result.append(DecodedItem(text[pos:end], value))
        if previous:
            if positions is None:
                positions = {key(old.value): index for index, old in enumerate(previous)}
            found = positions.get(key(value))
            if found is not None and found >= cursor:
                cursor = found + 1
        return end

    _read_items(text, read_item)
    return result
