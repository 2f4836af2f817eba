"""The dashboard's snapshot as JSON and back, for the log's `snapshot` table.

msgspec encodes and decodes the dataclasses of models.py from their type hints, so a field added
to a model is kept without touching this module. It does so in C: restoring 10,000 alerts is on
the way to the first frame at start-up and takes about 25 ms, where a walk of the type hints in
Python took 100 (and encoding them 300).

Snapshots of another version: a field missing from the document takes its default, a field the
models no longer have is ignored, and a value they cannot hold (an unknown alert state) makes the
whole document unreadable (a ValueError); the caller then starts without it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

import msgspec

from oncall_tui.models import Snapshot

SNAPSHOT_FORMAT: Final = 1


@dataclass(frozen=True, slots=True)
class SnapshotDocument:
    format: int
    snapshot: Snapshot


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(SnapshotDocument)


def snapshot_document(snapshot: Snapshot) -> SnapshotDocument:
    """What is stored; `restored` is a property of loading, not kept."""
    if snapshot.restored:
        snapshot = dataclasses.replace(snapshot, restored=False)
    return SnapshotDocument(SNAPSHOT_FORMAT, snapshot)


def snapshot_to_json(snapshot: Snapshot) -> str:
    """The stored text; UnicodeEncodeError if a string holds a lone surrogate."""
    return _ENCODER.encode(snapshot_document(snapshot)).decode()


def snapshot_from_json(text: str | bytes) -> Snapshot:
    """The snapshot in `text`; ValueError if it is not one this version can read."""
    document = _DECODER.decode(text)
    if document.format != SNAPSHOT_FORMAT:
        raise ValueError("unknown snapshot format")
    return document.snapshot


def json_string_body(value: str) -> str:
    """`value` as it appears between the quotes of a JSON string in the stored text."""
    return _ENCODER.encode(value).decode()[1:-1]
