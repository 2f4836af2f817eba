"""The dashboard's snapshot as JSON and back, for the log's `snapshot` table.

Generic over the dataclasses in models.py, driven by their type hints, so that a field added to a
model is kept without touching this module. Restoring 10,000 alerts is on the way to the first
frame at start-up, so decoders are built once per type and the common shapes (label maps, tuples
of strings) take a fast path.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from oncall_tui.collector import collector_paused
from oncall_tui.models import Snapshot

SNAPSHOT_FORMAT: Final = 1


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("snapshot holds a naive datetime")
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in a snapshot")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _decode(tp: Any, value: Any) -> Any:
    """Rebuild a value of type `tp` from what `_encode` produced; TypeError/ValueError if not."""
    return _decoder(tp)(value)


Decoder = typing.Callable[[Any], Any]


@functools.cache
def _decoder(tp: Any) -> Decoder:
    """A decoder for `tp`, built once per type from its hints.

    Restoring 10,000 alerts is on the way to the first frame: walking the type hints for every
    value made it take most of a second, so the walk happens once and the result is reused.
    """
    if tp is Any:
        return _identity
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union_decoder(typing.get_args(tp))
    if origin is tuple:
        return _tuple_decoder(typing.get_args(tp))
    if origin in (dict, Mapping, typing.Mapping):
        key_type, value_type = typing.get_args(tp) or (str, Any)
        if key_type is str and value_type is str:
            return _decode_str_map  # labels and annotations: the common case by far
        return _mapping_decoder(_decoder(key_type), _decoder(value_type))
    if origin is list:
        (item_type,) = typing.get_args(tp) or (Any,)
        item = _decoder(item_type)

        def decode_list(value: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError("expected a list")
            return [item(v) for v in value]

        return decode_list
    if tp is datetime:
        return _decode_datetime
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_decoder(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    if tp is float:
        return _decode_float
    if tp in (str, int, bool):
        return _exact_decoder(tp)
    raise TypeError(f"cannot decode {tp!r}")


def _identity(value: Any) -> Any:
    return value


def _union_decoder(args: tuple[Any, ...]) -> Decoder:
    optional = type(None) in args
    decoders = [_decoder(arg) for arg in args if arg is not type(None)]

    def decode_union(value: Any) -> Any:
        if value is None:
            if optional:
                return None
            raise TypeError("unexpected null")
        last_error: Exception | None = None
        for decode in decoders:
            try:
                return decode(value)
            except (TypeError, ValueError) as error:
                last_error = error
        raise TypeError(str(last_error))

    return decode_union


def _tuple_decoder(args: tuple[Any, ...]) -> Decoder:
    if args == (str, Ellipsis):
        return _decode_str_tuple
    if len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])

        def decode_items(value: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError("expected a list")
            return tuple([item(v) for v in value])

        return decode_items
    decoders = [_decoder(arg) for arg in args]

    def decode_fixed(value: Any) -> Any:
        if not isinstance(value, list):
            raise TypeError("expected a list")
        if len(decoders) != len(value):
            raise TypeError("wrong tuple length")
        return tuple(d(v) for d, v in zip(decoders, value, strict=True))

    return decode_fixed


def _mapping_decoder(key: Decoder, item: Decoder) -> Decoder:
    def decode_mapping(value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError("expected an object")
        return {key(k): item(v) for k, v in value.items()}

    return decode_mapping


def _decode_str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    for item in value.values():
        if type(item) is not str:
            raise TypeError("expected str")
    return value  # fresh from json.loads, whose keys are always strings


def _decode_str_tuple(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    for item in value:
        if type(item) is not str:
            raise TypeError("expected str")
    return tuple(value)


def _decode_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("expected a timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive timestamp")
    return moment


def _enum_decoder(tp: type[enum.Enum]) -> Decoder:
    # A dictionary lookup: calling the enum class costs more than the rest of an alert.
    members = {member.value: member for member in tp}

    def decode_enum(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):
            raise ValueError(f"not a {tp.__name__}: {value!r}") from None

    return decode_enum


def _dataclass_decoder(cls: type) -> Decoder:
    hints = _hints(cls)
    init_fields = [f for f in dataclasses.fields(cls) if f.init]
    fields = [(f.name, _decoder(hints[f.name])) for f in init_fields]
    positional = not any(f.kw_only for f in init_fields)

    def decode_dataclass(value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {cls.__name__}")
        if positional and len(value) == len(fields):
            # Every field present (what this version writes): positional arguments are the
            # cheapest call. A document from another version takes the general path below.
            try:
                return cls(*[decode(value[name]) for name, decode in fields])
            except KeyError:
                pass
        return cls(**{name: decode(value[name]) for name, decode in fields if name in value})

    return decode_dataclass


def _decode_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return float(value)


def _exact_decoder(tp: type) -> Decoder:
    def decode_exact(value: Any) -> Any:
        # bool is an int in Python: keep them apart so a round trip is exact.
        if type(value) is not tp:
            raise TypeError(f"expected {tp.__name__}")
        return value

    return decode_exact


def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as a JSON-ready document; `restored` is a property of loading, not kept."""
    payload = _encode(snapshot)
    payload.pop("restored", None)
    return {"format": SNAPSHOT_FORMAT, "snapshot": payload}


def snapshot_from_json(text: str) -> Snapshot:
    with collector_paused():  # on the way to the first frame
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
            raise ValueError("unknown snapshot format")
        snapshot = _decode(Snapshot, document["snapshot"])
    assert isinstance(snapshot, Snapshot)
    return snapshot
